"""The pruning workbench's jobs: importance, prune, save, fine-tune, evaluate, sensitivity analysis.

Each is a plain function `fn(..., progress, cancel) -> result` over public `core` calls, in the order the
CLI runs them (`os2d-studio importance / prune / finetune / eval / profile / sensitivity`), so the GUI shows
what the CLI computes. No Qt here: they run in the worker (`app.worker`) and in tests alike. The result
records (`Evaluation`, core's `SensitivityResult`) are frozen and serialize to JSON for the project file.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from app.jobs import ModelLoad, analyze_model
from core.detect import Detector
from core.errors import InputError, StepMissing
from core.jobs import CancelToken, Phases, Progress, no_progress
from core.model.checkpoint import LoadedModel, file_sha256, load_model, save_model
from core.importance.criteria import DATA_FREE
from core.importance.result import importance_for_plan
from core.prune.plan import PlanError, PruningPlan
from core.prune.sensitivity import (SENSITIVITY_RATIOS, SensitivityConfig, SensitivityPoint, SensitivityResult,
                                    sensitivity, sensitivity_groups)
from core.prune.units import Unit


Report = Callable[[Any], None]


def model_label(loaded: LoadedModel) -> str:
    """A short description of how a model was made (from its meta): 'pruned 30 % (combined), fine-tuned 2 it.'."""
    from core.prune.job import recipe

    return recipe(loaded.meta)


def _name(loaded: LoadedModel) -> str:
    return Path(loaded.path).name if loaded.path else "(in memory)"


# -- importance -------------------------------------------------------------------------------------------
def importance_job(loaded: LoadedModel, dataset: str | None, criteria: Sequence[str], num_images: int, *,
                   seed: int = 0, split: str = "train", progress: Progress = no_progress,
                   cancel: CancelToken | None = None):
    """Build a calibration set from `dataset` and score every unit with each criterion (`os2d-studio importance`)."""
    from core.data.grozi import open_dataset
    from core.importance.calibration import build_calibration
    from core.importance.result import compute_importance, data_free

    cancel = cancel or CancelToken()
    if data_free(criteria):  # weight L1, BN gamma: the weights are all they read
        return compute_importance(loaded.model, None, list(criteria), model_path=loaded.path, progress=progress,
                                  cancel=cancel)
    # one bar for both steps, weighted by their rough cost: reading an image is a small fraction of the
    # forward passes over it (Taylor adds a backward pass, LCP one per unit)
    scoring = 20.0 + 40.0 * ("taylor" in criteria) + 400.0 * ("lcp" in criteria)
    phases = Phases(progress, [("calibration set", 1.0), ("scoring", scoring)])
    phases("calibration set")(0, 1, f"opening {Path(str(dataset)).name}")
    ds = open_dataset(dataset, split)
    cancel.raise_if_cancelled()
    size = loaded.scale(ds)
    calib = build_calibration(ds, int(num_images), float(size), seed=seed,
                              progress=phases("calibration set"), cancel=cancel)
    result = compute_importance(loaded.model, calib, list(criteria), model_path=loaded.path,
                                progress=phases("scoring"), cancel=cancel)
    phases.done()
    return result


def load_importance_job(path: str | os.PathLike, *, progress: Progress = no_progress,
                        cancel: CancelToken | None = None):
    """Read an importance result written by `os2d-studio importance` or a saved project."""
    from core.importance.result import ImportanceResult

    progress(0, 1, f"reading {Path(str(path)).name}")
    return ImportanceResult.load(path)


def importance_mismatch(importance: Any, info: ModelLoad | None) -> str | None:
    """None when `importance` scores the units of this model (and, when known, these weights)."""
    if importance is None or info is None:
        return None
    mine = tuple((u.name, u.channels) for u in info.units)
    theirs = tuple(zip(importance.units, importance.channels))
    if mine != theirs:
        return (f"the importance result scores {len(theirs)} units, this model has {len(mine)} "
                "(computed for another architecture or pruning)")
    sha = (getattr(importance, "model", None) or {}).get("sha256")
    if sha and info.digest and sha != info.digest:
        return "the importance result was computed for other weights of this architecture"
    return None


# -- prune ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PruneOutcome:
    """The pruned model (in memory until saved) with its analysis, and core's PruneResult."""

    info: ModelLoad
    result: Any  # core.prune.job.PruneResult


def prune_importance(plan: PruningPlan, importance: Any, model: Any) -> Any:
    """The importance the plan's criterion reads: the computed result, or the weights for a data-free criterion."""
    try:
        return importance_for_plan(plan.criterion, importance, model)
    except PlanError:
        raise PlanError(f"criterion '{plan.criterion}' needs an importance result: compute it in the Importance tab "
                        f"(or choose {' / '.join(DATA_FREE)}, computed from the weights)") from None


