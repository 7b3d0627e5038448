"""The path a new user walks, through the real window, with a screenshot of each stop and its time.

A fresh profile (throwaway settings, Documents in a temporary folder, no dataset chosen): the app opens on
the default model with its shipped pruned companion, detects on the sample shelf, plays the sample video
side by side, computes importance (combined) on the bundled benchmark, prunes 50 %, fine-tunes, evaluates.
Buttons are pressed with real mouse clicks (QTest); the capture is what X drew (the whole screen).

    Xvfb :99 -screen 0 1280x800x24 -nolisten tcp &
    DISPLAY=:99 .venv/bin/python docs/screenshots/first_start_tour.py        # writes docs/screenshots/first-start-*.png

`first-start-video.png` is the README's first screenshot.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent))
    p.add_argument("--frames", type=int, default=48, help="frames of the sample video to play")
    p.add_argument("--images", type=int, default=8, help="calibration images for importance")
    p.add_argument("--finetune", type=int, default=10, help="fine-tune iterations")
    p.add_argument("--eval-images", type=int, default=8)
    p.add_argument("--size", default="1280x800")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("OS2D_STUDIO_DOCUMENTS", tempfile.mkdtemp(prefix="os2d-tour-docs-"))
    import torch

    torch.set_num_threads(args.threads)

    from tour import Tour

    tour = Tour(args.size, "os2d-first-start-")
    w = tour.window
    out = Path(args.out)
    t_all = time.monotonic()

    click, wait_for = tour.click, tour.wait_for

    idle = lambda: not w.runner.busy  # noqa: E731
    started = []
    w.controller.open_startup(then=lambda: started.append(w.detection_view.run_detection()))
    wait_for("open: default model, pruned companion, sample shelf detected", lambda: bool(started) and idle())
    tour.capture(out / "first-start-detection.png")

    video = w.video_view
    w.tabs.setCurrentWidget(video)
    wait_for("video tab: first frame", lambda: video.frame is not None and idle())
    click(video.play_button)
    wait_for(f"video: played {args.frames} frames", lambda: video.position >= args.frames)
    click(video.play_button)  # pause
    wait_for("video: paused", idle)
    tour.capture(out / "first-start-video.png")

    imp = w.importance_view
    w.tabs.setCurrentWidget(imp)
    for name, box in imp.criteria_boxes.items():
        box.setChecked(name == "combined")
    imp.num_images.setValue(args.images)
    click(imp.compute_button)
    wait_for(f"importance: combined on {args.images} bundled images", lambda: w.session.importance is not None and idle())
    tour.capture(out / "first-start-importance.png")

    pv = w.pruning_view
    w.tabs.setCurrentWidget(pv)
    pv.ratio_panel.global_slider.setValue(0.5)
    click(pv.prune_button)
    wait_for("prune 50 %", lambda: w.session.pruned is not None and not w.session.pruned.path and idle())
    w.tabs.setCurrentWidget(w.detection_view)
    click(w.detection_view.detect_button)
    wait_for("detect: the pruned model before fine-tuning", idle)
    tour.capture(out / "first-start-pruned.png")

    w.tabs.setCurrentWidget(pv)
    pv.ft_iterations.setValue(args.finetune)
    pv.ft_eval_images.setValue(args.eval_images)
    click(pv.finetune_button)
    wait_for(f"fine-tune {args.finetune} iterations (mAP before and after on {args.eval_images} images)", idle)
    pv.eval_images.setValue(args.eval_images)
    click(pv.evaluate_button)
    wait_for(f"evaluate original + pruned on {args.eval_images} images", idle)
    w.tabs.setCurrentWidget(w.metrics_view)
    tour.capture(out / "first-start-metrics.png")
    for title, message in getattr(w.dialogs, "notes", []):
        print(f"note: {title}: {message}")
    print(f"tour: {time.monotonic() - t_all:.0f} s")
    tour.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
