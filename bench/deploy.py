"""Deployment benchmark: the original and its shipped pruned companion on every runtime, on the demo video.

Each runtime (PyTorch fp32, ONNX Runtime fp32, OpenVINO fp32, bf16 where the CPU has it, int8) runs both
models through `core.compare` on the same frames of `resources/samples/demo.mp4` at the frame's own
size, with the demo's class images; each side is scored against the video's per-frame ground truth
(mAP@0.5 of its ranked boxes), and the two sides' boxes are matched (agreement). With `--dataset`, each
model on each runtime is also scored on the held-out val split at the model's scale, leaving out the
images the original's checkpoint was selected on. int8 models are quantized first (NNCF, on
calibration images of the bundled benchmark's train split, as importance picks them). Speedups are
against the original on PyTorch fp32.

    python -m bench.deploy                        # writes its section of bench/RESULTS.md
    python -m bench.deploy --quick --out /tmp/r.md
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

from bench.sections import cpu_name, command_line, markers, write_section
from bench.video import manifest
from core.compare import compare
from core.data.grozi import open_dataset
from core.data.video import open_source
from core.data.video_gt import load_video_ground_truth
from core.deploy.quantize import quantize
from core.deploy.runtime import availability
from core.detect import Detector
from core.eval.evaluate import EvalConfig, evaluate
from core.importance.calibration import build_calibration
from core.model.checkpoint import load_model
from core.prune.job import recipe
from core.resources import benchmark_dir, companion_model_path, default_model_path, samples_dir

START, END = markers("deploy")
RUNTIMES = (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8"))
SELECTION_IMAGES = 30  # val images the default model's checkpoint was selected on: left out of held-out mAP
TARGET = 8.0  # the pruned model in int8 against the original in PyTorch fp32, per frame


def model_name(loaded) -> str:
    pruning = loaded.meta.get("pruning") or {}
    ratio = (pruning.get("plan") or {}).get("ratio") if isinstance(pruning, dict) else None
    return f"pruned {100 * float(ratio):.0f} %" if ratio else Path(loaded.path).stem


def run(args) -> dict:
    m = manifest()
    original = load_model(args.model)
    pruned = {}
    for path in args.pruned:
        loaded = load_model(path)
        pruned[model_name(loaded)] = loaded
    classes = [str(samples_dir() / c) for c in m["demo_class_images"]]
    gt = load_video_ground_truth(samples_dir() / m["demo_ground_truth"])
    video = str(samples_dir() / m["demo_video"])
    with open_source(video) as src:
        size = (src.size[0] * src.size[1]) ** 0.5
    avail = availability()
    val = open_dataset(args.dataset, "val") if args.dataset else None  # read once for every runtime and model
    calib = None
    rows = []
    for backend, precision in RUNTIMES:
        runtime = f"{backend} {precision}"
        why = avail.get((backend, precision), "")  # without a model, int8 needs no quantized model yet
        if why:
            rows.append({"runtime": runtime, "skipped": why})
            continue
        if precision == "int8":
            if calib is None:
                calib = build_calibration(open_dataset(str(benchmark_dir()), "train"), args.calib_images, size)
            for loaded in (original, *pruned.values()):
                quantize(loaded.model, calib)
        det_o = Detector(original.model, "cpu", target_size=size, backend=backend, precision=precision)
        pairs = {}
        for name, loaded in pruned.items():  # each pruned copy paired with the original on the same frames
            det_p = Detector(loaded.model, "cpu", target_size=size, backend=backend, precision=precision)
            res = compare(det_o, det_p, classes, video, target_size=size,
                          score_threshold=float(m.get("min_score", 0.5)),
                          pruned_score_threshold=float(loaded.meta.get("score_threshold", 0.5)),
                          ground_truth=gt, class_names=[Path(c).stem for c in classes], max_frames=args.frames)
            pairs[name] = res.to_json()
            print(f"{runtime}: original {res.original.mean_ms:.0f} ms, {name} {res.pruned.mean_ms:.0f} ms",
                  file=sys.stderr)
        row = {"runtime": runtime, "pairs": pairs, "describe": det_o.describe()}
        if args.dataset:
            row["held_out"] = {name: held_out_map(loaded, val, backend, precision, args)
                               for name, loaded in {"original": original, **pruned}.items()}
            print(f"  held-out mAP: {row['held_out']}", file=sys.stderr)
        rows.append(row)
    return {"rows": rows, "size": size, "frames": args.frames, "classes": [Path(c).name for c in classes],
            "models": list(pruned), "recipes": {name: recipe(loaded.meta) for name, loaded in pruned.items()}}


def held_out_map(loaded, ds, backend: str, precision: str, args) -> dict:
    """mAP@0.5 of `loaded` on `backend`/`precision` over the held-out val split `ds` at the model's scale."""
    det = Detector(loaded.model, "cpu", target_size=loaded.scale(ds), backend=backend, precision=precision)
    exclude = (SELECTION_IMAGES,) if len(ds.images) > 2 * SELECTION_IMAGES else ()
    rep = evaluate(det, ds, split="val", config=EvalConfig(exclude_spread=exclude, max_images=args.val_images))
    return {"map": rep.map, "images": rep.num_images}


