"""The training / fine-tuning job: OS2D loss (+ GIoU, + distillation from a teacher), periodic
atomic checkpoints, exact resume after a kill, periodic evaluation, DDP under torchrun.

A run lives in a work folder: `last.pt` (everything needed to resume: weights, optimizer, iteration,
history; with a digest of all of it, verified before resuming) and `best.pt`; the final model goes to
`out` in our self-describing format. Batches depend only on (seed, rank, iteration), so a resumed run
continues with the batches it would have seen.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from core.data.combine import check_disjoint_classes, concat_datasets
from core.data.grozi import DatasetError, OS2DDataset, open_dataset
from core.detect import Detector, pick_device
from core.eval.evaluate import EvalConfig, evaluate
from core.jobs import CancelToken, Cancelled, Progress, no_progress
from core.model import box_coder
from core.model.digest import weights_digest
from core.model.checkpoint import (CheckpointError, build_and_load, load_model, load_trunk_weights, read_checked,
                                   save_checked, save_model, unique_state_dict)
from core.model.os2d import ModelConfig, OS2DModel
from core.train.batches import BatchConfig, BatchSampler
from core.train.loss import (LossConfig, attention_distillation, box_distillation, build_targets, detection_loss,
                             matching_loss, remap_targets, score_distillation)


@dataclass(frozen=True)
class TrainConfig:
    dataset: str
    out: str
    work_dir: str = ""  # default: <out without suffix>.run/
    split: str = "train"
    val_split: str = "val"
    extra_train: tuple[str, ...] = ()  # more datasets (all their splits) added to the training data, never to val
    backbone: str = "resnet18"
    init: str = ""  # an OS2D model (ours or official) to start from
    init_trunk: str = ""  # a torchvision ImageNet ResNet state dict for the trunk
    teacher: str = ""  # fine-tuning: the unpruned model to distil from
    iterations: int = 3000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # or "sgd"
    warmup: int = 100
    min_lr_ratio: float = 0.02
    max_grad_norm: float = 10.0
    freeze_bn: bool = False  # fine-tuning a trained model: keep BN statistics fixed
    batch: BatchConfig = field(default_factory=BatchConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    remap_from: float = 0.0  # fraction of the run before which classification uses anchor targets (from scratch,
    # predicted boxes rarely reach remapping's IoU 0.8 and the classifier would see almost no positives)
    distill_score_weight: float = 0.0
    distill_attention_weight: float = 0.0
    distill_box_weight: float = 0.0  # the teacher's boxes where it is most confident (`loss.box_distillation`)
    eval_every: int = 500
    eval_images: int = 40
    checkpoint_every: int = 50
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0: torch's default)
    resume: bool = True

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["batch"] = BatchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.get("batch", {}).items()})
        d["loss"] = LossConfig(**d.get("loss", {}))
        d["extra_train"] = tuple(d.get("extra_train", ()))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TrainResult:
    out: str
    iterations: int
    seconds: float
    final_loss: float
    best_map: float | None
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    rank: int = 0
    world_size: int = 1
    weights_sha256: str = ""  # of this rank's final weights: DDP ranks must agree


class _TrainStep(nn.Module):
    """One forward for DDP: class branch (BN in eval mode: class images come one at a time), target branch, head."""

    def __init__(self, model: OS2DModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, class_images: list[torch.Tensor]):
        trunk = self.model.net_label_features.net_class_features
        was = [(m, m.training) for m in trunk.modules() if isinstance(m, nn.BatchNorm2d)]
        for m, _ in was:
            m.eval()
        class_feats = self.model.class_features(class_images)
        for m, t in was:
            m.train(t)
        feats = self.model.target_features(images)
        return self.model.head(feats, class_feats, with_detached=True), feats, class_feats


def _lr_factor(it: int, cfg: TrainConfig) -> float:
    if it < cfg.warmup:
        return (it + 1) / cfg.warmup
    t = (it - cfg.warmup) / max(cfg.iterations - cfg.warmup, 1)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (use adamw or sgd)")


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _init_distributed(device: torch.device) -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE set); gloo on CPU, nccl on GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def work_dir_for(cfg: TrainConfig) -> Path:
    return Path(cfg.work_dir) if cfg.work_dir else Path(cfg.out).with_suffix(".run")


def _initial_model(cfg: TrainConfig, eval_scale: float) -> tuple[OS2DModel, dict]:
    meta: dict = {}
    if cfg.init:
        loaded = load_model(cfg.init)
        meta.update({"parent": loaded.path, "parent_sha256": loaded.sha256})
        for k in ("eval_scale", "pruning", "channels"):
            if k in loaded.meta:
                meta[k] = loaded.meta[k]
        return loaded.model, meta
    model = OS2DModel(ModelConfig(backbone=cfg.backbone))
    if cfg.init_trunk:
        load_trunk_weights(model, cfg.init_trunk)
        meta["init_trunk"] = str(cfg.init_trunk)
    return model, meta


def train(cfg: TrainConfig, *, progress: Progress = no_progress, cancel: CancelToken | None = None,
          log: Callable[[dict], None] | None = None) -> TrainResult:
    """Train (or fine-tune, with `init` and `teacher`) and write the model to `cfg.out`."""
    cancel = cancel or CancelToken()
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    own_group = _init_distributed(device)
    rank, world = _dist_info()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    try:
        return _train(cfg, device, rank, world, progress, cancel, log)
    finally:
        if own_group:
            dist.destroy_process_group()


def _held_out(cfg: TrainConfig) -> OS2DDataset | None:
    """The val split, also when training never evaluates on it: its classes must stay unseen either way.
    Without evaluation a dataset may lack the split, and then there is nothing to guard."""
    if not cfg.val_split:
        return None
    try:
        return open_dataset(cfg.dataset, cfg.val_split)
    except DatasetError:
        if cfg.eval_every > 0:
            raise
        return None


def _train(cfg, device, rank, world, progress, cancel, log) -> TrainResult:
    out = Path(cfg.out)
    for p in (cfg.init, cfg.teacher):
        if p and out.exists() and out.resolve() == Path(p).resolve():
            raise CheckpointError(out, "refusing to overwrite an input model; choose another output path")
    work = work_dir_for(cfg)
    train_ds = open_dataset(cfg.dataset, cfg.split)
    if cfg.extra_train:
        train_ds = concat_datasets([train_ds, *(open_dataset(spec) for spec in cfg.extra_train)])
    held_out = _held_out(cfg)
    if held_out is not None:
        check_disjoint_classes(train_ds, held_out)
    val_ds = held_out if cfg.eval_every > 0 else None
    torch.manual_seed(cfg.seed)
    model, meta = _initial_model(cfg, train_ds.eval_scale)
    meta.setdefault("eval_scale", float(cfg.batch.train_scale or train_ds.eval_scale))
    model.to(device)
    teacher = None
    if cfg.teacher:
        teacher = load_model(cfg.teacher).model.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        meta["teacher"] = str(cfg.teacher)

    optimizer = _make_optimizer(model, cfg)
    state = {"iteration": 0, "history": [], "evals": [], "best_map": None, "seconds": 0.0}
    last = work / "last.pt"
    if cfg.resume and last.exists():
        ck = _read_resume(last)
        ck_cfg = ck.get("config", {})
        mine = cfg.to_json()
        if (ck_cfg.get("dataset"), list(ck_cfg.get("extra_train", []))) != (mine["dataset"], list(mine["extra_train"])):
            raise CheckpointError(last, "belongs to a run on another dataset; use another work folder")
        model_state = build_and_load(ck["model_config"], ck["model"], last)
        model = model_state.to(device)
        optimizer = _make_optimizer(model, cfg)
        try:
            optimizer.load_state_dict(ck["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError):
            raise CheckpointError(last, f"its optimizer state does not fit the model; {RESUME_HINT}") from None
        state.update(ck["state"])
        meta = ck.get("meta", meta)
        if cfg.batch.train_scale:  # a resumed run may continue at another scale; evaluate where it trains
            meta["eval_scale"] = float(cfg.batch.train_scale)
    elif cfg.resume is False and last.exists() and rank == 0:
        last.unlink()

    model.resample_dtype = torch.float32  # 4e-6 from float64 on the reference; much faster backward
    step = _TrainStep(model)
    ddp = world > 1
    images_per_step = cfg.batch.batch_size * world  # for the epoch shown with progress (passes over train images)
    if ddp:
        step = nn.parallel.DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = BatchSampler(train_ds, cfg.batch, class_image_size=model.config.class_image_size, seed=cfg.seed, rank=rank)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    def save_last() -> None:
        if rank != 0:
            return
        save_checked({
            "model_config": model.config.to_json(), "model": unique_state_dict(model),
            "optimizer": optimizer.state_dict(), "state": state, "config": cfg.to_json(), "meta": meta,
        }, last)

    start_it = state["iteration"]
    t0 = time.perf_counter() - state["seconds"]
    anchors_cache: dict = {}
    for it in range(start_it, cfg.iterations):
        cancel.raise_if_cancelled()
        for g in optimizer.param_groups:
            g["lr"] = cfg.lr * _lr_factor(it, cfg)
        model.train()
        if cfg.freeze_bn:
            model.freeze_bn()
        b = sampler.batch(it)
        images = b.images.to(device)
        class_images = [c.to(device) for c in b.class_images]
        with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext():
            pred, feats, class_feats = step(images, class_images)
        fm_h, fm_w = pred.fm_hw
        key = (fm_h, fm_w)
        if key not in anchors_cache:
            anchors_cache[key] = box_coder.strided_boxes(fm_h, fm_w, model.box_size, model.stride, device=device)
        anchors = anchors_cache[key]
        gt_boxes = [x.to(device) for x in b.boxes]
        gt_labels = [x.to(device) for x in b.labels]
        gt_diff = [x.to(device) for x in b.difficult]
        targets = build_targets(gt_boxes, gt_labels, gt_diff, len(b.class_ids), anchors, cfg.loss)
        with torch.no_grad():
            bsz, c, _, a = pred.loc.shape
            pred_boxes = box_coder.decode(pred.loc.detach().float().permute(0, 1, 3, 2).reshape(-1, 4),
                                    anchors.repeat(bsz * c, 1)).view(bsz, c, a, 4)
        remapped = (remap_targets(pred_boxes, gt_boxes, gt_labels, gt_diff, cfg.loss)
                    if it >= cfg.remap_from * cfg.iterations else None)
        losses = detection_loss(pred.loc.float(), pred.cls.float(), pred.cls_transform_detached.float(), targets,
                                anchors, cfg.loss, remapped)
        loss = losses["loss"]
        if cfg.loss.match_weight > 0:
            m = matching_loss(feats.float(), class_feats.float(), gt_boxes, gt_labels, gt_diff, model.stride,
                              cfg.loss.match_temperature)
            if m is not None:
                loss = loss + cfg.loss.match_weight * m
                losses["match"] = m.detach()
        if teacher is not None and (cfg.distill_score_weight > 0 or cfg.distill_attention_weight > 0
                                    or cfg.distill_box_weight > 0):
            with torch.no_grad():
                t_out = teacher(images, class_images)
                t_feats = teacher.target_features(images) if cfg.distill_attention_weight > 0 else None
            if cfg.distill_score_weight > 0:
                d = score_distillation(pred.cls.float(), t_out.cls.float())
                loss = loss + cfg.distill_score_weight * d
                losses["distill_score"] = d.detach()
            if cfg.distill_attention_weight > 0:
                d = attention_distillation(feats.float(), t_feats.float())
                loss = loss + cfg.distill_attention_weight * d
                losses["distill_attention"] = d.detach()
            if cfg.distill_box_weight > 0:
                d = box_distillation(pred.loc.float(), t_out.loc.float(), t_out.cls.float(), anchors)
                loss = loss + cfg.distill_box_weight * d
                losses["distill_box"] = d.detach()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at iteration {it}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

        entry = {"iteration": it + 1, "epoch": round(images_per_step * (it + 1) / max(len(train_ds.images), 1), 3),
                 "loss": float(loss.detach()), "lr": optimizer.param_groups[0]["lr"]}
        entry.update({k: float(v) for k, v in losses.items() if k != "loss"})
        state["history"].append(entry)
        state["iteration"] = it + 1
        state["seconds"] = time.perf_counter() - t0
        if log is not None:
            log(entry)
        progress(it + 1, cfg.iterations, f"epoch {entry['epoch']:.2f} loss {entry['loss']:.4f}")

        done = it + 1 == cfg.iterations
        if val_ds is not None and rank == 0 and ((it + 1) % cfg.eval_every == 0 or done):
            report = evaluate(Detector(model, device, target_size=meta["eval_scale"]), val_ds, split=cfg.val_split,
                              config=EvalConfig(max_images=cfg.eval_images), cancel=cancel)
            ev = {"iteration": it + 1, "mAP@0.5": report.map, "images": report.num_images}
            state["evals"].append(ev)
            if log is not None:
                log(ev)
            if state["best_map"] is None or report.map > state["best_map"]:
                state["best_map"] = report.map
                save_model(model, work / "best.pt", meta={**meta, "iteration": it + 1, "val_map": report.map},
                           overwrite=True)
        if rank == 0 and ((it + 1) % cfg.checkpoint_every == 0 or done):
            save_last()

    if world > 1:
        # DDP syncs buffers at the start of each forward, so after the last step every rank's BN running
        # statistics reflect its own last batch: take rank 0's, the ones that get saved
        with torch.no_grad():
            for buf in model.buffers():
                dist.broadcast(buf, 0)
    if rank == 0:
        final_meta = {**meta, "training": {"iterations": state["iteration"], "seconds": round(state["seconds"], 1),
                                           "config": cfg.to_json(), "device": str(device), "world_size": world},
                      "metrics": {"val_map_history": state["evals"]}}
        best = work / "best.pt"
        if best.exists() and state["evals"]:
            chosen = load_model(best).model
            final_meta["metrics"]["selected"] = "best val mAP"
        else:
            chosen = model
        save_model(chosen, out, meta=final_meta, overwrite=True, protect=(cfg.init, cfg.teacher))
    hist = state["history"]
    return TrainResult(str(out), state["iteration"], state["seconds"], hist[-1]["loss"] if hist else float("nan"),
                       state["best_map"], hist, state["evals"], rank, world, weights_digest(model))


RESUME_HINT = "delete it to start the run over"
_RESUME_FIELDS = ("model_config", "model", "optimizer", "state")  # mappings every resume checkpoint holds


def _read_resume(last: Path) -> dict:
    """The resume checkpoint, read like a model file (`read_file`) and its digest verified, so a damaged
    one stops the run with a line naming it instead of resuming from wrong weights or history."""
    try:
        ck = read_checked(last)
    except CheckpointError as e:
        raise CheckpointError(last, f"{e.problem}; {RESUME_HINT}") from None
    for key in _RESUME_FIELDS:
        if not isinstance(ck.get(key), dict):
            raise CheckpointError(last, f"not a resume checkpoint (no '{key}'); {RESUME_HINT}")
    iteration = ck["state"].get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise CheckpointError(last, f"not a resume checkpoint (no iteration count); {RESUME_HINT}")
    for key in ("config", "meta"):
        if not isinstance(ck.get(key, {}), dict):
            raise CheckpointError(last, f"not a resume checkpoint ('{key}' is not a mapping); {RESUME_HINT}")
    try:
        ck["model_config"] = ModelConfig.from_json(ck["model_config"])
    except (TypeError, ValueError):
        raise CheckpointError(last, f"bad architecture config; {RESUME_HINT}") from None
    return ck
