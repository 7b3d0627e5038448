"""Structured pruning benchmark: our surgery vs Torch-Pruning's MetaPruner on OS2D.

For ResNet-18 OS2D (the default model's architecture; the embedded default model when present) and
ResNet-50 OS2D (v2 architecture, random weights): the original, and global ratios 0.3 and 0.5 with
the data-free weight-L1 criterion, cut by
  - ours, trunk + transform net (the plan's defaults),
  - ours, trunk only (prune_head=False): the same layers Torch-Pruning prunes,
  - Torch-Pruning 1.x MetaPruner + MagnitudeImportance(p=1) on the trunk, same per-layer ratio.
It reports parameters, fp32 size, GMACs, CPU (and CUDA, when present) latency of a detection
forward (target 1×3×S² + head for 1 class, class features precomputed), speedup, pruning time,
and how fast a plan's size/MAC prediction is (what the GUI's sliders call).

    python -m bench.pruning                          # full run, writes bench/RESULTS.md
    python -m bench.pruning --quick --out /tmp/r.md  # smoke run

The markdown goes between `<!-- pruning:start -->` and `<!-- pruning:end -->` in the output file,
replacing only that section (the file is created if missing); it ends with the command that produced it.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.sections import cpu_name, command_line, markers, write_section
from core.eval.profile import profile_model
from core.importance.result import data_free_importance
from core.model.os2d import OS2D_V2, ModelConfig, OS2DModel
from core.prune.job import prune
from core.prune.plan import PlanCostModel, PruningPlan, plan_counts, resolve
from core.prune.surgery import consistency_problems
from core.prune.units import find_units
from core.resources import default_model_path

START, END = markers("pruning")
SEED_MB = {0.0: 39.95, 0.3: 28.05, 0.5: 20.52}  # the seed study's ResNet-50 OS2D table


def load_arch(arch: str) -> tuple[OS2DModel, str]:
    if arch == "resnet18" and default_model_path().exists():
        from core.model.checkpoint import load_model

        return load_model(default_model_path()).model, f"default model ({default_model_path().name})"
    cfg = OS2D_V2 if arch == "resnet50" else ModelConfig(backbone=arch)
    torch.manual_seed(0)
    return OS2DModel(cfg).eval(), "random weights"


def tp_prune(model: OS2DModel, ratio: float) -> tuple[OS2DModel, float]:
    """Torch-Pruning's own pruner on the (shared) trunk; returns the model and init+step seconds."""
    import torch_pruning as tp

    m = copy.deepcopy(model)
    t = time.perf_counter()
    pruner = tp.pruner.MetaPruner(m.net_feature_maps, example_inputs=torch.randn(1, 3, 224, 224),
                                  importance=tp.importance.MagnitudeImportance(p=1), pruning_ratio=ratio,
                                  ignored_layers=[], round_to=None)
    pruner.step()
    return m, time.perf_counter() - t


def prediction_speed(model: OS2DModel) -> dict:
    units = find_units(model)
    t = time.perf_counter()
    cost = PlanCostModel.from_model(model, units)
    build = time.perf_counter() - t
    imp = data_free_importance(model, ["weight_l1"], units=units)
    times, rtimes = [], []
    for i in range(300):
        plan = PruningPlan(ratio=(i % 90) / 100)
        t = time.perf_counter()
        cost.predict(plan_counts(plan, units))
        times.append(time.perf_counter() - t)
        if i % 10 == 0:
            t = time.perf_counter()
            cost.predict(resolve(plan, units, imp))
            rtimes.append(time.perf_counter() - t)
    return {"cost_model_build_ms": build * 1e3, "predict_ms": statistics.median(times) * 1e3,
            "resolve_and_predict_ms": statistics.median(rtimes) * 1e3}


def bench_arch(arch: str, ratios, args) -> dict:
    model, source = load_arch(arch)
    prof = lambda m, name: profile_model(m, name=name, input_size=(args.size, args.size), repeats=args.repeats,  # noqa: E731
                                         warmup=args.warmup, device=args.device)
    rows = [{"variant": "original", "ratio": 0.0, "profile": prof(model, "original").to_json(), "prune_s": None}]
    print(f"[{arch}] original: {rows[0]['profile']['parameters']:,} params", file=sys.stderr)
    imp = data_free_importance(model, ["weight_l1"])
    for r in ratios:
        for label, plan in ((f"ours {r:.0%}", PruningPlan(ratio=r, min_channels=1, criterion="weight_l1")),
                            (f"ours {r:.0%} trunk only", PruningPlan(ratio=r, min_channels=1, prune_head=False,
                                                                     criterion="weight_l1"))):
            res = prune(model, plan, imp)
            assert res.predicted.parameters == res.measured_parameters, (label, res.predicted.parameters)
            rows.append({"variant": label, "ratio": r, "profile": prof(res.model, label).to_json(),
                         "prune_s": res.seconds, "predicted_parameters": res.predicted.parameters})
            print(f"[{arch}] {label}: {res.measured_parameters:,} params, {res.seconds:.3f} s", file=sys.stderr)
            del res
        tp_model, secs = tp_prune(model, r)
        problems = consistency_problems(tp_model)
        label = f"Torch-Pruning {r:.0%} trunk"
        rows.append({"variant": label, "ratio": r, "profile": prof(tp_model, label).to_json(), "prune_s": secs,
                     "consistent_with_our_units": not problems})
        print(f"[{arch}] {label}: {tp_model.num_parameters():,} params, {secs:.3f} s", file=sys.stderr)
        del tp_model
    return {"arch": arch, "source": source, "rows": rows, "prediction": prediction_speed(model)}


