"""Ratios per unit allocated from importance, at the cost of a uniform plan.

Why: one ratio for every unit takes as much from a layer whose channels all matter as from a layer with
many weak ones. Here the channels of all units compete: each unit's scores are divided by their mean, so
that units on different scales (filter norms grow with fan-in, activations with depth) compete on how a
channel stands within its own unit; one threshold over all of them decides what is kept, and the
threshold is chosen so that the pruned model costs no more than the plan's own ratios would (MACs or
parameters, from the analytic cost model). Torch-Pruning's global pruning ranks the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.prune.plan import ImportanceLike, PlanCostModel, PlanError, PruningPlan, keep_count, plan_counts
from core.prune.units import Unit

BUDGETS = ("macs", "parameters")
MAX_UNIT_RATIO = 0.8  # no unit loses more than this share: a unit cut to a sliver bottlenecks the network


@dataclass(frozen=True)
class Allocation:
    """The plan with a ratio per unit, and the cost it was held to."""

    plan: PruningPlan
    budget: str  # "macs" or "parameters"
    target: int  # the cost of the input plan's own ratios
    achieved: int  # the cost of the allocated ratios (≤ target)
    base: int  # the unpruned model's cost

    def summary(self) -> str:
        what = "MACs" if self.budget == "macs" else "parameters"
        return (f"{what} {self.achieved / self.base:.1%} of the original "
                f"(with the plan's own ratios: {self.target / self.base:.1%})")

    def to_json(self) -> dict:
        return {"budget": self.budget, "target": self.target, "achieved": self.achieved, "base": self.base,
                "unit_ratios": dict(self.plan.unit_ratios)}


def _normalized(scores: np.ndarray) -> np.ndarray:
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    s = np.maximum(s, 0.0)
    mean = float(s.mean()) if s.size else 0.0
    return s / mean if mean > 0 else np.ones_like(s)


def allocate(plan: PruningPlan, units: Sequence[Unit], importance: ImportanceLike, cost_model: PlanCostModel, *,
             budget: str = "macs", max_unit_ratio: float = MAX_UNIT_RATIO) -> Allocation:
    """Per-unit ratios for the units the plan prunes, ranked by `plan.criterion` across units.

    Units the plan keeps whole (ratio 0, or excluded by its switches) stay whole; every other unit keeps
    at least `keep_count(C, max_unit_ratio)` channels (and the plan's `min_channels`, rounded to
    `round_to`)."""
    if budget not in BUDGETS:
        raise PlanError(f"unknown budget '{budget}'; expected one of {', '.join(BUDGETS)}")
    if not 0.0 < max_unit_ratio < 1.0:
        raise PlanError(f"the largest ratio per unit must be between 0 and 1, got {max_unit_ratio}")
    plan.validate(units, list(importance.criteria))
    names = list(cost_model.unit_names)
    if sorted(names) != sorted(u.name for u in units):
        raise PlanError("the cost model was built for another model than these units")

    def cost(counts: dict[str, int]) -> int:
        p = cost_model.predict(counts)
        return int(p.macs if budget == "macs" else p.parameters)

    target = cost(plan_counts(plan, units))
    base = cost({u.name: u.channels for u in units})
    active = [u for u in units if plan.ratio_for(u) > 0]
    if not active:
        return Allocation(plan, budget, target, target, base)
    per_unit = importance.scores[plan.criterion]
    missing = [u.name for u in active if u.name not in per_unit]
    if missing:
        raise PlanError(f"importance '{plan.criterion}' has no scores for unit '{missing[0]}' "
                        "(computed for another model or an older pruning of this one?)")
    ranked: dict[str, np.ndarray] = {}  # normalized scores, descending
    floor: dict[str, int] = {}
    for u in active:
        s = _normalized(per_unit[u.name])
        if s.shape[0] != u.channels:
            raise PlanError(f"importance '{plan.criterion}' for '{u.name}' has {s.shape[0]} scores, "
                            f"the unit has {u.channels} channels")
        ranked[u.name] = np.sort(s)[::-1]
        floor[u.name] = keep_count(u.channels, max_unit_ratio, plan.min_channels, plan.round_to)
    fixed = {u.name: keep_count(u.channels, plan.ratio_for(u), plan.min_channels, plan.round_to)
             for u in units if plan.ratio_for(u) <= 0}

    def counts_at(threshold: float) -> dict[str, int]:
        out = dict(fixed)
        for u in active:
            above = int(np.count_nonzero(ranked[u.name] >= threshold))
            keep = max(above, floor[u.name])
            if plan.round_to > 1:
                keep = min(u.channels, -(-keep // plan.round_to) * plan.round_to)
            out[u.name] = keep
        return out

    # cost falls as the threshold rises: the lowest candidate threshold within the budget keeps the most
    candidates = np.unique(np.concatenate([r for r in ranked.values()] + [np.array([np.inf])]))
    lo, hi = 0, len(candidates) - 1  # candidates[hi] = inf keeps only the floors
    if cost(counts_at(candidates[hi])) > target:
        raise PlanError(f"no allocation within the plan's cost: even keeping {1 - max_unit_ratio:.0%} of every "
                        "unit costs more; lower the ratio or allow larger ratios per unit")
    while lo < hi:
        mid = (lo + hi) // 2
        if cost(counts_at(candidates[mid])) <= target:
            hi = mid
        else:
            lo = mid + 1
    counts = counts_at(candidates[lo])
    ratios = {u.name: 1.0 - counts[u.name] / u.channels for u in active}
    allocated = plan.with_changes(unit_ratios={**plan.unit_ratio_map, **ratios})
    # the ratios reproduce the counts exactly (keep_count floors C·(1 - r) with a tolerance)
    got = plan_counts(allocated, units)
    bad = [n for n in ratios if got[n] != counts[n]]
    if bad:
        raise AssertionError(f"allocated ratio for '{bad[0]}' gives {got[bad[0]]} channels, not {counts[bad[0]]}")
    return Allocation(allocated, budget, target, cost(counts), base)
