"""Drive the real app to the Video tab, play the sample demo video side by side, pause, and capture it.

Run under a real X server (Xvfb), from the repository root:

    Xvfb :99 -screen 0 1920x1080x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/video_tour.py [--pruned PRUNED.pt | --project P.os2d.json]

Without --pruned/--project the default model is pruned 30 % by weight L1 in the Pruning tab, as a user's
clicks would (no fine-tuning: expect the two sides to disagree a lot). `docs/screenshots/video-view.png`
was taken with `--pruned data/seed-table/r30-weight_l1-ft.pt --frames 40 --threads 2 --target-size 1100
--score 0.6` (the pruned model is one of `bench/seed_table.py`'s fine-tuned models).
The capture is `import -window root` (ImageMagick): what X drew.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "resources/models/default.pt"))
    p.add_argument("--pruned", help="a pruned model file (default: prune the model in the app, --ratio)")
    p.add_argument("--ratio", type=float, default=0.3, help="global ratio when pruning in the app (weight L1)")
    p.add_argument("--project", help="open this project (its model and pruned model) instead")
    p.add_argument("--frames", type=int, default=12, help="frames to play before pausing")
    p.add_argument("--score", type=float, default=0.75, help="score threshold (the sample's min_score)")
    p.add_argument("--target-size", type=int, default=640)
    p.add_argument("--out", default=str(ROOT / "docs/screenshots/video-view.png"))
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import app  # noqa: F401 - before any Qt use (app/qt_compat.py)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.dialogs import HeadlessDialogs
    from app.main import configure_pyqtgraph, wait_until_idle
    from app.main_window import MainWindow
    from app.state import Session
    from core.prune.plan import PruningPlan

    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    configure_pyqtgraph()
    tmp = Path(tempfile.mkdtemp(prefix="os2d-video-tour-"))
    w = MainWindow(Session(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)), HeadlessDialogs())
    width, height = (int(v) for v in args.size.split("x"))
    w.setGeometry(0, 0, width, height)
    w.show()

    def settle(seconds: float = 0.6) -> None:
        t = time.monotonic()
        while time.monotonic() - t < seconds:
            qapp.processEvents()
            time.sleep(0.02)

    def run(step: str, started: bool) -> None:
        if not started:
            raise SystemExit(f"{step}: did not start ({w.dialogs.messages[-1:]})")
        t = time.monotonic()
        if not wait_until_idle(w.runner, 3600):
            raise SystemExit(f"{step}: still running")
        errors = [m for m in w.dialogs.messages if m[0] == "error"]
        if errors:
            raise SystemExit(f"{step}: {errors[-1]}")
        print(f"{step}: {time.monotonic() - t:.1f} s", flush=True)

    if args.project:
        run("open project", w.controller.open_project(args.project))
        wait_until_idle(w.runner, 3600)
    else:
        run("load model", w.controller.open_model(args.model))
        if args.pruned:
            run("load pruned", w.controller.open_model(args.pruned, "pruned"))
        else:
            w.session.set_plan(PruningPlan(ratio=args.ratio, criterion="weight_l1"))
            run(f"prune {args.ratio:.0%}", w.workbench.prune())
    if w.session.pruned is None:
        raise SystemExit("no pruned model")

    view = w.video_view
    view.target_size.setValue(args.target_size)
    view.score_slider.setValue(args.score)
    w.tabs.setCurrentWidget(view)
    settle(0.5)
    run("first frame", True)
    t = time.monotonic()
    if not view.play():
        raise SystemExit(f"play did not start ({w.dialogs.messages[-1:]})")
    while view.position < args.frames and time.monotonic() - t < 1800:
        qapp.processEvents()
        time.sleep(0.02)
    view.pause()
    run(f"played to frame {view.position}", True)
    w.raise_()
    w.activateWindow()
    settle(1.0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["import", "-window", "root", str(out)], check=True)
    print(f"wrote {out}", flush=True)
    w.session.dirty = False
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
