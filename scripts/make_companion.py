"""Make the pruned companion shipped beside the default model (resources/models/default-pruned50.pt).

Steps, each skipped when its output exists (so a killed run resumes; fine-tuning resumes from its own
checkpoint): prune the default model 50 % by weight L1 (data-free: it recovered best with fine-tuning in
the seed table), fine-tune it with distillation from the original on the full benchmark's train split,
then evaluate both models on the benchmark's held-out val classes, leaving out the images the default
model's checkpoint was selected on, and record in the companion's file the score threshold with the best
F1 there (the app shows each side at its own threshold) with the evaluation. The original's best-F1
threshold is printed for `resources/samples/samples.json` (`min_score`).

    os2d-studio synth --out data/synth-0 --seed 0
    python scripts/make_companion.py --dataset data/synth-0 --work data/companion      # ~1 h on 2 CPU cores

Options for other copies: `--ratio`, `--iterations`, `--extra-train DATASET…` (more classes to fine-tune
on), `--distill-box W` (the original's boxes where it is confident), `--select-every N` (keep the best
checkpoint on the selection images). The 30 % copy the deployment bench also times:

    for s in 1 2; do os2d-studio synth --out data/synth-$s --seed $s; done
    python scripts/make_companion.py --work data/companion-30 --out data/companion-30/default-pruned30.pt \
        --ratio 0.3 --iterations 100 --extra-train data/synth-1 data/synth-2 --distill-box 1 --select-every 100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.data.grozi import open_dataset  # noqa: E402
from core.detect import Detector  # noqa: E402
from core.eval.evaluate import EvalConfig, evaluate  # noqa: E402
from core.importance.calibration import build_calibration  # noqa: E402
from core.importance.result import data_free_importance  # noqa: E402
from core.jobs import ConsoleProgress  # noqa: E402
from core.model.checkpoint import file_sha256, load_model, save_model  # noqa: E402
from core.prune.job import prune, save_pruned  # noqa: E402
from core.prune.plan import PruningPlan  # noqa: E402
from core.prune.reconstruct import reconstruct_consumers  # noqa: E402
from core.resources import companion_model_path, default_model_path  # noqa: E402
from core.train.finetune import FinetuneConfig, finetune  # noqa: E402

RATIO = 0.5
ITERATIONS = 500
HEAD_LAST = "os2d_head_creator.aligner.parameter_regressor.conv.3"
SELECTION_IMAGES = 30  # val images the default model's training selected its checkpoint on (left out)


def held_out_eval(path: Path, dataset: str) -> dict:
    loaded = load_model(path)
    ds = open_dataset(dataset, "val")
    report = evaluate(Detector(loaded.model, target_size=loaded.meta.get("eval_scale")), ds, split="val",
                      config=EvalConfig(exclude_spread=(SELECTION_IMAGES,)), progress=ConsoleProgress(path.name))
    return {"dataset": ds.name, "split": "val", "images": report.num_images, "map": round(report.map, 4),
            "best_f1_threshold": round(report.best_f1_threshold, 3), "exclude_spread": [SELECTION_IMAGES]}


def unit_ratios(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.rpartition("=")
        if not sep:
            raise SystemExit(f"--unit-ratio {pair}: expected UNIT=RATIO")
        out[name] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default=str(REPO / "data" / "synth-0"))
    p.add_argument("--work", default=str(REPO / "data" / "companion"))
    p.add_argument("--out", default=str(companion_model_path()))
    p.add_argument("--extra-train", nargs="*", default=[],
                   help="more benchmarks to fine-tune on (all their splits)")
    p.add_argument("--distill-box", type=float, default=0.0, help="weight of the original's boxes (0: off)")
    p.add_argument("--select-every", type=int, default=0,
                   help="keep the best checkpoint on the selection images, scored every N iterations (0: the last)")
    p.add_argument("--ratio", type=float, default=RATIO, help="share of every unit's channels removed")
    p.add_argument("--iterations", type=int, default=ITERATIONS, help="fine-tuning iterations (0: none)")
    p.add_argument("--unit-ratio", action="append", default=[], metavar="UNIT=R",
                   help="another ratio for one unit (repeat), e.g. the head's last layer kept whole: "
                        f"{HEAD_LAST}=0")
    p.add_argument("--reconstruct", type=int, default=0, metavar="N",
                   help="after the cut, refit the consumers' kept weights by least squares to the original's outputs "
                        "inside the objects' context boxes of N calibration train images (LCP's reconstruction step; "
                        "0: off)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    original = default_model_path()
    tag = f"pruned{round(100 * args.ratio)}"
    pruned, tuned = work / f"{tag}.pt", work / f"{tag}-ft.pt"
    if not pruned.exists():
        model = load_model(original).model
        plan = PruningPlan(ratio=args.ratio, criterion="weight_l1", unit_ratios=unit_ratios(args.unit_ratio))
        res = prune(model, plan, data_free_importance(model, ["weight_l1"]))
        scale = load_model(original).meta.get("eval_scale")
        meta = {"eval_scale": scale}
        if args.reconstruct:
            calib = build_calibration(open_dataset(args.dataset, "train"), args.reconstruct, scale, 0,
                                      class_image_size=model.config.class_image_size,
                                      progress=ConsoleProgress("calibration"))
            rec = reconstruct_consumers(model, res.model, res.kept, calib, progress=ConsoleProgress("reconstruct"))
            meta["reconstruction"] = rec.summary()
        save_pruned(res, pruned, str(original), parent_sha256=file_sha256(original), extra_meta=meta)
    if args.iterations == 0:  # the cut (and its refit) as it is
        tuned = pruned
    if not tuned.exists():
        finetune(FinetuneConfig(model=str(pruned), teacher=str(original), dataset=args.dataset, out=str(tuned),
                                iterations=args.iterations, evaluate_before_after=False, threads=args.threads,
                                extra_train=tuple(args.extra_train), select_every=args.select_every,
                                distill_box_weight=args.distill_box, select_images=SELECTION_IMAGES),
                 progress=ConsoleProgress("finetune"))
    evals = {}
    for name, path in (("original", original), ("companion", tuned)):
        cache = work / f"eval-{name}.json"
        if not cache.exists():
            cache.write_text(json.dumps(held_out_eval(path, args.dataset), indent=1))
        evals[name] = json.loads(cache.read_text())
    out = Path(args.out)
    if not out.exists():
        loaded = load_model(tuned)
        meta = dict(loaded.meta)
        meta["score_threshold"] = evals["companion"]["best_f1_threshold"]
        meta["evaluation"] = evals["companion"]
        save_model(loaded.model, out, meta=meta)
    print(json.dumps(evals, indent=1))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, sha256 {file_sha256(out)[:12]}…); "
          f"the original's best-F1 threshold for samples.json: {evals['original']['best_f1_threshold']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
