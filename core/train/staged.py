"""Layer-wise prune → fine-tune stages, as LCP (and DCP before it) prune a detector: one stage at a
time (the head, then the trunk shallow to deep), each cut ranked on the model the previous stages left
and followed by a short fine-tune with distillation from the unpruned original.

Why: ranking a deep stage on a model whose shallow stages were already cut and recovered sees the
features that model really computes, and each fine-tune has only one stage's damage to repair. The
cost is one importance pass and one fine-tune per stage instead of one of each.

Every finished stage is a file in `OUT.stages/` (`2-layer1.pt`, `2-layer1-ft.pt`), so the same call
after a cancel or a kill skips finished stages and resumes the current fine-tune from its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from core.data.grozi import open_dataset
from core.detect import pick_device
from core.importance.calibration import build_calibration
from core.importance.result import compute_importance
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import CheckpointError, load_model, save_model
from core.prune.job import prune, save_pruned
from core.prune.plan import GROUPS, PlanError, PruningPlan
from core.prune.units import find_units
from core.train.finetune import FinetuneConfig, finetune, split_map


# The transformation net first, then the trunk shallow to deep. Its cut costs the most (on the default
# model at 50 %: 0.34 → 0.11 mAP when it came last, 0.176 after its 25 iterations) and, first, every
# later stage's fine-tuning helps it recover: 0.360 at the end (`bench/seed_table.py --staged`).
STAGE_ORDER = ("transform", "stem", "layer1", "layer2", "layer3")


@dataclass(frozen=True)
class StagedConfig:
    model: str  # the unpruned original: pruned stage by stage, and the teacher of every fine-tune
    dataset: str
    out: str
    plan: PruningPlan  # the final ratios; each stage applies its group's share of them
    stages: tuple[str, ...] = STAGE_ORDER  # groups the plan leaves whole are skipped
    iterations_per_stage: int = 50
    calib_images: int = 8
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(model="", dataset="", out=""))
    eval_images: int = 0  # val images for mAP of the original and the result (0: all)
    evaluate_before_after: bool = True
    device: str = "auto"


@dataclass(frozen=True)
class StageRecord:
    group: str
    pruned: str  # the stage's cut, before fine-tuning
    finetuned: str
    parameters: int


@dataclass(frozen=True)
class StagedResult:
    out: str
    stages: list[StageRecord]
    map_before: float | None  # the original
    map_after: float | None

    def to_json(self) -> dict:
        return {"out": self.out, "map_before": self.map_before, "map_after": self.map_after,
                "stages": [vars(s) for s in self.stages]}


def stage_plans(plan: PruningPlan, model, stages: tuple[str, ...]) -> list[tuple[str, PruningPlan]]:
    """One plan per stage with work to do: that group's units at the ratios the full plan gives them
    on the original, every other unit whole."""
    unknown = [g for g in stages if g not in GROUPS]
    if unknown:
        raise PlanError(f"unknown stage(s) {', '.join(unknown)}; stages are groups: {', '.join(GROUPS)}")
    units = find_units(model)
    out = []
    for group in dict.fromkeys(stages):
        ratios = {u.name: plan.ratio_for(u) for u in units if u.group == group and plan.ratio_for(u) > 0}
        if ratios:
            out.append((group, replace(plan, ratio=0.0, group_ratios=(), unit_ratios=ratios)))
    if not out:
        raise PlanError("the plan prunes nothing in the given stages")
    return out


def prune_in_stages(cfg: StagedConfig, *, progress: Progress = no_progress,
                    cancel: CancelToken | None = None) -> StagedResult:
    cancel = cancel or CancelToken()
    out = Path(cfg.out)
    if out.exists():
        raise CheckpointError(out, "exists; staged pruning would overwrite it (choose another --out)")
    work = out.with_suffix(".stages")
    work.mkdir(parents=True, exist_ok=True)
    original = load_model(cfg.model)
    scale = original.eval_scale
    plans = stage_plans(cfg.plan, original.model, tuple(cfg.stages))
    train_ds = open_dataset(cfg.dataset, "train")
    device = pick_device(cfg.device)
    val_ds = open_dataset(cfg.dataset, "val") if cfg.evaluate_before_after else None

    def val_map(path: str) -> float | None:
        if val_ds is None:
            return None
        return split_map(load_model(path).model, val_ds, device, scale or val_ds.eval_scale, cfg.eval_images, cancel)

    calib = None  # the same images rank every stage: built once, when a stage first needs it

    n = len(plans)
    # progress: per stage, importance (1 step) + fine-tune (its iterations)
    per_stage = cfg.iterations_per_stage + 1
    current = original.path
    records: list[StageRecord] = []
    before = val_map(original.path)
    for k, (group, plan) in enumerate(plans):
        tag = f"{k + 1}-{group}"
        pruned_path, ft_path = work / f"{tag}.pt", work / f"{tag}-ft.pt"
        base = k * per_stage

        def report(done: int, total: int, message: str = "", _base=base, _tag=tag) -> None:
            progress(_base + 1 + done, n * per_stage, f"stage {_tag} ({k + 1}/{n}) fine-tune: {message}")

        if not ft_path.exists():
            if not pruned_path.exists():
                progress(base, n * per_stage, f"stage {tag} ({k + 1}/{n}): ranking channels")
                loaded = load_model(current)
                model = loaded.model.to(device).eval()
                if calib is None:
                    calib = build_calibration(train_ds, cfg.calib_images, scale, 0,
                                              class_image_size=model.config.class_image_size, cancel=cancel)
                importance = compute_importance(model, calib, [plan.criterion], model_path=str(current),
                                                cancel=cancel)
                res = prune(model.cpu(), plan, importance, cancel=cancel)
                meta = {k2: loaded.meta[k2] for k2 in ("eval_scale",) if k2 in loaded.meta}
                meta["stages"] = [vars(r) for r in records] + [{"group": group}]
                save_pruned(res, pruned_path, current, extra_meta=meta, cancel=cancel)
            ft_cfg = replace(cfg.finetune, model=str(pruned_path), teacher=str(original.path), dataset=cfg.dataset,
                             out=str(ft_path), iterations=cfg.iterations_per_stage, evaluate_before_after=False,
                             device=cfg.device, work_dir=str(work / f"{tag}-ft.run"))
            finetune(ft_cfg, progress=report, cancel=cancel)
        params = sum(p.numel() for p in load_model(ft_path).model.parameters())
        records.append(StageRecord(group, str(pruned_path), str(ft_path), int(params)))
        current = str(ft_path)
    final = load_model(current)
    meta = dict(final.meta)
    meta["stages"] = [vars(r) for r in records]
    meta["staged_plan"] = cfg.plan.to_json()
    save_model(final.model, out, meta=meta, overwrite=False, protect=(cfg.model,))
    return StagedResult(str(out), records, before, val_map(str(out)))
