"""Video benchmark: FPS of the original vs 30% / 50% pruned OS2D on the same frames (offline compare).

The default model (`resources/models/default.pt`; else `--model`) is pruned on the fly with the
data-free weight-L1 criterion; each pruned copy is compared with the original by `core.compare`
over the frames of the synthetic benchmark's demo video (640x480, target size 640), so each row is a
paired measurement: both sides see the same frames, alternating which runs first. FPS = 1 / mean
per-frame detection latency (preprocessing + forward + decoding + NMS), warm-up frame excluded.

    PYTHONPATH=. .venv/bin/python bench/video.py                     # full run, writes bench/RESULTS.md
    PYTHONPATH=. .venv/bin/python bench/video.py --quick --model M.pt --out /tmp/r.md   # smoke run

The markdown goes between `<!-- video:start -->` and `<!-- video:end -->` in the output file,
replacing only that section (the file is created if missing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch

from bench.sections import command_line, markers, write_section
from core.compare import compare
from core.model.checkpoint import load_model
from core.prune.job import prune
from core.prune.plan import PruningPlan, weight_magnitude_importance
from core.resources import default_model_path

START, END = markers("video")
TARGET_FPS = 10.0
REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data" / "synth-0"


def class_images(args) -> list[str]:
    if args.class_image:
        return args.class_image
    ids = json.loads((DEMO / "demo_classes.json").read_text())["class_ids"]
    return [str(DEMO / "classes" / "images" / f"{i}.png") for i in ids]


def _combined(result: dict) -> float:
    return result["original"]["fps"] + result["pruned"]["fps"]


def run(args) -> dict:
    model_path = args.model or (str(default_model_path()) if default_model_path().exists() else None)
    if model_path is None:
        raise SystemExit(f"{default_model_path()} is missing: pass --model CKPT")
    loaded = load_model(model_path)
    imp = weight_magnitude_importance(loaded.model)
    classes = class_images(args)
    rows = []
    for r in args.ratios:
        pruned = prune(loaded.model, PruningPlan(ratio=r, criterion="weight_l1"), imp).model
        runs = []
        for k in range(args.repeats):
            res = compare(loaded, pruned, classes, args.video, target_size=args.target_size,
                          score_threshold=args.score_threshold, device=args.device, max_frames=args.frames or None)
            print(f"{r:.0%} run {k + 1}/{args.repeats}: original {res.original.mean_ms:.1f} ms, pruned "
                  f"{res.pruned.mean_ms:.1f} ms ({res.processed_count} frames)", file=sys.stderr)
            runs.append(res.to_json())
        # a shared machine's timings wander between runs: report the run with the median combined FPS
        runs.sort(key=_combined)
        rows.append({"ratio": r, "result": runs[len(runs) // 2], "combined_fps_runs": [_combined(x) for x in runs]})
        del pruned
    return {"model": model_path, "video": str(args.video), "classes": [Path(c).name for c in classes], "rows": rows}


def markdown(data: dict, args) -> str:
    lines = [START, "## Video: original vs pruned FPS (`bench/video.py`)", ""]
    first = data["rows"][0]["result"]
    lines.append(f"Run {datetime.date.today().isoformat()} on {platform.processor() or platform.machine()}, "
                 f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {first['device']}. "
                 f"Model `{Path(data['model']).name}`, pruned on the fly with weight L1 (data-free). "
                 f"Video `{Path(data['video']).name}` ({first['processed_count']} frames), target size "
                 f"{first['target_size']:g}, {len(data['classes'])} class images, score threshold "
                 f"{first['score_threshold']:g}. Each run is paired and offline: both models on the same frames, "
                 "order alternating per frame, first frame as warm-up; "
                 f"{args.repeats} runs per row, the row shows the run with the median combined FPS. FPS = 1 / mean per-frame detection latency "
                 "(preprocessing, forward, box decoding, NMS). Agreement: boxes of the same class with IoU ≥ 0.5 "
                 "found by both / all distinct boxes.")
    if args.quick:
        lines += ["", "**Quick smoke run (few frames): numbers are not for quoting.**"]
    lines += ["", "| pruned | parameters | original ms (median) | pruned ms (median) | original FPS | pruned FPS "
                  "| combined FPS | combined FPS, all runs | speedup | both / only original / only pruned | agreement |",
              "|---:|---|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for row in data["rows"]:
        r = row["result"]
        o, p, a = r["original"], r["pruned"], r["agreement"]
        lines.append(f"| {row['ratio']:.0%} | {o['parameters']:,} → {p['parameters']:,} | "
                     f"{o['mean_latency_ms']:.1f} ({o['median_latency_ms']:.1f}) | "
                     f"{p['mean_latency_ms']:.1f} ({p['median_latency_ms']:.1f}) | {o['fps']:.2f} | {p['fps']:.2f} | "
                     f"{_combined(r):.2f} | {', '.join(f'{v:.1f}' for v in row['combined_fps_runs'])} | "
                     f"{r['speedup']:.2f}x | {a['matched']} / {a['only_original']} / "
                     f"{a['only_pruned']} | {a['agreement']:.1%} |")
    lines += ["", f"Target (issue 8): ≥ {TARGET_FPS:g} FPS combined (original + pruned side) at 640 px on CPU, the "
              "pruned side faster than the original."]
    for row in data["rows"]:
        r = row["result"]
        total = _combined(r)
        faster = r["pruned"]["fps"] > r["original"]["fps"]
        lines.append(f"- {row['ratio']:.0%} pruned: {total:.1f} FPS combined "
                     f"({'meets' if total >= TARGET_FPS and faster else 'misses'} the target), pruned side "
                     f"{r['speedup']:.2f}x faster.")
    lines += ["", "Both sides run the detector's inference copy (BN folded into convolutions, channels-last, float32 "
              "resampling: `core/model/inference.py`). The pruned copies are not fine-tuned, so their boxes differ "
              "from the original's (agreement); this table measures speed.", "", f"Command: `{args.command}`", END]
    return "\n".join(lines) + "\n"




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model file (default: resources/models/default.pt)")
    ap.add_argument("--video", default=str(DEMO / "demo.mp4"))
    ap.add_argument("--class-image", action="append", help="class images (default: the demo video's classes)")
    ap.add_argument("--target-size", type=float, default=640)
    ap.add_argument("--ratios", default="0.3,0.5")
    ap.add_argument("--frames", type=int, default=None, help="frames per run (default: all; 4 with --quick)")
    ap.add_argument("--score-threshold", type=float, default=0.5)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="runs per ratio; the median run is reported")
    ap.add_argument("--quick", action="store_true", help="4 frames: checks the run, not for quoting")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    args = ap.parse_args(argv)
    args.command = command_line("video.py", argv)
    args.ratios = [float(r) for r in args.ratios.split(",")]
    if args.frames is None and args.quick:
        args.frames = 4
    if args.quick:
        args.repeats = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    data = run(args)
    section = markdown(data, args)
    write_section(args.out, "video", section)
    if args.json:
        from core.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(data, indent=2))
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
