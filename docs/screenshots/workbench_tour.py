"""Drive the real app through the pruning workbench and capture the Importance, Pruning and Metrics tabs.

Run under a real X server (Xvfb), from the repository root:

    Xvfb :99 -screen 0 1440x900x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/workbench_tour.py [--model CKPT] [--dataset data/synth-0]

Each capture is `import -window root` (ImageMagick) of the whole screen, so what is saved is what X drew.
Default model: resources/models/default.pt when present. Jobs run exactly as a user's clicks start them.
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
    p.add_argument("--dataset", default=str(ROOT / "data/synth-0"))
    p.add_argument("--out", default=str(ROOT / "docs/screenshots"))
    p.add_argument("--calibration-images", type=int, default=8)
    p.add_argument("--gradient", action="store_true", help="also compute the LCP and Taylor references")
    p.add_argument("--eval-images", type=int, default=20)
    p.add_argument("--sensitivity-images", type=int, default=6)
    p.add_argument("--finetune-iterations", type=int, default=20)
    p.add_argument("--size", default="1440x900")
    p.add_argument("--project", help="open this project instead of running the jobs (re-shoot); a full run "
                                     "saves its session here when given and missing")
    args = p.parse_args()

    import app  # noqa: F401 - before any Qt use (app/qt_compat.py)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.dialogs import HeadlessDialogs
    from app.main import configure_pyqtgraph, wait_until_idle
    from app.main_window import MainWindow
    from app.state import Session

    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    configure_pyqtgraph()
    tmp = Path(tempfile.mkdtemp(prefix="os2d-tour-"))
    w = MainWindow(Session(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)), HeadlessDialogs())
    width, height = (int(v) for v in args.size.split("x"))
    w.setGeometry(0, 0, width, height)
    w.show()
    w.workbench.scratch_dir = tmp / "work"
    out = Path(args.out)

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

    def shot(tab: int, name: str) -> None:
        w.tabs.setCurrentIndex(tab)
        w.raise_()
        w.activateWindow()
        settle(1.0)
        subprocess.run(["import", "-window", "root", str(out / name)], check=True)
        print(f"wrote {out / name}", flush=True)

    project = Path(args.project) if args.project else None
    if project is not None and project.is_file():
        run("open project", w.controller.open_project(project))
        iv = w.importance_view
        iv.select_unit(w.session.model_info.units[len(w.session.model_info.units) // 2].name)
        shot(0, "importance-view.png")
        w.pruning_view.ratio_panel.table.scrollToTop()
        shot(1, "pruning-view.png")
        shot(4, "metrics-view.png")
        w.session.dirty = False
        w.close()
        return 0

    run("load model", w.controller.open_model(args.model))
    w.session.set_dataset(args.dataset)
    iv = w.importance_view
    for name in ("lcp", "taylor"):
        iv.criteria_boxes[name].setChecked(args.gradient)
    iv.num_images.setValue(args.calibration_images)
    run("importance", iv.compute())

    units = w.session.model_info.units
    panel = w.pruning_view.ratio_panel
    panel.global_slider.setValue(0.3)
    panel.group_sliders["layer3"].setValue(0.5)
    panel.set_unit_ratio(units[1].name, 0.6)
    iv.select_unit(units[len(units) // 2].name)
    shot(0, "importance-view.png")

    pv = w.pruning_view
    run("prune", pv.prune_button.click() or True)
    pv.eval_images.setValue(args.eval_images)
    run("evaluate", pv.run_evaluate())
    pv.sens_images.setValue(args.sensitivity_images)
    run("sensitivity", pv.run_sensitivity())
    pv.ft_iterations.setValue(args.finetune_iterations)
    pv.ft_eval_images.setValue(args.eval_images)
    run("fine-tune", pv.run_finetune())
    run("evaluate again", pv.run_evaluate())
    panel.table.scrollToTop()
    if project is not None:
        pruned = project.parent / f"{project.name.split('.')[0]}-pruned.pt"
        w.dialogs.save_file = lambda *_a, **_k: str(pruned)
        run("save pruned", w.workbench.save_pruned() if not pruned.exists() else True)
        w.dialogs.save_file = lambda *_a, **_k: str(project)
        w.controller.save_project()
    shot(1, "pruning-view.png")
    shot(4, "metrics-view.png")
    w.session.dirty = False
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
