"""LCP as its paper runs it, beside the gradient-free rankings: mAP after the same fine-tune budget, each
with a bootstrap interval, and what each ranking and each whole pipeline costs.

Rows per ratio, every one fine-tuned with the same number of iterations in total, with distillation from
the original:
- one-shot cuts ranked by weight L1, by the gradient-free `combined` score, and by one-step LCP (the
  gradient at the start of selection, on the unpruned model);
- one-shot cuts followed by LCP's reconstruction step alone (`--reconstructed`, default weight L1): the
  consumers' kept input weights refit by least squares to the uncut model's outputs inside the context
  boxes (`core.prune.reconstruct`), a gradient-free update, before the same fine-tune;
- one-shot cuts with ratios allocated across units (`--allocated`, none by default): each unit's scores
  over their mean, one threshold for all units, at the MACs the uniform cut leaves (`core.prune.allocate`);
- staged LCP (`prune-stages --criterion lcp --reconstruct --stage-by unit`): one stage per unit, the head
  first, then the trunk shallow to deep; each stage ranked by the LCP gradient on the model the earlier
  stages left, its consumers' kept weights rebuilt by least squares, then a share of the fine-tune budget.

Every mAP is scored on the val images (held-out classes) the model's checkpoint was not selected on, with a
95 % bootstrap interval over images; differences against weight L1 are paired (the same resamplings for
both models), and a difference whose interval holds 0 is called noise. Every finished step is cached in
the work folder, so a killed run continues where it stopped.

    .venv/bin/python -m bench.lcp_reference --dataset data/synth-0 --work data/lcp-reference
    # smoke run (random model, tiny dataset; numbers mean nothing):
    .venv/bin/python -m bench.lcp_reference --model random:resnet18 --dataset resources/samples/benchmark \\
        --calib-images 1 --iterations 2 --target-size 256 --bootstrap 20 --work /tmp/lr --out /tmp/lr.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.seed_table import Cache, original_model
from bench.sections import command_line, cpu_name, markers, write_section
from core.data.grozi import open_dataset
from core.detect import Detector, pick_device
from core.eval.evaluate import EvalConfig, evaluate
from core.eval.map import bootstrap_maps, interval
from core.importance.calibration import build_calibration
from core.importance.result import ImportanceResult, compute_importance
from core.jobs import ConsoleProgress
from core.model.checkpoint import load_model
from core.prune.job import prune, save_pruned
from core.prune.allocate import allocate
from core.prune.plan import PlanCostModel, PruningPlan
from core.prune.reconstruct import reconstruct_consumers
from core.prune.units import find_units
from core.train.batches import BatchConfig
from core.train.finetune import FinetuneConfig, finetune
from core.train.staged import STAGE_ORDER, StagedConfig, prune_in_stages, stage_plans

NAME = "lcp-reference"
ONE_SHOT = ("weight_l1", "combined", "lcp")
LABELS = {"weight_l1": "weight L1", "combined": "gradient-free combined", "lcp": "LCP, one step",
          "lcp_staged": "LCP, staged (as its paper runs it)"}
REC = "+reconstruction"
ALLOC = "+allocated"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resources/models/default.pt")
    p.add_argument("--dataset", default="data/synth-0")
    p.add_argument("--work", default="data/lcp-reference")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.3])
    p.add_argument("--iterations", type=int, default=100, help="fine-tune iterations per row (staged: in total)")
    p.add_argument("--calib-images", type=int, default=8)
    p.add_argument("--bootstrap", type=int, default=1000, help="resamplings of the val images")
    p.add_argument("--target-size", type=float, default=None, help="default: the model's eval scale")
    p.add_argument("--no-pruned-map", dest="pruned_map", action="store_false",
                   help="score only the fine-tuned models (the cuts' own mAP is in the seed-study table)")
    p.add_argument("--no-staged", dest="staged", action="store_false",
                   help="leave out the staged LCP row (hours on a small CPU); the section says so")
    p.add_argument("--rankings", nargs="+", default=list(ONE_SHOT), choices=ONE_SHOT,
                   help="one-shot rows (weight L1, the paired reference, is always run)")
    p.add_argument("--reconstructed", nargs="*", default=["weight_l1"], choices=ONE_SHOT,
                   help="one-shot rankings also run with the consumers reconstructed after the cut")
    p.add_argument("--allocated", nargs="*", default=[], choices=ONE_SHOT,
                   help="one-shot rankings also run with ratios allocated across units at the uniform cut's MACs")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    p.add_argument("--section", default=NAME)
    args = p.parse_args(argv)
    args.rankings = ["weight_l1"] + [c for c in args.rankings if c != "weight_l1"]
    args.command = command_line("lcp_reference.py", argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache = Cache(work)
    device = pick_device(args.device)
    orig_path, model_scale, selected_on, model_sha = original_model(args.model, work)
    cache.bind("model_sha256", model_sha, "model")
    cache.bind("budget", {"iterations": args.iterations, "calib": args.calib_images}, "fine-tune budget")
    train_ds, val_ds = open_dataset(args.dataset, "train"), open_dataset(args.dataset, "val")
    scale = float(args.target_size or model_scale or val_ds.eval_scale)
    eval_cfg = EvalConfig(exclude_spread=(selected_on,) if selected_on else ())
    batch = BatchConfig(batch_size=4, class_batch_size=6, crop_size=384, train_scale=scale)

    def score(path: Path, key: str) -> dict:
        """mAP and its bootstrap resamplings (the same draws for every model: paired)."""
        if cache.get(key) is None:
            model = load_model(path).model.to(device).eval()
            report = evaluate(Detector(model, device, target_size=scale), val_ds, split="val", config=eval_cfg,
                              progress=ConsoleProgress(f"eval {key}"), keep_detections=True)
            boot = bootstrap_maps(report.detections, report.ground_truth, samples=args.bootstrap, seed=0)
            cache.put(key, {"map": report.map, "images": report.num_images, "boot": boot.round(5).tolist()})
        return cache.get(key)

    def tune(model_path: Path, tag: str) -> Path:
        ft_path = work / f"{tag}-ft.pt"
        if not ft_path.exists():
            t0 = time.perf_counter()
            finetune(FinetuneConfig(model=str(model_path), dataset=args.dataset, out=str(ft_path), teacher=str(orig_path),
                                    iterations=args.iterations, evaluate_before_after=False, batch=batch,
                                    device=args.device, threads=args.threads, work_dir=str(work / f"{tag}-ft.run")),
                     progress=ConsoleProgress(f"finetune {tag}"))
            cache.put(f"seconds/finetune/{tag}", time.perf_counter() - t0)
        return ft_path

    original = load_model(orig_path).model.to(device).eval()
    base = score(orig_path, "map/original")
    calib_cache: list = []

    def calibration():
        if not calib_cache:
            calib_cache.append(build_calibration(train_ds, args.calib_images, scale, 0,
                                                 class_image_size=original.config.class_image_size,
                                                 progress=ConsoleProgress("calibration")))
        return calib_cache[0]

    imp_path = work / "importance"
    # `combined` always: its statistics pass is the cost table's baseline
    needed = [c for c in ONE_SHOT if c in {"combined", *args.rankings, *args.reconstructed, *args.allocated}]
    importance = ImportanceResult.load(imp_path) if Path(str(imp_path) + ".json").exists() else None
    if importance is None or not set(needed) <= set(importance.criteria):
        importance = compute_importance(original, calibration(), needed, model_path=str(orig_path),
                                        progress=ConsoleProgress("importance"))
        importance.save(imp_path)

    rows = []
    for ratio in args.ratios:
        r = f"r{round(ratio * 100):02d}"
        for crit in args.rankings:
            tag = f"{r}-{crit}"
            pruned = work / f"{tag}.pt"
            if not pruned.exists():
                t0 = time.perf_counter()
                res = prune(original.cpu(), PruningPlan(ratio=ratio, criterion=crit), importance)
                save_pruned(res, pruned, orig_path, extra_meta={"eval_scale": scale})
                cache.put(f"seconds/cut/{tag}", time.perf_counter() - t0)
            ft = tune(pruned, tag)
            rows.append({"ratio": ratio, "ranking": crit, "pruned": score(pruned, f"map/{tag}") if args.pruned_map else None,
                         "tuned": score(ft, f"map/{tag}-ft"), "finetune_s": cache.get(f"seconds/finetune/{tag}"),
                         "cut_s": cache.get(f"seconds/cut/{tag}")})
        for crit in args.reconstructed:
            tag = f"{r}-{crit}-rec"
            pruned = work / f"{tag}.pt"
            if not pruned.exists():
                t0 = time.perf_counter()
                res = prune(original.cpu(), PruningPlan(ratio=ratio, criterion=crit), importance)
                original.to(device)
                rec = reconstruct_consumers(original, res.model.to(device), res.kept, calibration(),
                                            progress=ConsoleProgress(f"reconstruct {tag}"))
                save_pruned(res, pruned, orig_path, extra_meta={"eval_scale": scale, "reconstruction": rec.summary()})
                cache.put(f"seconds/cut/{tag}", time.perf_counter() - t0)
            ft = tune(pruned, tag)
            # the cut's own mAP is scored here always: what reconstruction changes before any fine-tuning
            rows.append({"ratio": ratio, "ranking": crit + REC, "pruned": score(pruned, f"map/{tag}"),
                         "tuned": score(ft, f"map/{tag}-ft"), "finetune_s": cache.get(f"seconds/finetune/{tag}"),
                         "cut_s": cache.get(f"seconds/cut/{tag}")})
        for crit in args.allocated:
            tag = f"{r}-{crit}-alloc"
            pruned = work / f"{tag}.pt"
            if not pruned.exists():
                t0 = time.perf_counter()
                units = find_units(original)
                allocation = allocate(PruningPlan(ratio=ratio, criterion=crit), units, importance,
                                      PlanCostModel.from_model(original.cpu(), units), budget="macs")
                res = prune(original.cpu(), allocation.plan, importance)
                save_pruned(res, pruned, orig_path, extra_meta={"eval_scale": scale, "allocation": allocation.to_json()})
                cache.put(f"seconds/cut/{tag}", time.perf_counter() - t0)
            ft = tune(pruned, tag)
            rows.append({"ratio": ratio, "ranking": crit + ALLOC,
                         "pruned": score(pruned, f"map/{tag}") if args.pruned_map else None,
                         "tuned": score(ft, f"map/{tag}-ft"), "finetune_s": cache.get(f"seconds/finetune/{tag}"),
                         "cut_s": cache.get(f"seconds/cut/{tag}")})
        if not args.staged:
            continue
        tag = f"{r}-lcp_staged"
        out = work / f"{tag}.pt"
        plan = PruningPlan(ratio=ratio, criterion="lcp")
        n = len(stage_plans(plan, original, STAGE_ORDER, "unit"))
        if not out.exists():
            t0 = time.perf_counter()
            prune_in_stages(StagedConfig(
                model=str(orig_path), dataset=args.dataset, out=str(out), plan=plan, stage_by="unit", reconstruct=True,
                iterations_per_stage=max(1, args.iterations // n), calib_images=args.calib_images,
                finetune=FinetuneConfig(model="", dataset="", out="", threads=args.threads, batch=batch),
                evaluate_before_after=False, device=args.device), progress=ConsoleProgress(f"stages {tag}"))
            cache.put(f"seconds/pipeline/{tag}", time.perf_counter() - t0)
        stages = load_model(out).meta.get("stages", [])
        costs = [s.get("cost") or {} for s in stages]
        rows.append({"ratio": ratio, "ranking": "lcp_staged", "pruned": None, "tuned": score(out, f"map/{tag}"),
                     "stages": len(stages), "iterations_per_stage": max(1, args.iterations // n),
                     "rank_s": sum(c.get("rank_seconds", 0.0) for c in costs),
                     "reconstruct_s": sum(c.get("reconstruct_seconds", 0.0) for c in costs),
                     "backward_passes": sum(c.get("backward_passes", 0) for c in costs),
                     "rank_peak_bytes": max((c.get("rank_peak_bytes", 0) for c in costs), default=0),
                     "pipeline_s": cache.get(f"seconds/pipeline/{tag}")})
    section = markdown(rows, base, importance, args, scale, model_sha, selected_on)
    write_section(args.out, args.section, section)
    print(section)
    return 0


def _ci(entry: dict) -> str:
    lo, hi = interval(np.array(entry["boot"]))
    return f"{entry['map']:.3f} [{lo:.3f}, {hi:.3f}]"


def _versus(entry: dict, ref: dict) -> str:
    """The paired difference to the reference row with its interval, and what it means."""
    diff = np.array(entry["boot"]) - np.array(ref["boot"])
    lo, hi = interval(diff)
    verdict = "noise" if lo <= 0 <= hi else ("better" if lo > 0 else "worse")
    return f"{entry['map'] - ref['map']:+.3f} [{lo:+.3f}, {hi:+.3f}] {verdict}"


def _mb(b: int) -> str:
    return f"{b / 2 ** 20:.0f}" if b else "—"


def markdown(rows, base, importance, args, scale, model_sha, selected_on) -> str:
    start, end = markers(args.section)
    images = base["images"]
    title = ("LCP as its paper runs it, beside the gradient-free rankings" if getattr(args, "staged", True)
             else "One-shot cuts, with and without LCP's reconstruction step")
    lines = [start, f"## {title} (`bench/lcp_reference.py`, section `{args.section}`)", "",
             f"Model `{args.model}` (sha256 {model_sha[:12]}…) at scale {scale:g}; benchmark `{args.dataset}`: "
             f"{images} val images of held-out classes"
             + (f" (all but the {selected_on} the model's checkpoint was selected on)" if selected_on else "")
             + f"; calibration {args.calib_images} train images. Every row is fine-tuned {args.iterations} iterations "
             "in total (batch 4×6 classes, distillation from the original)"
             + ("; staged LCP spreads them over its stages. " if getattr(args, "staged", True) else ". ") +
             f"mAP@0.5 [95 % bootstrap interval, {args.bootstrap} resamplings of the images]; the difference to "
             "weight L1 is paired (the same resamplings), and called noise when its interval holds 0. "
             f"Run {time.strftime('%Y-%m-%d')} on {cpu_name()}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads.", "",
             f"Original: {_ci(base)}.", "",
             "| ratio | ranking | mAP pruned | mAP fine-tuned | vs weight L1, fine-tuned | as cut (refit only) vs weight L1 fine-tuned |",
             "|---:|---|---:|---:|---|---|"]
    ref = {r["ratio"]: r for r in rows if r["ranking"] == "weight_l1"}
    for r in rows:
        crit = r["ranking"].removesuffix(REC).removesuffix(ALLOC)
        label = LABELS[crit] + {REC: ", consumers reconstructed after the cut",
                                ALLOC: ", ratios allocated across units (the uniform cut's MACs)"}.get(
                                    r["ranking"][len(crit):], "")
        if r["ranking"] == "lcp_staged":
            label += f", {r['stages']} stages × {r['iterations_per_stage']} iterations"
        vs = "—" if r["ranking"] == "weight_l1" else _versus(r["tuned"], ref[r["ratio"]]["tuned"])
        # a refit cut may need no fine-tuning: how it stands as cut against weight L1 after its fine-tune
        as_cut = (_versus(r["pruned"], ref[r["ratio"]]["tuned"]) if r["ranking"].endswith(REC) and r["pruned"]
                  else "—")
        lines.append(f"| {r['ratio']:.0%} | {label} | {'—' if r['pruned'] is None else _ci(r['pruned'])} | "
                     f"{_ci(r['tuned'])} | {vs} | {as_cut} |")
    t = importance.timings
    stats = t.get("statistics")
    one_step = t.get("lcp")
    lines += ["", "What each ranking costs on this model (CPU peak memory is the process's peak RSS during the "
              "phase; staged LCP's is the largest of its stages'):", "",
              "| ranking | wall s | peak MB | backward passes | wall / statistics pass |", "|---|---:|---:|---:|---:|"]
    if stats is not None:
        lines.append(f"| gradient-free statistics pass (`combined`) | {stats.seconds:.1f} | {_mb(stats.peak_bytes)} | 0 | 1 |")
    if one_step is not None and stats is not None:
        lines.append(f"| LCP, one step | {one_step.seconds:.1f} | {_mb(one_step.peak_bytes)} | "
                     f"{args.calib_images * len(importance.units)} | {one_step.seconds / stats.seconds:.0f}x |")
    for r in (r for r in rows if r["ranking"] == "lcp_staged"):
        base_s = stats.seconds if stats else float("nan")
        whole = r["rank_s"] + r["reconstruct_s"]
        lines.append(f"| LCP, staged, {r['ratio']:.0%}: rankings alone | {r['rank_s']:.1f} | {_mb(r['rank_peak_bytes'])} | "
                     f"{r['backward_passes']} | {r['rank_s'] / base_s:.0f}x |")
        lines.append(f"| LCP, staged, {r['ratio']:.0%}: rankings + reconstruction | {whole:.1f} | — | "
                     f"{r['backward_passes']} | {whole / base_s:.0f}x |")
        if r.get("pipeline_s"):
            lines.append(f"| LCP, staged, {r['ratio']:.0%}: the rankings need the stage fine-tunes between them: "
                         f"whole pipeline | {r['pipeline_s']:.0f} | — | {r['backward_passes']} | "
                         f"{r['pipeline_s'] / base_s:.0f}x |")
    if not getattr(args, "staged", True):
        lines += ["", "Staged LCP was left out of this run (`--no-staged`); its rankings alone cost at least what "
                  "one-step LCP costs, as each stage ranks its own units once more on the model so far."]
    pipelines = []
    for ratio in args.ratios:
        comb = next((r for r in rows if r["ratio"] == ratio and r["ranking"] == "combined"), None)
        st = next((r for r in rows if r["ratio"] == ratio and r["ranking"] == "lcp_staged"), None)
        if comb and st and stats and comb.get("finetune_s") and st.get("pipeline_s"):
            one = stats.seconds + (comb.get("cut_s") or 0.0) + comb["finetune_s"]
            pipelines.append(f"- {ratio:.0%}: gradient-free one-shot {one:.0f} s, staged LCP {st['pipeline_s']:.0f} s "
                             f"({st['pipeline_s'] / one:.1f}x)")
    if pipelines:
        lines += ["", "Whole pipelines (ranking + cut + the same fine-tune budget), wall seconds:", "", *pipelines]
    lines += ["", f"Command: `{args.command}`", end, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
