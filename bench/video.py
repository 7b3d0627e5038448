"""Video benchmark: the original beside its shipped pruned companion on the sample demo video.

Both models run through `core.compare` over the frames of `resources/samples/demo.mp4` at the frame's own
size (products there appear at the size the model was trained on, so no upscaling is needed), with the
demo's class images; each run is paired (both sides see the same frames, alternating which runs first,
the first frame is a warm-up). Each side is scored against the video's per-frame ground truth
(`demo_gt.json`): recall at its own score threshold and mAP@0.5 of its kept boxes. A second table times
one demo frame at the frame's own size against the same frame upscaled to the model's evaluation scale,
which is what a viewer paid before the demo video was made at native scale.

    python -m bench.video                    # full run, writes bench/RESULTS.md
    python -m bench.video --quick --out /tmp/r.md   # smoke run (few frames)

The markdown goes between `<!-- video:start -->` and `<!-- video:end -->` in the output file,
replacing only that section (the file is created if missing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.sections import cpu_name, command_line, markers, write_section
from core.compare import compare
from core.data.images import load_image
from core.data.video import open_source
from core.data.video_gt import load_video_ground_truth
from core.detect import Detector
from core.model.checkpoint import load_model
from core.prune.job import recipe
from core.resources import companion_model_path, default_model_path, sample_manifest, samples_dir

START, END = markers("video")
MAP_TOLERANCE = 0.03  # target: the pruned side's video mAP within this of the original's
SPEEDUP_TARGET = 1.8  # target: the pruned side this much faster per frame
NATIVE_TARGET = 4.0  # target: native scale this much faster per frame than the model's scale


def manifest() -> dict:
    m = sample_manifest()
    if m is None:
        raise SystemExit(f"{samples_dir() / 'samples.json'}: the sample media are missing or unreadable")
    return m


def threshold(loaded, fallback: float) -> float:
    t = loaded.meta.get("score_threshold")
    return float(t) if isinstance(t, (int, float)) else fallback


def frame_size(video: str) -> tuple[int, int]:
    with open_source(video) as src:
        return src.size


def native_vs_model_scale(loaded, classes: list[str], video: str, repeats: int) -> dict:
    """Median ms of one demo frame (the middle one) at the frame's own size and at the model's scale."""
    with open_source(video) as src:
        src.seek((src.frame_count or 1) // 2)
        rgb = src.read().rgb
    det = Detector(loaded.model)
    bank = det.prepare_classes(classes)
    own = (rgb.shape[0] * rgb.shape[1]) ** 0.5
    model_scale = loaded.eval_scale or own
    out = {}
    for name, size in (("own", own), ("model", model_scale)):
        det.detect(rgb, bank, target_size=size)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            det.detect(rgb, bank, target_size=size)
            times.append(time.perf_counter() - t)
        out[name] = {"size": size, "ms": 1e3 * statistics.median(times)}
    return out


def run(args) -> dict:
    m = manifest()
    original = load_model(args.model)
    pruned = load_model(args.pruned)
    classes = args.class_image or [str(samples_dir() / c) for c in m["demo_class_images"]]
    gt = load_video_ground_truth(args.ground_truth) if args.ground_truth else None
    w, h = frame_size(args.video)
    size = args.target_size or (w * h) ** 0.5
    t_o = args.score_threshold if args.score_threshold is not None else float(m.get("min_score", 0.5))
    t_p = args.pruned_score_threshold if args.pruned_score_threshold is not None else threshold(pruned, t_o)
    runs = []
    for k in range(args.repeats):
        res = compare(original, pruned, classes, args.video, target_size=size, score_threshold=t_o,
                      pruned_score_threshold=t_p, ground_truth=gt, device=args.device,
                      max_frames=args.frames or None)
        print(f"run {k + 1}/{args.repeats}: original {res.original.mean_ms:.1f} ms, pruned "
              f"{res.pruned.mean_ms:.1f} ms ({res.processed_count} frames)", file=sys.stderr)
        runs.append(res.to_json())
    runs.sort(key=lambda r: r["speedup"])  # a shared machine's timings wander: report the median run
    scales = native_vs_model_scale(original, classes, args.video, args.scale_repeats)
    return {"model": args.model, "pruned": args.pruned, "recipe": recipe(pruned.meta), "video": str(args.video),
            "classes": [Path(c).name for c in classes],
            "result": runs[len(runs) // 2], "speedups": [r["speedup"] for r in runs], "scales": scales}


def markdown(data: dict, args) -> str:
    r = data["result"]
    o, p, a = r["original"], r["pruned"], r["agreement"]
    cpu = cpu_name()
    lines = [START, "## Video: the original and its shipped pruned companion on the demo video (`bench/video.py`)", "",
             f"Run {datetime.date.today().isoformat()} on {cpu}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, device {r['device']}. Original `{Path(data['model']).name}`, pruned "
             f"`{Path(data['pruned']).name}` ({data.get('recipe') or 'a pruned copy'}; `resources/models/README.md`). Video "
             f"`{Path(data['video']).name}` ({r['processed_count']} frames, 640×480) at the frame's own size "
             f"{r['target_size']:.0f}, {len(data['classes'])} class images ({', '.join(data['classes'])}), score "
             f"threshold {r['score_threshold']:g} (original) / {r['pruned_score_threshold']:g} (pruned), each model's "
             "best-F1 threshold. Paired offline runs: both models on the same frames, order alternating per frame, "
             f"first frame as warm-up; {args.repeats} runs, the table shows the run with the median speedup "
             f"(all runs: {', '.join(f'{s:.2f}x' for s in data['speedups'])}). Against the video's per-frame ground "
             "truth (IoU ≥ 0.5; boxes cut by the frame edge are difficult): recall of the boxes each side shows "
             "(at its threshold), mAP@0.5 of each frame's top 50 boxes by score whatever their score (mAP ranks "
             "boxes; a threshold only decides what is shown).", ""]
    if args.quick:
        lines += ["**Quick smoke run (few frames): numbers are not for quoting.**", ""]
    lines += ["| side | parameters | ms per frame (median) | FPS | recall | mAP@0.5 | boxes |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in (("original", o), ("pruned", p)):
        lines.append(f"| {name} | {s['parameters']:,} | {s['mean_latency_ms']:.1f} ({s['median_latency_ms']:.1f}) | "
                     f"{s['fps']:.2f} | {s['recall']:.3f} | {s['mAP@0.5']:.3f} | {s['detections']} |")
    lines += ["", f"Agreement (same class, IoU ≥ 0.5, found by both / all distinct boxes): {a['agreement']:.1%} "
              f"({a['matched']} both, {a['only_original']} only original, {a['only_pruned']} only pruned).", ""]
    if o.get("per_class_ap") and p.get("per_class_ap"):
        lines += ["AP@0.5 per class image (where a side's mAP goes):", "", "| class | original | pruned |",
                  "|---|---:|---:|"]
        for name in o["per_class_ap"]:
            lines.append(f"| {name} | {o['per_class_ap'][name]:.3f} | {p['per_class_ap'].get(name, 0.0):.3f} |")
        lines.append("")
    sc = data["scales"]
    ratio = sc["model"]["ms"] / sc["own"]["ms"]
    lines += ["One demo frame, the original model, 4 class images, median of "
              f"{args.scale_repeats} runs after a warm-up:", "",
              "| target size | ms per frame |", "|---:|---:|",
              f"| {sc['model']['size']:.0f} (the model's evaluation scale: the frame upscaled) | {sc['model']['ms']:.0f} |",
              f"| {sc['own']['size']:.0f} (the frame's own size) | {sc['own']['ms']:.0f} |", ""]
    speedup = r["speedup"]
    gap = o["mAP@0.5"] - p["mAP@0.5"]
    verdict = lambda ok: "meets" if ok else "misses"  # noqa: E731
    lines += ["Targets:",
              f"- the pruned side's video mAP within {MAP_TOLERANCE} of the original's: {o['mAP@0.5']:.3f} vs "
              f"{p['mAP@0.5']:.3f}, gap {gap:+.3f} ({verdict(gap <= MAP_TOLERANCE)});",
              f"- the pruned side ≥ {SPEEDUP_TARGET}x faster per frame: {speedup:.2f}x ({verdict(speedup >= SPEEDUP_TARGET)});",
              f"- the native-scale demo ≥ {NATIVE_TARGET}x faster per frame than at the model's scale: {ratio:.2f}x "
              f"({verdict(ratio >= NATIVE_TARGET)}).",
              "", "Both sides run the detector's inference copy (BN folded into convolutions, channels-last, float32 "
              "resampling: `core/model/inference.py`).", "", f"Command: `{args.command}`", END]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    m = manifest()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(default_model_path()), help="the original (default: the default model)")
    ap.add_argument("--pruned", default=str(companion_model_path()), help="the pruned model (default: the shipped one)")
    ap.add_argument("--video", default=str(samples_dir() / m["demo_video"]))
    ap.add_argument("--ground-truth", default=str(samples_dir() / m["demo_ground_truth"]))
    ap.add_argument("--class-image", action="append", help="class images (default: the demo video's classes)")
    ap.add_argument("--target-size", type=float, default=0, help="default: the frame's own size")
    ap.add_argument("--frames", type=int, default=None, help="frames per run (default: all; 6 with --quick)")
    ap.add_argument("--score-threshold", type=float, default=None, help="original's (default: the samples' min_score)")
    ap.add_argument("--pruned-score-threshold", type=float, default=None,
                    help="pruned side's (default: its model file's score_threshold)")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="paired runs; the median run is reported")
    ap.add_argument("--scale-repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="6 frames, one run: checks the run, not for quoting")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    args = ap.parse_args(argv)
    args.command = command_line("video", argv)
    if args.quick:
        args.frames, args.repeats, args.scale_repeats = args.frames or 6, 1, 2
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
