"""Drive the real app to the Video tab, play the sample demo video side by side, pause, and capture it.

Run under a real X server (Xvfb), from the repository root:

    Xvfb :99 -screen 0 1920x1080x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/video_tour.py [--pruned PRUNED.pt | --project P.os2d.json]

Without --pruned/--project the default model is pruned 30 % by weight L1 in the Pruning tab, as a user's
clicks would (no fine-tuning: expect the two sides to disagree a lot). `docs/screenshots/video-view.png`
was taken with `--pruned data/seed-table/r30-weight_l1-ft.pt --frames 40 --threads 2 --target-size 1100
--score 0.6` (the pruned model is one of `bench/seed_table.py`'s fine-tuned models).
The capture is the whole X screen: what X drew.
"""

from __future__ import annotations

import argparse
import sys
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
    from app.main import wait_until_idle
    from core.prune.plan import PruningPlan
    from tour import Tour

    tour = Tour(args.size, "os2d-video-tour-")
    w, run = tour.window, tour.run

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
    tour.settle(0.5)
    run("first frame", True)
    t = time.monotonic()
    if not view.play():
        raise SystemExit(f"play did not start ({w.dialogs.messages[-1:]})")
    while view.position < args.frames and time.monotonic() - t < 1800:
        tour.qapp.processEvents()
        time.sleep(0.02)
    view.pause()
    run(f"played to frame {view.position}", True)
    tour.capture(Path(args.out))
    tour.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
