"""Layer-wise prune → fine-tune stages, as LCP (and DCP before it) prune a detector: one stage at a
time (the head, then the trunk shallow to deep), each cut ranked on the model the previous stages left
and followed by a short fine-tune with distillation from the unpruned original.

Why: ranking a deep stage on a model whose shallow stages were already cut and recovered sees the
features that model really computes, and each fine-tune has only one stage's damage to repair. The
cost is one importance pass and one fine-tune per stage instead of one of each.

A stage is a group (`stage_by="group"`) or, as the paper runs it, one prunable unit (`"unit"`: the
same order, units in forward order within a group). With `reconstruct`, each cut is followed by LCP's
reconstruction step before the fine-tune (`core.prune.reconstruct`): the consumers' kept weights are
solved so that their outputs inside the context boxes match the model before the cut, on the same
calibration images the stage was ranked on.

Every finished stage is a file in `OUT.stages/` named by its index and group or unit (`2-layer1.pt`,
`2-layer1-ft.pt`), so the same call after a cancel or a kill skips finished stages and resumes the
current fine-tune from its checkpoint.

Each stage ranks units that still have their original channel count, so the stages' scores together
are one ranking of the original model's units: `OUT.stages/<criterion>_staged.json/.npz` (an importance
result keyed to the original's weights digest, e.g. `lcp_staged`), extended after each stage's ranking,
before its cut is saved, so a resumed run keeps every stage's scores.
"""

from __future__ import annotations

import time
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.data.grozi import open_dataset
from core.detect import pick_device
from core.importance.calibration import build_calibration
from core.importance.result import ImportanceFileError, ImportanceResult, compute_importance, staged_criterion
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import CheckpointError, load_model, save_model
from core.model.digest import weights_digest
from core.prune.job import prune, save_pruned
from core.prune.plan import GROUPS, PlanError, PruningPlan
from core.prune.reconstruct import ReconstructConfig, reconstruct_consumers
from core.prune.units import find_units
from core.train.finetune import FinetuneConfig, finetune, split_map


# The transformation net first, then the trunk shallow to deep. Its cut costs the most (on the default
# model at 50 %: 0.34 → 0.11 mAP when it came last, 0.176 after its 25 iterations) and, first, every
# later stage's fine-tuning helps it recover: 0.360 at the end (`bench/seed_table.py --staged`).
STAGE_ORDER = ("transform", "stem", "layer1", "layer2", "layer3")
STAGE_BY = ("group", "unit")


@dataclass(frozen=True)
class StagedConfig:
    model: str  # the unpruned original: pruned stage by stage, and the teacher of every fine-tune
    dataset: str
    out: str
    plan: PruningPlan  # the final ratios; each stage applies its group's share of them
    stages: tuple[str, ...] = STAGE_ORDER  # groups the plan leaves whole are skipped
    stage_by: str = "group"  # "unit": one stage per pruned unit of those groups, in forward order
    reconstruct: bool = False  # LCP's least-squares update of the consumers after each cut
    reconstruction: ReconstructConfig = field(default_factory=ReconstructConfig)
    iterations_per_stage: int = 50
    calib_images: int = 8
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(model="", dataset="", out=""))
    eval_images: int = 0  # val images for mAP of the original and the result (0: all)
    evaluate_before_after: bool = True
    device: str = "auto"


@dataclass(frozen=True)
class StageRecord:
    group: str
    pruned: str  # the stage's cut (and reconstruction), before fine-tuning
    finetuned: str
    parameters: int
    unit: str | None = None  # the stage's one unit when stages are units
    reconstruction: dict | None = None  # `ReconstructionReport.summary()` of the stage's cut
    cost: dict | None = None  # the stage's ranking (and reconstruction) seconds, peak memory, backward passes

    @property
    def label(self) -> str:
        return self.unit or self.group


@dataclass(frozen=True)
class StagedResult:
    out: str
    stages: list[StageRecord]
    map_before: float | None  # the original
    map_after: float | None
    ranking: str | None = None  # the stages' ranking of the original's units (PREFIX.json of an importance result)

    def to_json(self) -> dict:
        return {"out": self.out, "map_before": self.map_before, "map_after": self.map_after,
                "stages": [vars(s) for s in self.stages], "ranking": self.ranking}


def stage_plans(plan: PruningPlan, model, stages: tuple[str, ...], by: str = "group") -> list[tuple[str, PruningPlan]]:
    """(label, plan) per stage with work to do: that group's units (`by="group"`, label the group) or one
    unit (`by="unit"`, label its name; a group's units in forward order) at the ratios the full plan
    gives them on the original, every other unit whole."""
    unknown = [g for g in stages if g not in GROUPS]
    if unknown:
        raise PlanError(f"unknown stage(s) {', '.join(unknown)}; stages are groups: {', '.join(GROUPS)}")
    if by not in STAGE_BY:
        raise PlanError(f"unknown stage kind '{by}'; stages are by {' or '.join(STAGE_BY)}")
    units = find_units(model)
    out = []
    for group in dict.fromkeys(stages):
        ratios = {u.name: plan.ratio_for(u) for u in units if u.group == group and plan.ratio_for(u) > 0}
        parts = [(group, ratios)] if by == "group" else [(name, {name: r}) for name, r in ratios.items()]
        out += [(label, replace(plan, ratio=0.0, group_ratios=(), unit_ratios=r)) for label, r in parts if r]
    if not out:
        raise PlanError("the plan prunes nothing in the given stages")
    return out