def _fmt(v, nd=1):
    return "–" if v is None else f"{v:.{nd}f}"


def markdown(results: list[dict], args) -> str:
    cuda = any(r["profile"]["cuda_latency_ms"] for a in results for r in a["rows"])
    lines = [START, "## Structured pruning (`bench/pruning.py`)", ""]
    lines.append(f"Run {datetime.date.today().isoformat()} on {cpu_name()}, "
                 f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
                 + (f", CUDA {torch.cuda.get_device_name(0)}" if cuda else "")
                 + f". Latency: median of {args.repeats} detection forwards after {args.warmup} warm-up "
                 f"(target 1×3×{args.size}², head for 1 class, class features precomputed). "
                 "Criterion: weight L1 (data-free). Ratios are fractions of channels removed in every unit "
                 "(min 1 channel, no rounding); \"ours\" also prunes the transformation net's hidden layers, "
                 "\"trunk only\" prunes exactly the layers Torch-Pruning's MetaPruner does.")
    if args.quick:
        lines.append("")
        lines.append("**Quick smoke run (few repeats): latencies are not for quoting.**")
    for a in results:
        base = a["rows"][0]["profile"]
        lines += ["", f"### OS2D {a['arch']} ({a['source']})", "",
                  "| variant | parameters | size MB | GMACs | CPU ms | CPU speedup |"
                  + (" CUDA ms | CUDA speedup |" if cuda else "") + " prune time s |",
                  "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if cuda else "") + "---:|"]
        for r in a["rows"]:
            p = r["profile"]
            sp = base["cpu_latency_ms"] / p["cpu_latency_ms"] if p["cpu_latency_ms"] else None
            row = (f"| {r['variant']} | {p['parameters']:,} | {p['size_mb']:.2f} | {p['macs'] / 1e9:.2f} | "
                   f"{_fmt(p['cpu_latency_ms'])} | {_fmt(sp, 2)}x |")
            if cuda:
                cs = base["cuda_latency_ms"] / p["cuda_latency_ms"] if p["cuda_latency_ms"] else None
                row += f" {_fmt(p['cuda_latency_ms'], 2)} | {_fmt(cs, 2)}x |"
            row += f" {_fmt(r['prune_s'], 3)} |"
            lines.append(row)
        ours_trunk = {r["ratio"]: r["profile"]["parameters"] for r in a["rows"] if r["variant"].endswith("trunk only")}
        tp_rows = {r["ratio"]: r for r in a["rows"] if r["variant"].startswith("Torch-Pruning")}
        notes = []
        for ratio, r in tp_rows.items():
            same = r["profile"]["parameters"] == ours_trunk.get(ratio)
            notes.append(f"{ratio:.0%}: Torch-Pruning's parameter count {'equals' if same else 'differs from'} ours "
                         f"(trunk only){'' if r['consistent_with_our_units'] else '; its model does not fit our units'}")
        pred = a["prediction"]
        notes.append(f"plan prediction: cost model built in {pred['cost_model_build_ms']:.1f} ms; "
                     f"predict from counts {pred['predict_ms'] * 1e3:.0f} µs, resolve + predict "
                     f"{pred['resolve_and_predict_ms']:.2f} ms (median)")
        if a["arch"] == "resnet50":
            ours = {r["ratio"]: r["profile"]["size_mb"] for r in a["rows"]
                    if r["variant"] == "original" or (r["variant"].startswith("ours") and not r["variant"].endswith("only"))}
            notes.append("seed table (ResNet-50 OS2D, fp32): " + " → ".join(f"{SEED_MB[k]:.2f}" for k in sorted(SEED_MB))
                         + " MB; ours: " + " → ".join(f"{ours[k]:.2f}" for k in sorted(ours) if k in SEED_MB) + " MB")
        lines += [""] + [f"- {n}" for n in notes]
    lines += ["", f"Command: `{args.command}`", END]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats, 1 warm-up: checks the run, not for quoting")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--ratios", default="0.3,0.5")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    args = ap.parse_args(argv)
    args.command = command_line("pruning", argv)
    args.repeats = args.repeats if args.repeats is not None else (2 if args.quick else 15)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    ratios = [float(r) for r in args.ratios.split(",")]
    results = [bench_arch(a.strip(), ratios, args) for a in args.archs.split(",")]
    section = markdown(results, args)
    write_section(args.out, "pruning", section)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
