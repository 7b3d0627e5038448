"""The original model on PyTorch fp32 beside its pruned 50 % companion on OpenVINO int8, in the Video tab.

A fresh profile opens on the default model and its shipped pruned companion; Pruning tab → Quantize int8
(the pruned model, on the bundled benchmark's calibration images); Video tab → runtime "PyTorch fp32" for
the original, "OpenVINO int8" for the pruned; the sample video plays some frames, pauses, and the screen
is captured (the whole X screen) to `docs/screenshots/video-int8.png`. Run from the repository root:

    Xvfb :78 -screen 0 1280x800x24 -nolisten tcp &
    DISPLAY=:78 QT_QPA_PLATFORM=xcb OS2D_STUDIO_DOCUMENTS=/tmp/tourdocs HOME=/tmp/tourhome \\
        OS2D_STUDIO_CACHE=/tmp/tourcache .venv/bin/python docs/screenshots/deploy_tour.py
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

ORIGINAL_RUNTIME, PRUNED_RUNTIME = "torch:fp32", "openvino:int8"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "video-int8.png"))
    p.add_argument("--frames", type=int, default=48, help="frames of the sample video to play")
    p.add_argument("--size", default="1280x800")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args()
    os.environ.setdefault("OS2D_STUDIO_DOCUMENTS", tempfile.mkdtemp(prefix="os2d-tour-docs-"))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from app.project import RUNTIME_LABELS
    from tour import Tour

    tour = Tour(args.size, "os2d-deploy-tour-")
    w = tour.window
    t_all = time.monotonic()

    click = tour.click

    def wait_for(what: str, ready, limit: float = 1800) -> None:  # a warning dialog stops this tour too
        tour.wait_for(what, ready, limit, stop_on=("error", "warning"))

    idle = lambda: not w.runner.busy  # noqa: E731
    opened = []
    if not w.controller.open_startup(then=lambda: opened.append(True)):
        raise SystemExit(f"open: the default model did not open ({w.dialogs.messages[-1:]})")
    wait_for("open: default model beside its pruned companion", lambda: bool(opened) and idle())
    if w.session.pruned is None:
        raise SystemExit("open: no pruned companion (resources/models/default-pruned50.pt)")

    pv = w.pruning_view
    w.tabs.setCurrentWidget(pv)
    quantized = []
    w.workbench.deployed.connect(quantized.append)
    click(pv.quantize_button)
    wait_for("Quantize int8 (the pruned model)", lambda: bool(quantized) and idle())
    print(f"  int8 model: {quantized[0].folder}", flush=True)

    video = w.video_view
    w.tabs.setCurrentWidget(video)
    wait_for("video tab: first frame", lambda: video.frame is not None and idle())
    video.settings.refresh_runtimes()  # what opening a runtime list does: finds the int8 model just made
    for side, runtime in (("original", ORIGINAL_RUNTIME), ("pruned", PRUNED_RUNTIME)):
        combo = video.settings.runtime_combos[side]
        i = combo.findData(runtime)
        item = combo.model().item(i)
        if not item.isEnabled():
            raise SystemExit(f"runtime {RUNTIME_LABELS[runtime]} is disabled for the {side} side: {item.toolTip()}")
        combo.setCurrentIndex(i)
    ds = w.session.detection_settings
    if (ds.original_runtime, ds.pruned_runtime) != (ORIGINAL_RUNTIME, PRUNED_RUNTIME):
        raise SystemExit(f"runtimes not set: {ds.original_runtime} | {ds.pruned_runtime}")
    tour.settle(0.3)
    wait_for(f"runtimes: {RUNTIME_LABELS[ORIGINAL_RUNTIME]} | {RUNTIME_LABELS[PRUNED_RUNTIME]}", idle)

    click(video.play_button)
    start = video.position
    wait_for(f"video: played {args.frames} frames", lambda: video.position >= start + args.frames)
    click(video.play_button)  # pause
    wait_for("video: paused", lambda: not video.playing and idle())
    tour.capture(Path(args.out))
    for side in ("original", "pruned"):
        print(f"  {video.panes[side].title.text()}: {video.side_labels[side].text()}")
    print(f"tour: {time.monotonic() - t_all:.0f} s")
    tour.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