def _save_whole(result: ImportanceResult, prefix: Path) -> Path:
    """Save PREFIX.json/.npz so that a kill at any moment leaves a readable pair: the arrays go first under
    a second name that a committed json names, then under their own (the json is the commit point)."""
    spare_npz, spare_json = result.save(prefix.with_name(prefix.name + ".next"))
    json_path = prefix.with_name(prefix.name + ".json")
    os.replace(spare_json, json_path)  # the committed json now names the complete spare arrays
    result.save(prefix)  # PREFIX.npz, then PREFIX.json naming it
    spare_npz.unlink(missing_ok=True)
    return json_path


def _add_to_ranking(prefix: Path, stage: ImportanceResult, criterion: str, original) -> Path:
    """The staged ranking in PREFIX with this stage's scores added (replacing a redone stage's), saved whole.
    `original`: (units, model record) of the unpruned model, whose channel indices the scores keep."""
    units, model_info = original
    name = staged_criterion(criterion)
    channels = dict(units)
    scores, orders, timings = {}, {}, {}
    if prefix.with_name(prefix.name + ".json").exists():
        known = ImportanceResult.load(prefix)
        if known.model.get("sha256") != model_info["sha256"] or known.criteria != (name,):
            raise ImportanceFileError(prefix.with_name(prefix.name + ".json"),
                                      f"holds another run's ranking ({', '.join(known.criteria)} of other weights "
                                      "or criterion); resume with the same model and criterion, or another --out")
        scores, orders, timings = dict(known.scores[name]), dict(known.orders[name]), dict(known.timings)
    for unit, c in zip(stage.units, stage.channels):
        if channels.get(unit) != c:  # a unit is ranked before its own cut: never fewer channels than at first
            raise PlanError(f"stage ranked {unit} with {c} channels; the original has {channels.get(unit)}")
        scores[unit], orders[unit] = stage.scores[criterion][unit], stage.orders[criterion][unit]
    for phase, m in stage.timings.items():  # the ranking's cost over all stages
        t = timings.get(phase)
        timings[phase] = m if t is None else replace(t, seconds=t.seconds + m.seconds,
                                                     peak_bytes=max(t.peak_bytes, m.peak_bytes))
    order = [u for u, _ in units if u in scores]
    result = ImportanceResult(units=tuple(order), channels=tuple(channels[u] for u in order),
                              scores={name: {u: scores[u] for u in order}}, orders={name: {u: orders[u] for u in order}},
                              calibration=stage.calibration, model=model_info, timings=timings,
                              stats_config=stage.stats_config, gradient_config=stage.gradient_config,
                              device=stage.device)
    return _save_whole(result, prefix)


def _cut_stage(cfg: StagedConfig, loaded, plan: PruningPlan, calib, device, path: Path, stages_meta: list, *,
               ranking: tuple[Path, object], progress: Progress, cancel: CancelToken) -> None:
    """Rank the stage's units on the model so far (adding their scores to the staged ranking), cut them,
    reconstruct the consumers when asked, save."""
    model = loaded.model.to(device).eval()
    # each unit's scores depend on that unit alone: rank only the stage's units
    ranked = [u for u in find_units(model) if u.name in plan.unit_ratio_map]
    importance = compute_importance(model, calib, [plan.criterion], units=ranked, model_path=loaded.path,
                                    cancel=cancel)
    _add_to_ranking(ranking[0], importance, plan.criterion, ranking[1])
    res = prune(model.cpu(), plan, importance, cancel=cancel)
    meta = {k: loaded.meta[k] for k in ("eval_scale",) if k in loaded.meta}
    # what the stage's ranking cost, kept with the cut so a resumed run still reports the whole pipeline
    cost = {"rank_seconds": sum(m.seconds for m in importance.timings.values()),
            "rank_peak_bytes": max((m.peak_bytes for m in importance.timings.values()), default=0),
            "backward_passes": len(calib) * len(ranked) if plan.criterion == "lcp" else 0}
    if cfg.reconstruct:
        start = time.perf_counter()
        rec = reconstruct_consumers(model.to(device), res.model.to(device), res.kept, calib,
                                    config=cfg.reconstruction, progress=progress, cancel=cancel)
        res.model.cpu()
        meta["reconstruction"] = rec.summary()
        cost["reconstruct_seconds"] = time.perf_counter() - start
    meta["cost"] = cost
    meta["stages"] = stages_meta
    save_pruned(res, path, loaded.path, extra_meta=meta, cancel=cancel)