def allocate_job(loaded: LoadedModel, plan: PruningPlan, importance: Any, units: Sequence[Unit], cost: Any, *,
                 progress: Progress = no_progress, cancel: CancelToken | None = None) -> Any:
    """Ratios per unit ranked across units at the MACs the plan's own ratios leave (`prune --allocate macs`)."""
    from core.prune.allocate import allocate

    progress(0, 1, "ranking channels across units")
    allocation = allocate(plan, units, prune_importance(plan, importance, loaded.model), cost, budget="macs")
    progress(1, 1, "ranking channels across units")
    return allocation


def prune_job(loaded: LoadedModel, plan: PruningPlan, importance: Any, *, reconstruct_images: int = 0,
              dataset: str | None = None, progress: Progress = no_progress,
              cancel: CancelToken | None = None) -> PruneOutcome:
    """Remove the plan's channels from a copy of the model (`os2d-studio prune`); the original is untouched.

    With `reconstruct_images`, the consumers of the cut channels are then refit by least squares to the
    original's outputs inside the objects' context boxes of that many train images of `dataset` (`prune
    --reconstruct`): on the default model a 50 % weight-L1 cut keeps 0.91 mAP this way instead of 0.30."""
    from core.prune.job import prune

    cancel = cancel or CancelToken()
    n = int(reconstruct_images)
    phases = Phases(progress, [("calibration set", 2.0 * n)] * bool(n) + [("ranking channels", 1.0), ("surgery", 6.0)]
                    + [("refitting the next layers", 8.0 * n)] * bool(n) + [("measuring the pruned model", 3.0)])
    calib = None
    if reconstruct_images:  # the data first: a bad dataset is reported before any cutting
        from core.data.grozi import open_dataset
        from core.importance.calibration import build_calibration

        phases("calibration set")(0, 1, f"opening {Path(str(dataset)).name}")
        ds = open_dataset(dataset, "train")
        calib = build_calibration(ds, int(reconstruct_images), float(loaded.scale(ds)),
                                  class_image_size=loaded.model.config.class_image_size,
                                  progress=phases("calibration set"), cancel=cancel)
    phases("ranking channels")(0, 1)
    scores = prune_importance(plan, importance, loaded.model)
    result = prune(loaded.model, plan, scores, progress=phases("surgery"), cancel=cancel)
    cancel.raise_if_cancelled()
    meta = {k: loaded.meta[k] for k in ("eval_scale",) if k in loaded.meta}
    if calib is not None:
        from core.prune.reconstruct import reconstruct_consumers

        device = next(loaded.model.parameters()).device
        rec = reconstruct_consumers(loaded.model, result.model.to(device), result.kept, calib,
                                    progress=phases("refitting the next layers"), cancel=cancel)
        meta["reconstruction"] = rec.summary()
    phases("measuring the pruned model")(0, 1)
    info = result.to_json()
    info["parent"] = {"path": loaded.path, "sha256": loaded.sha256 or None}
    meta["pruning"] = info
    pruned = LoadedModel(result.model, "", "os2d-studio", meta, "")
    outcome = PruneOutcome(analyze_model(pruned), result)
    phases.done()
    return outcome


def save_pruned_job(info: ModelLoad, out: str | os.PathLike, *, prune_result: Any = None,
                    original: LoadedModel | None = None, progress: Progress = no_progress,
                    cancel: CancelToken | None = None) -> ModelLoad:
    """Write the pruned model to `out` (never over an existing file, the original or the input model);
    returns the same analysis with the saved file's path, size and SHA-256."""
    from core.prune.job import save_pruned

    cancel = cancel or CancelToken()
    pruned = info.loaded
    progress(0, 1, f"writing {Path(str(out)).name}")
    protect = tuple(p for p in ((original.path if original else ""), pruned.path) if p)
    for p in protect:
        if Path(p).resolve() == Path(out).resolve():
            raise InputError(out, "refusing to overwrite an input model; choose another file")
    if prune_result is not None:  # pruned in this session: core records plan, kept channels and parent
        extra = {k: pruned.meta[k] for k in ("eval_scale",) if k in pruned.meta}
        path = save_pruned(prune_result, out, original.path if original and original.path else None,
                           parent_sha256=(original.sha256 or None) if original else None, extra_meta=extra, cancel=cancel)
    else:  # opened from a file or fine-tuned: its meta already says how it was made
        path = save_model(pruned.model, out, meta=dict(pruned.meta), overwrite=False, protect=protect)
    progress(1, 1, "saved")
    saved = replace(pruned, path=str(Path(path).resolve()), sha256=file_sha256(path))
    return replace(info, loaded=saved, file_bytes=os.path.getsize(path))


# -- fine-tune --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FinetuneOutcome:
    info: ModelLoad  # the fine-tuned model, loaded from `result.out`
    result: Any  # core.train.finetune.FinetuneResult


