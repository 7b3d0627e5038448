"""The seed study's table on our default model and benchmark: prune 0 / 30 / 50 % with each criterion,
fine-tune every pruned model with the same budget, and report size, parameters, MACs, CPU latency
and mAP@0.5 before and after fine-tuning.

The criteria are ranked on one calibration set (train split: the held-out classes stay unseen) and
their ranking cost is reported, so "as good as LCP at a fraction of its cost" can be read off one
table. Every finished step is cached in the work folder, so a killed run continues where it stopped
(and a fine-tune killed mid-run resumes from its last checkpoint).

    PYTHONPATH=. .venv/bin/python bench/seed_table.py --model resources/models/default.pt \
        --dataset data/synth-0 --work data/seed-table            # writes bench/RESULTS.md, docs/seed-table.png
    # smoke run (random model, tiny dataset; numbers mean nothing):
    PYTHONPATH=. .venv/bin/python bench/seed_table.py --model random:resnet18 --dataset tests/data/tiny_os2d \
        --calib-images 2 --eval-images 2 --finetune-iterations 2 --target-size 256 --work /tmp/st --out /tmp/st.md \
        --plot /tmp/st.png --study /tmp/st.json

The rows also go to `--study` (resources/studies/seed-table.json, bundled with the app: the Metrics tab's
"Study: mAP vs size" draws them with the same `app.views.study_plot.draw_study` as the PNG), one entry per
`--section`, with the model's sha256, the benchmark, the val images, the fine-tune budget, the date and
the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.sections import cpu_name, command_line, markers, write_section  # noqa: E402
from core.data.grozi import open_dataset  # noqa: E402
from core.detect import Detector, pick_device  # noqa: E402
from core.eval.evaluate import EvalConfig, evaluate  # noqa: E402
from core.eval.profile import profile_model  # noqa: E402
from core.importance.calibration import build_calibration  # noqa: E402
from core.importance.result import ImportanceResult, compute_importance  # noqa: E402
from core.io import atomic_write_text  # noqa: E402
from core.jobs import ConsoleProgress  # noqa: E402
from core.model.checkpoint import load_model, save_model  # noqa: E402
from core.model.os2d import ModelConfig, OS2DModel  # noqa: E402
from core.prune.job import prune, save_pruned  # noqa: E402
from core.prune.plan import PruningPlan  # noqa: E402
from core.train.batches import BatchConfig  # noqa: E402
from core.train.finetune import FinetuneConfig, finetune  # noqa: E402
from core.train.staged import STAGE_ORDER, StagedConfig, prune_in_stages, stage_plans  # noqa: E402

NAME = "seed-table"
CRITERIA = ("combined", "weight_l1", "bn_gamma", "lcp")
LABELS = {"combined": "gradient-free combined", "combined_staged": "gradient-free combined, layer-wise stages",
          "weight_l1": "weight L1", "bn_gamma": "BN γ", "lcp": "gradient LCP"}
SEED = {0.0: (39.95, 0.83), 0.3: (28.05, 0.73), 0.5: (20.52, 0.60)}  # the seed study (ResNet-50, GroZi-3.2k)
STUDY = Path(__file__).resolve().parents[1] / "resources" / "studies" / "seed-table.json"


class Cache:
    """results.json in the work folder: one entry per finished step."""

    def __init__(self, work: Path) -> None:
        self.path = work / "results.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def bind(self, key: str, value, what: str) -> None:
        """Cached steps belong to one original model and one fine-tune budget: a changed file or budget
        must not reuse them silently (a fine-tuned model's file name does not say its budget)."""
        def shown(v) -> str:  # a sha shortened, a budget as JSON
            return f"{v[:12]}…" if isinstance(v, str) else json.dumps(v, sort_keys=True)

        known = self.data.get(key)
        if known is not None and known != value:
            raise SystemExit(f"{self.path}: these cached results belong to another {what} ({shown(known)}, "
                             f"now {shown(value)}); pass another --work folder")
        if known is None:
            self.put(key, value)

    def get(self, key: str):
        return self.data.get(key)

    def put(self, key: str, value) -> None:
        self.data[key] = value
        atomic_write_text(self.path, json.dumps(self.data, indent=1))


def original_model(spec: str, work: Path) -> tuple[Path, float | None, int, str]:
    """A model file, its eval scale, how many val images its training selected the checkpoint on and
    its sha256; `random:<backbone>` saves a seeded untrained model first (smoke runs)."""
    if spec.startswith("random:"):
        path = work / "original.pt"
        if not path.exists():
            torch.manual_seed(0)
            save_model(OS2DModel(ModelConfig(spec.split(":", 1)[1])), path)
        return path, None, 0, load_model(path).sha256
    loaded = load_model(spec)
    history = (loaded.meta.get("metrics") or {}).get("val_map_history") or []
    selected_on = max((int(h.get("images", 0)) for h in history if isinstance(h, dict)), default=0)
    return Path(loaded.path), loaded.eval_scale, selected_on, loaded.sha256


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resources/models/default.pt")
    p.add_argument("--dataset", default="data/synth-0")
    p.add_argument("--work", default="data/seed-table", help="pruned / fine-tuned models and the step cache")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5])
    p.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=CRITERIA)
    p.add_argument("--calib-images", type=int, default=8)
    p.add_argument("--eval-images", type=int, default=30, help="val images for every mAP (0: all)")
    p.add_argument("--eval-exclude", type=int, nargs="+", default=[-1], metavar="N",
                   help="first leave out the evenly spread subset of N val images, each N in turn (-1: the subset "
                        "the model's training selected its checkpoint on, from the model file; 0: none); "
                        "`-1 30 --eval-images 0` scores on the images neither checkpoint selection nor a "
                        "30-image table saw")
    p.add_argument("--finetune-iterations", type=int, default=150)
    p.add_argument("--finetune-lr", type=float, default=FinetuneConfig.lr)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--class-batch-size", type=int, default=6)
    p.add_argument("--crop-size", type=int, default=384)
    p.add_argument("--target-size", type=float, default=None, help="default: the model's eval scale")
    p.add_argument("--staged", action="store_true",
                   help="add the combined criterion pruned in LCP-style layer-wise stages (prune-stages), the "
                        "fine-tune iterations split evenly over the stages")
    p.add_argument("--no-control", dest="control", action="store_false",
                   help="skip fine-tuning the unpruned original with the same budget")
    p.add_argument("--latency-repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    p.add_argument("--section", default=NAME, help="the marked section of --out to replace (see bench/sections.py)")
    p.add_argument("--plot", default=str(Path(__file__).resolve().parents[1] / "docs" / "seed-table.png"),
                   help="mAP-vs-size plot to write ('' for none)")
    p.add_argument("--study", default=str(STUDY),
                   help="the rows as JSON, for the app's Metrics tab: this --section's entry is replaced ('' for none)")
    args = p.parse_args(argv)
    args.command = command_line("seed_table.py", argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache = Cache(work)
    device = pick_device(args.device)
    orig_path, model_scale, selected_on, model_sha = original_model(args.model, work)
    cache.bind("model_sha256", model_sha, "model")
    cache.bind("finetune", {"iterations": args.finetune_iterations, "lr": args.finetune_lr,
                            "batch": [args.batch_size, args.class_batch_size, args.crop_size]}, "fine-tune budget")
    args.eval_exclude = [selected_on if n < 0 else n for n in args.eval_exclude]
    args.eval_exclude = [n for n in args.eval_exclude if n > 0]
    original = load_model(orig_path).model.to(device).eval()
    train_ds, val_ds = open_dataset(args.dataset, "train"), open_dataset(args.dataset, "val")
    scale = float(args.target_size or model_scale or val_ds.eval_scale)
    eval_cfg = EvalConfig(max_images=args.eval_images, exclude_spread=tuple(args.eval_exclude))
    subset = f"{args.eval_images or 'all'}" + "".join(f"-x{n}" for n in args.eval_exclude)
    h = int(round(scale * math.sqrt(3 / 4)))
    latency_input = (h, int(round(h * 4 / 3)))  # a 4:3 shelf photo at the eval scale (h·w ≈ scale²)

    def val_map(path: Path, key: str) -> float:
        key = f"{key}@{subset}"  # the images scored are part of what was measured
        if cache.get(key) is None:
            model = load_model(path).model.to(device).eval()
            report = evaluate(Detector(model, device, target_size=scale), val_ds, split="val", config=eval_cfg,
                              progress=ConsoleProgress(f"eval {key}"))
            cache.put(key, report.map)
        return cache.get(key)

    def profile(path: Path) -> dict:
        """Counts and latency of the model's architecture. Timed on the copy Detector runs, the fastest of
        the repeats (one run's median wanders ±15 % on a shared VM); keyed by the architecture, so rows
        whose criteria chose different channels but the same counts share one measurement instead of
        showing noise as a difference."""
        model = load_model(path).model
        shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
        # the thread count is part of what was measured: the header states this run's
        key = f"profile/{hashlib.sha256(shapes.encode()).hexdigest()[:16]}@inference-min-t{torch.get_num_threads()}"
        if cache.get(key) is None:
            prof = profile_model(model, input_size=latency_input, repeats=args.latency_repeats, device="cpu")
            cache.put(key, {"parameters": prof.parameters, "size_mb": prof.size_mb, "gmacs": prof.macs / 1e9,
                            "cpu_ms": prof.cpu_latency_min_ms, "cpu_median_ms": prof.cpu_latency_ms})
        return cache.get(key)

    batch = BatchConfig(batch_size=args.batch_size, class_batch_size=args.class_batch_size, crop_size=args.crop_size,
                        train_scale=scale)

    def tune(model_path: Path, tag: str) -> Path:
        """The same fine-tune budget for every row (resumes a killed run from its last checkpoint)."""
        ft_path = work / f"{tag}-ft.pt"
        if not ft_path.exists():
            cfg = FinetuneConfig(
                model=str(model_path), dataset=args.dataset, out=str(ft_path), teacher=str(orig_path),
                iterations=args.finetune_iterations, lr=args.finetune_lr, evaluate_before_after=False, batch=batch,
                device=args.device, threads=args.threads, work_dir=str(work / f"{tag}-ft.run"))
            t0 = time.perf_counter()
            finetune(cfg, progress=ConsoleProgress(f"finetune {tag}"))
            if cache.get(f"ft_seconds/{tag}") is None:
                cache.put(f"ft_seconds/{tag}", time.perf_counter() - t0)
        return ft_path

    # 1. the original, and (control) the original given the same fine-tune budget: an undertrained
    # model gains from more iterations whether or not it was pruned
    rows = [{"ratio": 0.0, "criterion": "", **profile(orig_path),
             "map_before": val_map(orig_path, "map/original"), "map_after": None}]
    if args.control:
        rows[0]["map_after"] = val_map(tune(orig_path, "r00-original"), "map/r00-original-ft")
    base_map, base_ms = rows[0]["map_before"], rows[0]["cpu_ms"]

    # 2. every criterion on one calibration set; per-criterion wall time
    imp_path = work / "importance"
    importance = ImportanceResult.load(imp_path) if Path(str(imp_path) + ".json").exists() else None
    if importance is None or not set(args.criteria) <= set(importance.criteria):  # a run with fewer criteria cached it
        calib = build_calibration(train_ds, args.calib_images, scale, 0,
                                  class_image_size=original.config.class_image_size,
                                  progress=ConsoleProgress("calibration"))
        result = compute_importance(original, calib, list(args.criteria), model_path=str(orig_path),
                                    progress=ConsoleProgress("importance"))
        result.save(imp_path)
        importance = result
    timings = importance.timings

    # 3. prune, fine-tune with the same budget, measure
    for ratio in args.ratios:
        for crit in args.criteria:
            tag = f"r{int(round(ratio * 100)):02d}-{crit}"
            pruned_path = work / f"{tag}.pt"
            if not pruned_path.exists():
                res = prune(original, PruningPlan(ratio=ratio, criterion=crit), importance)
                save_pruned(res, pruned_path, orig_path, extra_meta={"eval_scale": scale})
            ft_path = tune(pruned_path, tag)
            rows.append({"ratio": ratio, "criterion": crit, **profile(pruned_path),
                         "map_before": val_map(pruned_path, f"map/{tag}"), "map_after": val_map(ft_path, f"map/{tag}-ft"),
                         "ft_seconds": cache.get(f"ft_seconds/{tag}")})

    # 4. optional: the combined criterion in LCP-style layer-wise stages, the same fine-tune budget in total
    if args.staged:
        for ratio in args.ratios:
            tag = f"r{int(round(ratio * 100)):02d}-combined_staged"
            out = work / f"{tag}-ft.pt"
            plan = PruningPlan(ratio=ratio, criterion="combined")
            order = [g for g, _ in stage_plans(plan, original, STAGE_ORDER)]
            n_stages = len(order)
            if not out.exists():
                t0 = time.perf_counter()
                prune_in_stages(StagedConfig(
                    model=str(orig_path), dataset=args.dataset, out=str(out), plan=plan,
                    iterations_per_stage=max(1, args.finetune_iterations // n_stages), calib_images=args.calib_images,
                    finetune=FinetuneConfig(model="", dataset="", out="", lr=args.finetune_lr, threads=args.threads,
                                            batch=batch),
                    evaluate_before_after=False, device=args.device), progress=ConsoleProgress(f"stages {tag}"))
                cache.put(f"ft_seconds/{tag}", time.perf_counter() - t0)
            rows.append({"ratio": ratio, "criterion": "combined_staged", **profile(out),
                         "map_before": None, "map_after": val_map(out, f"map/{tag}"),
                         "ft_seconds": cache.get(f"ft_seconds/{tag}"), "stages": n_stages, "order": order})

    rows.sort(key=lambda r: r["ratio"])  # a staged row beside its ratio's one-shot rows
    section = markdown(rows, timings, base_map, base_ms, args, scale, latency_input, str(orig_path), model_sha,
                       selected_on)
    write_section(args.out, args.section, section)
    if args.plot:
        plot(rows, args.plot)
    if args.study:
        write_study(args.study, study_entry(rows, args, scale, model_sha, selected_on))
    print(section)
    return 0


def _m(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _images(args, selected_on: int) -> str:
    """Which val images every mAP of the table was scored on, in words."""
    left_out = [f"the {n} the model's training selected its checkpoint on" if i == 0 and n == selected_on
                else f"{'then ' if i else ''}an evenly spread {n}{' of the rest' if i else ''}"
                for i, n in enumerate(args.eval_exclude)]
    text = f"{args.eval_images or 'all'} val images"
    if left_out:
        text += (" spread over those" if args.eval_images else "") + " left after leaving out " + ", ".join(left_out)
    return text


def markdown(rows, timings, base_map, base_ms, args, scale, latency_input, model_path, model_sha, selected_on) -> str:
    start, end = markers(args.section)
    cost = {c: timings[c].seconds if c in timings else None for c in CRITERIA}
    if "statistics" in timings:  # the statistics pass is what the gradient-free criterion costs
        cost["combined"] = (cost["combined"] or 0.0) + timings["statistics"].seconds
    which = "" if args.section == NAME else f", section `{args.section}`"
    control = "(and, as a control, the original: the 0 % row's fine-tuned mAP) " if args.control else ""
    lines = [start, f"## Seed-study table on the default model (`bench/seed_table.py`{which})", "",
             f"Model `{model_path}` (sha256 {model_sha[:12]}…), benchmark `{args.dataset}` (held-out classes, {_images(args, selected_on)}, eval scale {scale:g}); calibration {args.calib_images} train images; every pruned model "
             f"{control}fine-tuned {args.finetune_iterations} iterations (batch {args.batch_size}×{args.class_batch_size} "
             f"classes, lr {args.finetune_lr:g}, the loss the original was trained with + GIoU + score and attention distillation from the "
             f"original). Latency: the BN-folded channels-last copy detection runs, CPU ({cpu_name()}, {torch.get_num_threads()} "
             f"threads), one {latency_input[0]}×{latency_input[1]} image and one class, fastest of "
             f"{args.latency_repeats}. Measured {time.strftime('%Y-%m-%d')}.", "",
             "| ratio | criterion | params | size MB | GMACs | CPU ms | speedup | mAP pruned | mAP fine-tuned "
             "| retention | vs original fine-tuned | ranking cost s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    control = rows[0]["map_after"]
    for r in rows:
        ret = None if not base_map or r["map_after"] is None else r["map_after"] / base_map
        ret_c = None if not control or r["map_after"] is None else r["map_after"] / control
        speed = base_ms / r["cpu_ms"] if r.get("cpu_ms") and base_ms else None
        c = r["criterion"]
        lines.append(
            f"| {r['ratio']:.0%} | {LABELS.get(c, 'original')} | {r['parameters'] / 1e6:.2f} M | {r['size_mb']:.2f} | "
            f"{r['gmacs']:.1f} | {r['cpu_ms']:.0f} | {'—' if speed is None else f'{speed:.2f}x'} | "
            f"{_m(r['map_before'])} | {_m(r['map_after'])} | {'—' if ret is None else f'{ret:.0%}'} | "
            f"{'—' if ret_c is None else f'{ret_c:.0%}'} | "
            f"{'—' if not c or cost.get(c) is None else f'{cost[c]:.1f}'} |")
    lines += ["", "Targets: retention after fine-tuning ≥ 95 % at 30 % and ≥ 85 % at 50 %; the "
              "gradient-free criterion within 0.02 mAP of gradient LCP."]
    by = {(r["ratio"], r["criterion"]): r for r in rows}
    for ratio in args.ratios:
        gf, lcp = by.get((ratio, "combined")), by.get((ratio, "lcp"))
        ret = by.get((ratio, "combined"), {}).get("map_after")
        parts = []
        if ret is not None and base_map:
            parts.append(f"retention {ret / base_map:.0%}"
                         + (f" ({ret / control:.0%} of the equally fine-tuned original)" if control else ""))
        if gf and lcp and gf["map_after"] is not None and lcp["map_after"] is not None:
            parts.append(f"gradient-free − LCP = {gf['map_after'] - lcp['map_after']:+.3f} mAP")
        if cost.get("combined") and cost.get("lcp"):
            parts.append(f"ranking cost {cost['lcp'] / cost['combined']:.0f}x lower than LCP")
        st = by.get((ratio, "combined_staged"))
        if st and st["map_after"] is not None and base_map:
            parts.append(f"in {st['stages']} layer-wise stages ({' → '.join(st['order'])}; "
                         f"{args.finetune_iterations // st['stages']} fine-tune iterations each, each stage re-ranked) "
                         f"{st['map_after']:.3f}, retention "
                         f"{st['map_after'] / base_map:.0%}")
        lines.append(f"- {ratio:.0%}: " + "; ".join(parts))
    lines += ["", "The project report this tool grows from (ResNet-50 OS2D on GroZi-3.2k): " + ", ".join(
        f"{k:.0%}: {mb} MB / {m}" for k, (mb, m) in SEED.items()) + ". Different data and trunk: compare "
              "retention, not absolute mAP.", "", f"Command: `{args.command}`", "",
              *([f"![mAP vs size]({os.path.relpath(args.plot, Path(args.out).resolve().parent)})"] if args.plot else []),
              end]
    return "\n".join(lines) + "\n"


def study_entry(rows, args, scale, model_sha, selected_on) -> dict:
    """This run as one entry of the study file: what was measured on what, and the rows."""
    return {"section": args.section, "model": args.model, "model_sha256": model_sha, "dataset": args.dataset,
            "val_images": args.eval_images, "val_images_note": _images(args, selected_on), "eval_scale": scale,
            "calib_images": args.calib_images, "finetune_iterations": args.finetune_iterations,
            "finetune_lr": args.finetune_lr, "date": time.strftime("%Y-%m-%d"), "machine": cpu_name(),
            "threads": torch.get_num_threads(), "command": args.command,
            "labels": {r["criterion"]: LABELS.get(r["criterion"]) or r["criterion"] or "original" for r in rows},
            "rows": [dict(r) for r in rows]}


def write_study(path: str, entry: dict) -> None:
    """Replace the entry of `entry["section"]` in the study file (others stay, in order), atomically."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.views.study_plot import STUDY_FORMAT, STUDY_VERSION  # the format the app reads

    p = Path(path)
    data = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
    if data.get("format", STUDY_FORMAT) != STUDY_FORMAT:
        raise SystemExit(f"{p}: not a study file; pass another --study")
    studies = [s for s in data.get("studies", []) if s.get("section") != entry["section"]]
    at = next((i for i, s in enumerate(data.get("studies", [])) if s.get("section") == entry["section"]), len(studies))
    studies.insert(at, entry)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, json.dumps({"format": STUDY_FORMAT, "version": STUDY_VERSION,
                                     "title": "Seed-study table on the default model (bench/seed_table.py)",
                                     "studies": studies}, indent=1) + "\n")


def plot(rows, path: str) -> None:
    """mAP vs size, one colour per criterion, pruned (hollow) and fine-tuned (filled); pyqtgraph offscreen."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import app  # noqa: F401  (Qt workarounds first)
    from PySide6.QtWidgets import QApplication

    from app.views.plots import make_plot
    from app.views.study_plot import draw_study

    _ = QApplication.instance() or QApplication([])
    w = make_plot("mAP@0.5 vs model size (seed-study table)", "size (MB, fp32)", "mAP@0.5", title_size="11pt")
    w.resize(900, 560)
    w.setYRange(0.0, 1.0, padding=0.02)
    w.addLegend(offset=(-10, -10))  # bottom right: the small pruned models sit left, the original top right
    draw_study(w, rows, LABELS)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = str(Path(path).with_suffix(".tmp.png"))
    if not w.grab().save(tmp):
        raise OSError(f"{path}: could not write the plot")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
