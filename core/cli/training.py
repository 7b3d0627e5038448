"""Training and recovering accuracy: `train`, `finetune`, `prune-stages` (prune and fine-tune stage by stage)."""

from __future__ import annotations

import argparse
import json

from core.cli.options import non_negative_int, open_model, positive_int
from core.errors import InputError
from core.jobs import ConsoleProgress


def _not_lead_rank(res) -> bool:
    """Under torchrun every rank prints its final-weights digest (they must agree); only rank 0 goes on
    to report, as it alone wrote the model."""
    if res.world_size > 1:
        print(f"rank {res.rank}/{res.world_size} weights sha256 {res.weights_sha256}", flush=True)
    return res.rank != 0


# -- train -----------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from dataclasses import replace

    from core.train.batches import BatchConfig
    from core.train.loop import TrainConfig, train
    from core.model.backbone import ARCHITECTURES
    from core.train.loss import LossConfig

    if args.backbone not in ARCHITECTURES:
        raise InputError("--backbone", f"unknown backbone '{args.backbone}', expected one of {', '.join(ARCHITECTURES)}")
    batch = BatchConfig(batch_size=args.batch_size, class_batch_size=args.class_batch_size, crop_size=args.crop_size,
                        train_scale=args.train_scale)
    cfg = TrainConfig(dataset=args.dataset, extra_train=tuple(args.extra_train), out=args.out, work_dir=args.work_dir or "", backbone=args.backbone,
                      init=args.init or "", init_trunk=args.init_trunk or "", iterations=args.iterations, lr=args.lr,
                      optimizer=args.optimizer, batch=batch, eval_every=args.eval_every, eval_images=args.eval_images,
                      checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device, threads=args.threads,
                      resume=not args.restart, remap_from=args.remap_from,
                      loss=LossConfig(match_weight=args.match_weight, match_temperature=args.match_temperature))
    if args.teacher:
        cfg = replace(cfg, teacher=args.teacher)
    res = train(cfg, progress=ConsoleProgress("train"),
                log=lambda e: print(json.dumps(e), flush=True) if "mAP@0.5" in e else None)
    if _not_lead_rank(res):
        return 0
    print(f"wrote {res.out} after {res.iterations} iterations ({res.seconds / 60:.1f} min), "
          f"best val mAP {res.best_map if res.best_map is None else round(res.best_map, 4)}")
    return 0


def add_train(sub) -> None:
    t = sub.add_parser("train", help="train an OS2D model (resumes from its work folder)")
    t.add_argument("--dataset", required=True)
    t.add_argument("--extra-train", nargs="+", default=[], metavar="DATASET",
                   help="more datasets (folders or grozi:PATH, all their splits) to train on; --dataset's val "
                        "split stays the held-out evaluation and must share no class image with them")
    t.add_argument("--out", required=True)
    t.add_argument("--work-dir")
    t.add_argument("--backbone", default="resnet18", help="resnet18, resnet34, resnet50 or resnet101")
    t.add_argument("--init", help="start from this OS2D model")
    t.add_argument("--init-trunk", help="torchvision ImageNet ResNet weights for the trunk")
    t.add_argument("--teacher", help="distil from this model")
    t.add_argument("--iterations", type=positive_int, default=3000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    t.add_argument("--batch-size", type=positive_int, default=4)
    t.add_argument("--class-batch-size", type=positive_int, default=8)
    t.add_argument("--crop-size", type=positive_int, default=448)
    t.add_argument("--train-scale", type=float, default=0)
    t.add_argument("--eval-every", type=non_negative_int, default=500)
    t.add_argument("--eval-images", type=non_negative_int, default=40)
    t.add_argument("--checkpoint-every", type=positive_int, default=50)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=non_negative_int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--remap-from", type=float, default=0.0,
                   help="fraction of the run trained on anchor targets before OS2D's target remapping starts")
    t.add_argument("--match-weight", type=float, default=0.0,
                   help="weight of the aligned-matching loss on ground-truth boxes (helps training from scratch)")
    t.add_argument("--match-temperature", type=float, default=0.1)
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in the work folder")
    t.set_defaults(func=cmd_train)


# -- finetune --------------------------------------------------------------------------------------
def _finetune_config(args, **fields):
    """A FinetuneConfig from the options `_add_finetune_options` added (shared by finetune and prune-stages)."""
    from core.train.batches import BatchConfig
    from core.train.finetune import FinetuneConfig

    if args.lr is not None:
        fields["lr"] = args.lr
    return FinetuneConfig(dataset=args.dataset, out=args.out, giou_weight=args.giou_weight,
                          match_weight=args.match_weight, distill_score_weight=args.distill_score,
                          distill_attention_weight=args.distill_attention,
                          distill_box_weight=args.distill_box,
                          batch=BatchConfig(batch_size=args.batch_size, class_batch_size=args.class_batch_size,
                                            crop_size=args.crop_size),
                          eval_images=args.eval_images, evaluate_before_after=not args.no_eval, seed=args.seed,
                          checkpoint_every=args.checkpoint_every, device=args.device, threads=args.threads,
                          extra_train=tuple(args.extra_train), select_every=args.select_every,
                          select_images=args.select_images, **fields)