def finetune_job(model: str, teacher: str, dataset: str, out: str, *, iterations: int, eval_images: int = 0,
                 checkpoint_every: int = 10, lr: float | None = None, progress: Progress = no_progress,
                 cancel: CancelToken | None = None, report: Report | None = None) -> FinetuneOutcome:
    """Fine-tune the pruned model file `model` with distillation from `teacher` (`os2d-studio finetune`).

    The run's checkpoint (`OUT.run/last.pt`, every `checkpoint_every` iterations) survives a cancel and
    the same call resumes from it; `out` is written only when the run completes. Each iteration's loss
    entry (and each evaluation) goes to `report`.
    """
    from core.train.finetune import FinetuneConfig, finetune

    cancel = cancel or CancelToken()
    if not model:
        raise StepMissing("the pruned model is in memory only: save it before fine-tuning")
    if Path(out).resolve() in {Path(p).resolve() for p in (model, teacher) if p}:
        raise InputError(out, "the fine-tuned model must not replace its input or the teacher")
    cfg = FinetuneConfig(model=str(model), dataset=str(dataset), out=str(out), teacher=str(teacher or ""),
                         iterations=int(iterations), eval_images=int(eval_images),
                         checkpoint_every=max(1, int(checkpoint_every)),
                         **({} if lr is None else {"lr": float(lr)}))
    result = finetune(cfg, progress=progress, cancel=cancel, log=report)  # the job's name says "fine-tuning"
    loaded = load_model(result.out)
    return FinetuneOutcome(analyze_model(loaded, os.path.getsize(loaded.path)), result)


# -- evaluate ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """One model measured on one dataset: counts at the cost model's reference input, latency, mAP@0.5."""

    role: str  # "original" or "pruned"
    model: str  # file name, or "(in memory)"
    description: str
    parameters: int
    macs: int
    size_mb: float
    latency_ms: float | None
    map: float
    images: int
    dataset: str
    split: str
    seconds: float
    when: float = 0.0  # time.time() of the measurement
    score_threshold: float | None = None  # the best-F1 score threshold on these images (the viewers' default)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Evaluation":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def evaluate_job(models: Mapping[str, LoadedModel], dataset: str, *, max_images: int = 0, split: str = "val",
                 latency_repeats: int = 5, progress: Progress = no_progress,
                 cancel: CancelToken | None = None) -> tuple[Evaluation, ...]:
    """mAP@0.5 of each model on the same images (`os2d-studio eval`), plus its profile (`os2d-studio profile`)."""
    from core.data.grozi import open_dataset
    from core.eval.evaluate import EvalConfig, evaluate
    from core.eval.profile import profile_model

    cancel = cancel or CancelToken()
    if not models:
        raise StepMissing("no model to evaluate: open a model first")
    ds = open_dataset(dataset, split)
    # one bar over every model's mAP and latency, weighted by forward passes (images vs. timed repeats)
    images = int(max_images) if int(max_images) > 0 else len(ds.images)
    steps: list[tuple[str, float]] = []
    for role in models:
        steps += [(f"{role} mAP", float(max(images, 1))), (f"{role} latency", float(int(latency_repeats) + 1))]
    phases = Phases(progress, steps)
    out = []
    for role, loaded in models.items():
        cancel.raise_if_cancelled()
        t0 = time.perf_counter()
        report = evaluate(Detector(loaded.model, target_size=loaded.scale(ds)), ds, split=split,
                          config=EvalConfig(max_images=int(max_images)), progress=phases(f"{role} mAP"),
                          cancel=cancel)
        cancel.raise_if_cancelled()
        phases(f"{role} latency")(0, 1, f"{int(latency_repeats)} timed runs")
        prof = profile_model(loaded.model, name=_name(loaded), repeats=int(latency_repeats), warmup=1, device="cpu")
        out.append(Evaluation(role, _name(loaded), model_label(loaded), prof.parameters, prof.macs, prof.size_mb,
                              prof.cpu_latency_ms, float(report.map), report.num_images, ds.name, split,
                              time.perf_counter() - t0, time.time(),
                              None if report.best_f1_threshold != report.best_f1_threshold
                              else round(float(report.best_f1_threshold), 3)))
    phases.done()
    return tuple(out)


# -- sensitivity ------------------------------------------------------------------------------------------
def sensitivity_job(loaded: LoadedModel, units: Sequence[Unit], importance: Any, base: PruningPlan, dataset: str, *,
                    ratios: Sequence[float] = SENSITIVITY_RATIOS, groups: Sequence[str] | None = None,
                    max_images: int = 10, split: str = "val", progress: Progress = no_progress,
                    cancel: CancelToken | None = None, report: Report | None = None) -> SensitivityResult:
    """`core.prune.sensitivity` (`os2d-studio sensitivity`) with the importance the plan's criterion reads."""
    config = SensitivityConfig(str(dataset), tuple(float(r) for r in ratios),
                               tuple(groups) if groups is not None else None, int(max_images), split)
    return sensitivity(loaded, base, prune_importance(base, importance, loaded.model), config, units=units,
                       progress=progress, cancel=cancel, report=report)


__all__ = ["Evaluation", "FinetuneOutcome", "PruneOutcome", "SENSITIVITY_RATIOS", "SensitivityPoint",
           "SensitivityResult", "evaluate_job", "finetune_job", "importance_job", "importance_mismatch",
           "load_importance_job", "model_label", "prune_importance", "prune_job", "save_pruned_job",
           "sensitivity_groups", "sensitivity_job"]
