"""Sensitivity analysis: the mAP@0.5 left when one group alone is pruned at each ratio, the others kept whole.

It shows which parts of the network tolerate pruning before a plan is chosen. Every point is measured on
the same images at the model's own scale; each pruned copy is dropped once measured, so memory stays
that of one extra model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from core.errors import StepMissing
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import LoadedModel
from core.prune.plan import GROUPS, ImportanceLike, PruningPlan
from core.prune.units import Unit, find_units

SENSITIVITY_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class SensitivityPoint:
    group: str  # "" for the unpruned baseline
    ratio: float
    map: float
    parameters: int
    size_mb: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SensitivityResult:
    """mAP when one group at a time is pruned at each ratio (the others kept whole)."""

    criterion: str
    ratios: tuple[float, ...]
    groups: tuple[str, ...]
    images: int
    dataset: str
    points: tuple[SensitivityPoint, ...] = ()
    complete: bool = False

    @property
    def baseline(self) -> SensitivityPoint | None:
        return next((p for p in self.points if not p.group), None)

    def curve(self, group: str) -> tuple[list[float], list[float]]:
        """Ratios and mAPs of one group, starting at the baseline (ratio 0)."""
        pts = [p for p in self.points if p.group == group]
        base = self.baseline
        xs = ([0.0] if base else []) + [p.ratio for p in pts]
        ys = ([base.map] if base else []) + [p.map for p in pts]
        return xs, ys

    def with_point(self, point: SensitivityPoint) -> "SensitivityResult":
        return replace(self, points=self.points + (point,))

    def to_json(self) -> dict:
        return {"criterion": self.criterion, "ratios": list(self.ratios), "groups": list(self.groups),
                "images": self.images, "dataset": self.dataset, "complete": self.complete,
                "points": [p.to_json() for p in self.points]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SensitivityResult":
        return cls(str(data["criterion"]), tuple(float(r) for r in data["ratios"]), tuple(data["groups"]),
                   int(data["images"]), str(data["dataset"]),
                   tuple(SensitivityPoint(**p) for p in data.get("points", ())), bool(data.get("complete", False)))


@dataclass(frozen=True)
class SensitivityConfig:
    dataset: str  # dataset folder or grozi:PATH
    ratios: tuple[float, ...] = SENSITIVITY_RATIOS
    groups: tuple[str, ...] | None = None  # None: every group the plan can prune in this model
    max_images: int = 10
    split: str = "val"
    device: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def sensitivity_groups(units: Sequence[Unit], plan: PruningPlan) -> tuple[str, ...]:
    """The groups of this model that a plan can prune (ResNet-18/34 have no separate stem unit)."""
    present = {u.group for u in units if not plan.excludes(u)}
    return tuple(g for g in GROUPS if g in present)


def sensitivity(loaded: LoadedModel, base: PruningPlan, importance: ImportanceLike, config: SensitivityConfig, *,
                units: Sequence[Unit] | None = None, progress: Progress = no_progress,
                cancel: CancelToken | None = None,
                report: Callable[[SensitivityPoint], None] | None = None) -> SensitivityResult:
    """For each group, prune only that group at each ratio with the plan's criterion and settings, and
    measure mAP@0.5 on the same `max_images` images; every point goes to `report` as it is measured.

    `importance` ranks the channels by `base.criterion`; `units` are the model's (found when not given).
    """
    from core.data.grozi import open_dataset
    from core.detect import Detector
    from core.eval.evaluate import EvalConfig, evaluate
    from core.prune.job import prune

    cancel = cancel or CancelToken()
    units = units if units is not None else find_units(loaded.model)
    groups = tuple(config.groups) if config.groups is not None else sensitivity_groups(units, base)
    ratios = tuple(float(r) for r in config.ratios)
    if not groups or not ratios:
        raise StepMissing("sensitivity analysis needs at least one group and one ratio")
    # every plan before the first measurement: a bad group, ratio or criterion fails at once
    neutral = dict(ratio=0.0, group_ratios={}, unit_ratios={})
    plans = [(g, r, base.with_changes(**{**neutral, "group_ratios": {g: r}})) for g in groups for r in ratios]
    plans[0][2].validate(units, list(importance.criteria))
    ds = open_dataset(config.dataset, config.split)
    scale = loaded.scale(ds)
    cfg = EvalConfig(max_images=int(config.max_images))
    result = SensitivityResult(base.criterion, ratios, groups, int(config.max_images), ds.name)
    total = 1 + len(groups) * len(ratios)

    def measure(model, step: int, what: str) -> float:
        label = f"point {step + 1} of {total}: {what}"  # one bar over all points; counts points, not ids

        def sub(done: int, n: int, message: str = "") -> None:
            text = f"{label} — {message}" if message else label
            progress(step * 100 + (100 * done) // max(n, 1), total * 100, text)

        return float(evaluate(Detector(model, config.device, target_size=scale), ds, split=config.split, config=cfg,
                              progress=sub, cancel=cancel).map)

    def add(point: SensitivityPoint) -> None:
        nonlocal result
        result = result.with_point(point)
        if report is not None:
            report(point)

    n0 = loaded.model.num_parameters()
    add(SensitivityPoint("", 0.0, measure(loaded.model, 0, "unpruned baseline"), n0, n0 * 4 / 1e6))
    for step, (g, r, plan) in enumerate(plans, start=1):
        cancel.raise_if_cancelled()
        pruned = prune(loaded.model, plan, importance, cancel=cancel)
        m = measure(pruned.model, step, f"{g} at {r:.0%}")
        point = SensitivityPoint(g, r, m, pruned.measured_parameters, pruned.measured_size_mb)
        del pruned
        add(point)
    progress(total * 100, total * 100, f"{total} points measured")
    return replace(result, complete=True)