def prune_in_stages(cfg: StagedConfig, *, progress: Progress = no_progress,
                    cancel: CancelToken | None = None) -> StagedResult:
    cancel = cancel or CancelToken()
    out = Path(cfg.out)
    if out.exists():
        raise CheckpointError(out, "exists; staged pruning would overwrite it (choose another --out)")
    original = load_model(cfg.model)
    scale = original.eval_scale
    plans = stage_plans(cfg.plan, original.model, tuple(cfg.stages), cfg.stage_by)
    units = find_units(original.model)
    groups = {u.name: u.group for u in units}
    work = out.with_suffix(".stages")
    ranking_prefix = work / staged_criterion(cfg.plan.criterion)
    identity = ([(u.name, u.channels) for u in units],
                {"sha256": weights_digest(original.model), "path": str(original.path),
                 "config": original.model.config.to_json()})
    work.mkdir(parents=True, exist_ok=True)
    train_ds = open_dataset(cfg.dataset, "train")
    device = pick_device(cfg.device)
    val_ds = open_dataset(cfg.dataset, "val") if cfg.evaluate_before_after else None

    def val_map(path: str) -> float | None:
        if val_ds is None:
            return None
        return split_map(load_model(path).model, val_ds, device, scale or val_ds.eval_scale, cfg.eval_images, cancel)

    calib = None  # the same images rank (and reconstruct) every stage: built once, when a stage first needs it

    n = len(plans)
    # progress steps per stage: ranking and cutting 1, reconstructing 1, fine-tuning its iterations
    per_stage = cfg.iterations_per_stage + 1 + int(cfg.reconstruct)
    total = n * per_stage
    current = original.path
    records: list[StageRecord] = []
    before = val_map(original.path)
    for k, (label, plan) in enumerate(plans):
        unit = label if cfg.stage_by == "unit" else None
        group = groups[label] if unit else label
        tag = f"{k + 1}-{label}"
        say = f"stage {k + 1} of {n} ({label})"
        pruned_path, ft_path = work / f"{tag}.pt", work / f"{tag}-ft.pt"
        base = k * per_stage

        def report(done: int, ft_total: int, message: str = "", _base=base, _say=say) -> None:
            # the fine-tune counts in its own steps (its phases, checkpoints): mapped onto the stage's share
            share = cfg.iterations_per_stage * min(1.0, done / ft_total) if ft_total > 0 else 0.0
            progress(_base + per_stage - cfg.iterations_per_stage + int(share), total, f"{_say}: fine-tune: {message}")

        if not ft_path.exists() and not pruned_path.exists():
            progress(base, total, f"{say}: ranking channels")
            loaded = load_model(current)
            if calib is None:
                calib = build_calibration(train_ds, cfg.calib_images, scale, 0,
                                          class_image_size=loaded.model.config.class_image_size, cancel=cancel)

            def sub(done: int, _total: int, message: str = "", _base=base, _say=say) -> None:
                progress(_base + 1, total, f"{_say}: {message}")

            stages_meta = [vars(r) for r in records] + [{"group": group, "unit": unit}]
            _cut_stage(cfg, loaded, plan, calib, device, pruned_path, stages_meta, ranking=(ranking_prefix, identity),
                       progress=sub, cancel=cancel)
        cut_meta = load_model(pruned_path).meta if pruned_path.exists() else {}
        recon = cut_meta.get("reconstruction")
        if pruned_path.exists() and (recon is not None) != cfg.reconstruct:
            raise CheckpointError(pruned_path, f"was cut {'with' if recon is not None else 'without'} reconstruction; "
                                               "resume with the same settings, or choose another --out")
        if not ft_path.exists():
            ft_cfg = replace(cfg.finetune, model=str(pruned_path), teacher=str(original.path), dataset=cfg.dataset,
                             out=str(ft_path), iterations=cfg.iterations_per_stage, evaluate_before_after=False,
                             device=cfg.device, work_dir=str(work / f"{tag}-ft.run"))
            finetune(ft_cfg, progress=report, cancel=cancel)
        params = sum(p.numel() for p in load_model(ft_path).model.parameters())
        records.append(StageRecord(group, str(pruned_path), str(ft_path), int(params), unit, recon, cut_meta.get("cost")))
        current = str(ft_path)
    final = load_model(current)
    meta = dict(final.meta)
    meta["stages"] = [vars(r) for r in records]
    meta["staged_plan"] = cfg.plan.to_json()
    save_model(final.model, out, meta=meta, overwrite=False, protect=(cfg.model,))
    ranking = ranking_prefix.with_name(ranking_prefix.name + ".json")
    return StagedResult(str(out), records, before, val_map(str(out)), str(ranking) if ranking.exists() else None)
