"""The prune job (plan + importance → pruned model) and saving its result with full provenance.

Saved pruned models are ordinary os2d-studio files: `load_model` rebuilds them from the stored
tensor shapes, without the parent. The meta records how the model was made (plan, criterion,
channels per unit, the parent's path and sha256, predicted and measured size).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import file_sha256, save_model
from core.model.os2d import OS2DModel
from core.prune.plan import ImportanceLike, KeptChannels, PlanCostModel, Prediction, PruningPlan, resolve
from core.prune.surgery import prune_model
from core.prune.units import find_units


@dataclass(frozen=True, eq=False)
class PruneResult:
    model: OS2DModel
    plan: PruningPlan
    kept: KeptChannels
    predicted: Prediction
    parent_parameters: int
    measured_parameters: int
    seconds: float  # resolve + surgery

    @property
    def measured_size_mb(self) -> float:
        return self.measured_parameters * 4 / 1e6

    def to_json(self) -> dict:
        """Everything but the model (kept indices included: which parent channels survive)."""
        return {
            "plan": self.plan.to_json(), "criterion": self.plan.criterion,
            "channels": self.kept.counts(), "original_channels": dict(self.kept.channels),
            "kept_indices": self.kept.to_json()["kept"],
            "predicted": self.predicted.to_json(),
            "parent_parameters": self.parent_parameters, "measured_parameters": self.measured_parameters,
            "measured_size_mb": self.measured_size_mb, "seconds": round(self.seconds, 4),
        }


def prune(model: OS2DModel, plan: PruningPlan, importance: ImportanceLike | None, *,
          progress: Progress = no_progress, cancel: CancelToken | None = None,
          cost_model: PlanCostModel | None = None) -> PruneResult:
    """Resolve the plan with `importance[plan.criterion]` and cut a copy of the model; the input is untouched."""
    t0 = time.perf_counter()
    units = find_units(model)
    kept = resolve(plan, units, importance)
    cost = cost_model or PlanCostModel.from_model(model, units)
    predicted = cost.predict(kept)
    pruned = prune_model(model, kept, units=units, progress=progress, cancel=cancel)
    seconds = time.perf_counter() - t0
    return PruneResult(pruned, plan, kept, predicted, model.num_parameters(), pruned.num_parameters(), seconds)


def recipe(meta: Mapping[str, Any]) -> str:
    """How a model was made, from its meta: 'pruned 50 % (weight_l1), next layers refit on 8 images,
    fine-tuned 100 it.' ('' for a model that was not pruned or trained from one)."""
    parts = []
    pruning = meta.get("pruning")
    if isinstance(pruning, Mapping):
        plan = pruning.get("plan") or {}
        groups = plan.get("group_ratios") or {}
        units = plan.get("unit_ratios") or {}
        what = f"pruned {100 * float(plan.get('ratio', 0.0)):.0f} %"
        if groups or units:
            n = len(groups) + len(units)
            what += f" + {n} override{'s' if n != 1 else ''}"
        parts.append(f"{what} ({pruning.get('criterion', plan.get('criterion', '?'))})")
    rec = meta.get("reconstruction")
    if isinstance(rec, Mapping) and rec.get("updated"):
        parts.append(f"next layers refit on {rec.get('images', '?')} images")
    training = meta.get("training")
    if isinstance(training, Mapping) and meta.get("teacher"):
        parts.append(f"fine-tuned {training.get('iterations', '?')} it.")
    return ", ".join(parts)


def save_pruned(result: PruneResult, out_path: str | os.PathLike, parent_path: str | os.PathLike | None = None, *,
                parent_sha256: str | None = None, extra_meta: Mapping[str, Any] | None = None,
                cancel: CancelToken | None = None) -> Path:
    """Write the pruned model (atomically). Never replaces an existing file or the parent model.

    `extra_meta` carries what the parent's meta knew and the child still needs (e.g. eval_scale);
    the "pruning" key is ours."""
    parent: dict[str, Any] | None = None
    if parent_path is not None:
        p = Path(parent_path)
        digest = parent_sha256 or (file_sha256(p) if p.is_file() else None)
        parent = {"path": str(p), "sha256": digest}
    meta = dict(extra_meta or {})
    info = result.to_json()
    info["parent"] = parent
    meta["pruning"] = info
    if cancel is not None:
        cancel.raise_if_cancelled()
    protect = (parent_path,) if parent_path is not None else ()
    return save_model(result.model, out_path, meta=meta, overwrite=False, protect=protect)