def _add_finetune_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: FinetuneConfig.lr, the one bench/seed_table.py measured best)")
    p.add_argument("--giou-weight", type=float, default=0.5)
    p.add_argument("--match-weight", type=float, default=None,
                   help="aligned-matching loss weight (default: as the model, or its teacher, was trained)")
    p.add_argument("--distill-score", type=float, default=1.0)
    p.add_argument("--distill-attention", type=float, default=1.0)
    p.add_argument("--distill-box", type=float, default=0.0,
                   help="weight of the teacher's boxes at its most confident locations (0: off)")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--class-batch-size", type=positive_int, default=6)
    p.add_argument("--crop-size", type=positive_int, default=384)
    p.add_argument("--eval-images", type=non_negative_int, default=0)
    p.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    p.add_argument("--extra-train", nargs="+", default=[], metavar="DATASET",
                   help="more datasets (all their splits) to fine-tune on; more classes, less forgetting")
    p.add_argument("--select-every", type=non_negative_int, default=0, metavar="N",
                   help="score every N iterations on --select-images val images and keep the best (0: the last)")
    p.add_argument("--select-images", type=positive_int, default=30)
    p.add_argument("--checkpoint-every", type=positive_int, default=25,
                   help="iterations between resumable checkpoints (OUT.run/last.pt); rerun the command to resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=non_negative_int, default=0)
    p.add_argument("--device", default="auto")


def cmd_finetune(args) -> int:
    from core.io import atomic_write_text
    from core.train.finetune import finetune

    cfg = _finetune_config(args, model=args.model, teacher=args.teacher or "", epochs=args.epochs,
                           iterations=args.iterations)
    res = finetune(cfg, progress=ConsoleProgress("finetune"))
    if _not_lead_rank(res.train):
        return 0
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"mAP@0.5 before {fmt(res.map_before)} → after {fmt(res.map_after)} (teacher {fmt(res.teacher_map)}); "
          f"{res.train.iterations} iterations in {res.train.seconds / 60:.1f} min; wrote {res.out}")
    if args.json:
        atomic_write_text(args.json, json.dumps(res.to_json(), indent=1))
    return 0


def add_finetune(sub) -> None:
    ft = sub.add_parser("finetune", help="recover accuracy: detection loss + GIoU + distillation from the teacher")
    ft.add_argument("--model", required=True, help="the pruned model")
    ft.add_argument("--teacher", help="the unpruned model to distil from")
    ft.add_argument("--dataset", required=True)
    ft.add_argument("--out", required=True)
    ft.add_argument("--epochs", type=float, default=1.0)
    ft.add_argument("--iterations", type=non_negative_int, default=0, help="overrides --epochs")
    _add_finetune_options(ft)
    ft.add_argument("--json")
    ft.set_defaults(func=cmd_finetune)


# -- prune-stages ----------------------------------------------------------------------------------
def cmd_prune_stages(args) -> int:
    from core.io import atomic_write_text
    from core.prune.plan import PruningPlan
    from core.train.staged import STAGE_ORDER, StagedConfig, prune_in_stages

    plan = PruningPlan.load(args.plan) if args.plan else PruningPlan(ratio=args.ratio)
    if args.criterion:
        plan = plan.with_changes(criterion=args.criterion)
    elif not args.plan:
        plan = plan.with_changes(criterion="combined")
    model = open_model(args.model).path
    cfg = StagedConfig(model=model, dataset=args.dataset, out=args.out, plan=plan,
                       stages=tuple(args.stages or STAGE_ORDER), iterations_per_stage=args.iterations_per_stage,
                       calib_images=args.calib_images, finetune=_finetune_config(args, model="", teacher=""),
                       eval_images=args.eval_images, evaluate_before_after=not args.no_eval, device=args.device,
                       stage_by=args.stage_by, reconstruct=args.reconstruct)
    res = prune_in_stages(cfg, progress=ConsoleProgress("prune-stages"))
    for s in res.stages:
        rec = s.reconstruction
        fit = "" if not rec or rec["error_before"] is None else \
            f"; reconstruction error {rec['error_before']:.3f} → {rec['error_after']:.3f}"
        print(f"stage {s.label:<10} → {s.parameters:,} parameters{fit}  ({s.finetuned})")
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"mAP@0.5 original {fmt(res.map_before)} → staged {fmt(res.map_after)}; wrote {res.out}")
    if args.json:
        atomic_write_text(args.json, json.dumps(res.to_json(), indent=1))
    return 0


def add_prune_stages(sub) -> None:
    ps = sub.add_parser("prune-stages", help="LCP-style layer-wise pruning: prune one stage, fine-tune, then the "
                                             "next (--criterion lcp --reconstruct --stage-by unit: as LCP's paper "
                                             "runs it)")
    ps.add_argument("--model", help="the unpruned model (default: the embedded default model); also the teacher")
    ps.add_argument("--dataset", required=True)
    g = ps.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", help="plan.json with the final ratios")
    g.add_argument("--ratio", type=float, help="one global ratio of channels to remove, e.g. 0.3")
    ps.add_argument("--criterion", help="ranks each stage's channels on the model so far (default: the plan's, "
                                        "or combined with --ratio)")
    ps.add_argument("--stages", nargs="+",
                    help="groups in the order they are pruned (default: transform stem layer1 layer2 layer3; "
                         "groups the plan keeps whole are skipped)")
    ps.add_argument("--stage-by", choices=("group", "unit"), default="group",
                    help="one stage per group, or per prunable unit (layer by layer: the groups' order, "
                         "units shallow to deep within each)")
    ps.add_argument("--reconstruct", action="store_true",
                    help="after each cut, solve the consumers' kept weights by least squares so their outputs "
                         "inside the objects' context boxes match the model before the cut (LCP/DCP), on the "
                         "stage's calibration images, before its fine-tune")
    ps.add_argument("--iterations-per-stage", type=positive_int, default=50)
    ps.add_argument("--calib-images", type=positive_int, default=8,
                    help="train images each stage's ranking (and reconstruction) sees")
    ps.add_argument("--out", required=True, help="the final model (stages go to OUT.stages/; rerun to resume)")
    _add_finetune_options(ps)
    ps.add_argument("--json")
    ps.set_defaults(func=cmd_prune_stages)