def markdown(data: dict, args) -> str:
    ran = [r for r in data["rows"] if "pairs" in r]
    first = next(iter(ran[0]["pairs"].values())) if ran else None
    base = first["original"]["mean_latency_ms"] if first else 0.0
    recipes = data.get("recipes", {})
    copies = " and ".join(f"its {n} copy ({recipes.get(n) or 'pruned'})" for n in data["models"])
    lines = [START, "## Deployment runtimes on the demo video (`bench/deploy.py`)", "",
             f"Run {datetime.date.today().isoformat()} on {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads. The "
             f"default model and {copies}, made by `scripts/make_companion.py`, each paired "
             f"with the original on the first {data['frames']} frames of the demo video at the frame's own size "
             f"{data['size']:.0f}, {len(data['classes'])} class images; ms = mean detection latency per frame "
             "(preprocessing, network, decoding, NMS); video mAP@0.5 of each model's ranked boxes against the "
             "video's ground truth; agreement = boxes found by both the original and the copy on that runtime "
             "over all distinct boxes; speed-up against the original on PyTorch fp32. int8: NNCF post-training "
             f"quantization on {args.calib_images} calibration images of the bundled benchmark, the head's "
             "coordinate arithmetic kept float.", ""]
    if args.quick:
        lines += ["**Quick smoke run (few frames): numbers are not for quoting.**", ""]
    held = any("held_out" in r for r in ran)
    if held:
        some = next(r for r in ran if "held_out" in r)["held_out"]["original"]
        lines += [f"Held-out mAP: {some['images']} val images of `{Path(args.dataset).name}` (20 classes never "
                  "trained on, without the images the original's checkpoint was selected on), each model at its own "
                  "scale.", ""]
    lines += ["| runtime | model | ms per frame | speed-up | video mAP | agreement |" + (" held-out mAP |" if held else ""),
              "|---|---|---:|---:|---:|---:|" + ("---:|" if held else "")]
    for row in data["rows"]:
        if "skipped" in row:
            lines.append(f"| {row['runtime']} | — | — | — | — | — |" + (" — |" if held else "") + f"  ({row['skipped']})")
            continue
        pairs = row["pairs"]
        o = next(iter(pairs.values()))["original"]
        entries = [("original", o, None)] + [(n, r["pruned"], r["agreement"]["agreement"]) for n, r in pairs.items()]
        for name, side, agree in entries:
            line = (f"| {row['runtime']} | {name} | {side['mean_latency_ms']:.1f} | {base / side['mean_latency_ms']:.2f}x | "
                    f"{side['mAP@0.5']:.3f} | {'—' if agree is None else f'{100 * agree:.0f} %'} |")
            if held:
                h = row.get("held_out", {}).get(name)
                line += f" {h['map']:.3f} |" if h else " — |"
            lines.append(line)
    int8 = next((r for r in ran if r["runtime"] == "openvino int8"), None)
    if int8 is not None:
        best = min(int8["pairs"].items(), key=lambda kv: kv[1]["pruned"]["mean_latency_ms"])
        sp = base / best[1]["pruned"]["mean_latency_ms"]
        lines += ["", f"Target: a pruned model in OpenVINO int8 ≥ {TARGET:g}x faster per frame than the original in "
                  f"PyTorch fp32: {best[0]}, {sp:.2f}x ({'meets' if sp >= TARGET else 'misses'})."]
    lines += ["", f"Command: `{args.command}`", END]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--pruned", nargs="+", default=None,
                    help="pruned copies of --model (default: the shipped companion, and the 30 %% copy "
                         "data/companion-30/default-pruned30.pt when it exists)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--calib-images", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dataset", default=None,
                    help="a benchmark whose held-out val split scores each model on each runtime "
                         "(default: data/synth-0 when it exists; '' skips)")
    ap.add_argument("--val-images", type=int, default=0, help="at most this many val images (0: all)")
    ap.add_argument("--quick", action="store_true", help="6 frames: checks the run, not for quoting")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    args = ap.parse_args(argv)
    args.command = command_line("deploy", argv)
    if args.pruned is None:
        thirty = Path(__file__).resolve().parent.parent / "data" / "companion-30" / "default-pruned30.pt"
        args.pruned = [str(companion_model_path())] + ([str(thirty)] if thirty.is_file() else [])
    if args.dataset is None:
        default = Path(__file__).resolve().parent.parent / "data" / "synth-0"
        args.dataset = str(default) if default.is_dir() else ""
    if args.quick:
        args.frames = min(args.frames, 6)
        args.val_images = args.val_images or 4
    torch.set_num_threads(args.threads)
    section = markdown(run(args), args)
    write_section(args.out, "deploy", section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
