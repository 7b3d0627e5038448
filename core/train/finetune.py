"""Fine-tuning a pruned model: the training loop started from the pruned weights, with GIoU and
distillation from the unpruned teacher, and mAP measured before and after on the same split."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from core.data.grozi import open_dataset
from core.detect import Detector, pick_device
from core.eval.evaluate import EvalConfig, evaluate
from core.jobs import CancelToken, Phases, Progress, no_progress
from core.model.checkpoint import load_model
from core.train.batches import BatchConfig
from core.train.loop import TrainConfig, TrainResult, train
from core.train.loss import LossConfig


@dataclass(frozen=True)
class FinetuneConfig:
    model: str  # the pruned model
    dataset: str
    out: str
    teacher: str = ""  # the unpruned model; empty: no distillation
    epochs: float = 1.0  # passes over the training images (iterations = epochs * images / batch)
    iterations: int = 0  # overrides epochs when > 0
    lr: float = 5e-5  # bench/seed_table.py: beat 2e-4 on val images unseen when it was chosen (default model v2, commit 45dddb3)
    optimizer: str = "adamw"
    giou_weight: float = 0.5
    match_weight: float | None = None  # aligned-matching term; None: as the model (or teacher) was trained
    distill_score_weight: float = 1.0
    distill_attention_weight: float = 1.0
    distill_box_weight: float = 0.0
    batch: BatchConfig = field(default_factory=lambda: BatchConfig(class_batch_size=6, crop_size=384))
    eval_images: int = 0  # images of the val split for before/after mAP (0: all)
    evaluate_before_after: bool = True
    checkpoint_every: int = 25
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    work_dir: str = ""
    # more datasets (all their splits) to fine-tune on: more classes keep a pruned model general on classes it
    # never saw, where fine-tuning on a few dozen classes fits those and loses others (a 50 % cut did)
    extra_train: tuple[str, ...] = ()
    select_every: int = 0  # > 0: score every N iterations on `select_images` val images, keep the best
    select_images: int = 30


@dataclass(frozen=True)
class FinetuneResult:
    out: str
    map_before: float | None
    map_after: float | None
    teacher_map: float | None
    train: TrainResult

    def to_json(self) -> dict:
        return {"out": self.out, "map_before": self.map_before, "map_after": self.map_after,
                "teacher_map": self.teacher_map, "iterations": self.train.iterations,
                "seconds": round(self.train.seconds, 1), "final_loss": self.train.final_loss}


def trained_loss(*metas: dict) -> LossConfig:
    """The loss recorded in the first model file that has one (the student's own training, else the
    teacher's), else OS2D's defaults. Why: fine-tuning on another objective than the one that made the
    model pulls it away from what it learned (our default model's aligned-matching term, for one)."""
    for meta in metas:
        training = (meta or {}).get("training")
        loss = training.get("config", {}).get("loss") if isinstance(training, dict) else None
        if isinstance(loss, dict):
            return LossConfig(**{k: v for k, v in loss.items() if k in LossConfig.__dataclass_fields__})
    return LossConfig()


def iterations_for(cfg: FinetuneConfig, num_images: int) -> int:
    if cfg.iterations > 0:
        return cfg.iterations
    return max(1, math.ceil(cfg.epochs * num_images / cfg.batch.batch_size))


def split_map(model, val_ds, device, scale: float, max_images: int, cancel: CancelToken,
              progress: Progress = no_progress) -> float | None:
    """mAP@0.5 of `model` on the val split at the model's scale (None without a split): the before /
    after measurement of the fine-tuning jobs."""
    if val_ds is None:
        return None
    return evaluate(Detector(model, device, target_size=scale), val_ds, split="val",
                    config=EvalConfig(max_images=max_images), progress=progress, cancel=cancel).map


SECONDS_PER_ITERATION_PER_IMAGE = 3.0  # phase weights: a training iteration costs about 3 evaluated images


def finetune(cfg: FinetuneConfig, *, progress: Progress = no_progress, cancel: CancelToken | None = None,
             log: Callable[[dict], None] | None = None) -> FinetuneResult:
    cancel = cancel or CancelToken()
    train_ds = open_dataset(cfg.dataset, "train")
    # under torchrun only rank 0 measures mAP: it alone writes `out`, and the others need not wait on it
    lead = int(os.environ.get("RANK", "0")) == 0
    val_ds = open_dataset(cfg.dataset, "val") if cfg.evaluate_before_after and lead else None
    device = pick_device(cfg.device)
    loaded = load_model(cfg.model)
    scale = loaded.scale(train_ds)

    iterations = iterations_for(cfg, len(train_ds.images))
    n_eval = 0
    if val_ds is not None:
        n_eval = min(cfg.eval_images, len(val_ds.images)) if cfg.eval_images > 0 else len(val_ds.images)
    steps = [("training", iterations * SECONDS_PER_ITERATION_PER_IMAGE)]
    if val_ds is not None:  # the before/after evaluations are steps of the bar, not a blank wait
        steps = ([("mAP before", n_eval)] + ([("teacher's mAP", n_eval)] if cfg.teacher else []) + steps
                 + [("mAP after", n_eval)])
    phases = Phases(progress, steps)

    def val_map(model, phase: str) -> float | None:
        if val_ds is None:  # no before/after evaluation (or not the lead rank): no such phase
            return None
        return split_map(model, val_ds, device, scale, cfg.eval_images, cancel, progress=phases(phase))

    teacher = load_model(cfg.teacher) if cfg.teacher else None
    before = val_map(loaded.model, "mAP before")
    teacher_map = val_map(teacher.model, "teacher's mAP") if teacher is not None else None
    loss = replace(trained_loss(loaded.meta, teacher.meta if teacher is not None else {}), giou_weight=cfg.giou_weight)
    if cfg.match_weight is not None:
        loss = replace(loss, match_weight=cfg.match_weight)
    del teacher  # the training loop loads its own copy
    tcfg = TrainConfig(
        dataset=cfg.dataset, extra_train=tuple(cfg.extra_train), out=cfg.out, work_dir=cfg.work_dir, init=cfg.model,
        teacher=cfg.teacher,
        iterations=iterations, lr=cfg.lr, optimizer=cfg.optimizer, warmup=10,
        batch=replace(cfg.batch, train_scale=cfg.batch.train_scale or scale),
        loss=loss,
        distill_score_weight=cfg.distill_score_weight if cfg.teacher else 0.0,
        distill_attention_weight=cfg.distill_attention_weight if cfg.teacher else 0.0,
        distill_box_weight=cfg.distill_box_weight if cfg.teacher else 0.0,
        eval_every=cfg.select_every, eval_images=cfg.select_images, checkpoint_every=cfg.checkpoint_every, seed=cfg.seed, device=cfg.device, threads=cfg.threads,
    )
    res = train(tcfg, progress=phases("training"), cancel=cancel, log=log)
    after = val_map(load_model(cfg.out).model, "mAP after") if val_ds is not None else None
    phases.done()
    return FinetuneResult(cfg.out, before, after, teacher_map, res)
