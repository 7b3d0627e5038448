"""Benchmark: gradient-free channel importance against layer-wise gradient LCP, on one calibration set.

Reports, for each criterion, wall time and peak memory (CPU: the process's peak RSS during the
phase; CUDA: torch's max allocated memory), the ratio to LCP's, and the Spearman rank correlation
with LCP per unit; plain inference on the same images is the reference cost. Writes a markdown
section. Timings are measurements of one run on one machine, not assertions.

    python -m bench.importance --model MODEL.pt --dataset DIR --images 20 --out-md docs/importance-bench.md
    # replace only the `importance-default` section of bench/RESULTS.md (command line recorded in it):
    python -m bench.importance --dataset data/synth-0 --split train --images 8 --threads 2 \
        --section importance-default
    # a smoke run on the default model and the bundled benchmark (nothing to download or generate):
    python -m bench.importance --quick --out-md /tmp/bench.md

Without --model it uses the default model, without --dataset the benchmark bundled with the app
(its train split, unless --split says otherwise). The report ends with the command that produced it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.sections import command_line, cpu_name, publish
from core.data.grozi import open_dataset
from core.detect import pick_device
from core.importance.calibration import CalibrationSet, build_calibration
from core.importance.criteria import CRITERIA
from core.importance.result import ALL_CRITERIA, ImportanceResult, compute_importance
from core.importance.stats import Measurement, Meter, eval_mode
from core.jobs import ConsoleProgress
from core.model.checkpoint import load_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.units import find_units
from core.resources import benchmark_dir, default_model_path

REFERENCE = "lcp"


def build_model(spec: str, seed: int) -> tuple[OS2DModel, str]:
    """A model file, or `random:<backbone>` (untrained, seeded) for smoke runs."""
    if spec.startswith("random:"):
        torch.manual_seed(seed)
        return OS2DModel(ModelConfig(spec.split(":", 1)[1])), spec
    loaded = load_model(spec)
    return loaded.model, loaded.path


def plain_inference(model: OS2DModel, calib: CalibrationSet, device: torch.device) -> Measurement:
    """What the same images cost through the detector without any hook: the reference."""
    with Meter(device) as meter, eval_mode(model), torch.inference_mode():
        for s in calib:
            cf = model.class_features([c.to(device) for c in s.class_images])
            model.head(model.target_features(s.image.to(device).unsqueeze(0)), cf)
    return meter.result


def spearman_per_unit(result: ImportanceResult, criterion: str, reference: str) -> dict[str, float]:
    out = {}
    for unit in result.units:
        a, b = result.score(criterion, unit), result.score(reference, unit)
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            out[unit] = float("nan")  # a constant ranking has no correlation
        else:
            out[unit] = float(spearmanr(a, b).statistic)
    return out


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f}"


def _f(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _summary(rhos: dict[str, float]) -> str:
    v = np.array([r for r in rhos.values() if math.isfinite(r)])
    if v.size == 0:
        return "n/a | n/a | n/a"
    return f"{v.mean():.2f} | {np.median(v):.2f} | {v.min():.2f}"


def report(result: ImportanceResult, plain: Measurement, args, model_path: str, device: torch.device,
           calib: CalibrationSet) -> str:
    t = result.timings
    stats = t.get("statistics")
    ref = t.get(REFERENCE)
    rows = []

    def row(name: str, needs: str, m: Measurement, seconds: float, rho: str) -> None:
        ratio = f"{seconds / ref.seconds:.3f}" if ref and ref.seconds > 0 else "n/a"
        mem_ratio = f"{m.peak_bytes / ref.peak_bytes:.2f}" if ref and ref.peak_bytes > 0 else "n/a"
        rows.append(f"| {name} | {needs} | {seconds:.2f} | {_mb(m.peak_bytes)} (+{_mb(max(m.peak_bytes - m.start_bytes, 0))})"
                    f" | {ratio} | {mem_ratio} | {rho} |")

    row("plain inference (reference)", "1 forward / image", plain, plain.seconds, "n/a | n/a | n/a")
    if stats:
        row("statistics pass (shared)", "1 forward / image, hooks", stats, stats.seconds, "n/a | n/a | n/a")
    for crit in result.criteria:
        m = t[crit]
        uses_stats = crit in CRITERIA and CRITERIA[crit].needs_statistics
        seconds = m.seconds + (stats.seconds if uses_stats and stats else 0.0)
        peak = max(m, stats, key=lambda x: x.peak_bytes) if uses_stats and stats else m
        needs = ("statistics pass" if uses_stats else "weights only") if crit in CRITERIA else (
            "1 forward + 1 backward / image" if crit == "taylor" else "1 forward + 1 backward / unit / image")
        rho = _summary(spearman_per_unit(result, crit, REFERENCE)) if REFERENCE in result.criteria and crit != REFERENCE \
            else "1 | 1 | 1" if crit == REFERENCE else "n/a | n/a | n/a"
        row(f"`{crit}`", needs, peak, seconds, rho)

    mem_kind = plain.memory
    lines = [
        "## Channel importance: cost and agreement with gradient LCP",
        "",
        f"- model: `{model_path}` (sha256 {str(result.model.get('sha256', ''))[:12]}…), "
        f"{len(result.units)} units, {sum(result.channels)} channels",
        f"- calibration: {calib.provenance.dataset} / {calib.provenance.split}, {len(calib)} images "
        f"(ids {', '.join(map(str, calib.provenance.image_ids[:12]))}{'…' if len(calib) > 12 else ''}), "
        f"target size {calib.provenance.target_size:g}, {calib.num_boxes} boxes, "
        f"selection {calib.provenance.selection}, seed {calib.provenance.seed}",
        f"- device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_name()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; memory = {mem_kind}",
        "- Spearman ρ: per unit between the criterion's channel scores and LCP's, then mean / median / min over "
        "units (n/a where a ranking is constant). Times: one run, after one warm-up forward.",
        "",
        "| criterion | needs | wall s | peak MB (+ during) | time / LCP | peak / LCP | ρ mean | ρ median | ρ min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    if REFERENCE in result.criteria:
        others = [c for c in result.criteria if c != REFERENCE]
        per = {c: spearman_per_unit(result, c, REFERENCE) for c in others}
        lines += ["", "Spearman ρ with LCP per unit:", "",
                  "| unit | channels | " + " | ".join(f"`{c}`" for c in others) + " |",
                  "|---|---:|" + "---:|" * len(others)]
        for unit, ch in zip(result.units, result.channels):
            lines.append(f"| `{unit}` | {ch} | " + " | ".join(_f(per[c][unit]) for c in others) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(default_model_path()),
                   help="model file, or random:resnet18 for an untrained one (default: the default model)")
    p.add_argument("--dataset", default=None,
                   help="dataset folder or grozi:PATH (default: the benchmark bundled with the app)")
    p.add_argument("--split", default=None, help="default: all, or train for the bundled benchmark")
    p.add_argument("--images", type=int, default=None, help="calibration images (default: 20; 2 with --quick)")
    p.add_argument("--target-size", type=float, default=None,
                   help="default: the dataset's evaluation scale; 256 with --quick")
    p.add_argument("--quick", action="store_true", help="2 images at 256 px: checks the run, not for quoting")
    p.add_argument("--selection", default="spread", choices=("spread", "random"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--criteria", default=",".join(ALL_CRITERIA), help="comma-separated")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out-md", default=None,
                   help="markdown file to write (default with --section: bench/RESULTS.md)")
    p.add_argument("--section", default=None,
                   help="write only this marked section of --out-md (see bench/sections.py), keeping the rest")
    p.add_argument("--save", default="", help="also save the importance result to PREFIX.npz/.json")
    args = p.parse_args(argv)
    if args.out_md is None and args.section is None:
        p.error("pass --out-md FILE, --section NAME, or both")
    command = command_line("importance", argv)
    if args.images is None:
        args.images = 2 if args.quick else 20
    if args.quick and args.target_size is None:
        args.target_size = 256.0
    if args.dataset is None:
        args.dataset, args.split = str(benchmark_dir()), args.split or "train"

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, model_path = build_model(args.model, args.seed)
    model = model.to(device).eval()
    dataset = open_dataset(args.dataset, args.split)
    calib = build_calibration(dataset, args.images, args.target_size, args.seed, selection=args.selection,
                              class_image_size=model.config.class_image_size,
                              progress=ConsoleProgress("calibration"))
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]

    plain_inference(model, CalibrationSet(calib.samples[:1], calib.provenance), device)  # warm-up
    plain = plain_inference(model, calib, device)
    result = compute_importance(model, calib, criteria, units=find_units(model), model_path=model_path,
                                progress=ConsoleProgress("importance"))
    if args.save:
        result.save(args.save)
    text = report(result, plain, args, model_path, device, calib)
    text = publish(text, command=command, section=args.section, out_md=args.out_md, quick=args.quick)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
