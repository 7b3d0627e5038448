"""Gradient-free channel importance criteria, one function each, and their combination.

Every criterion maps (model, unit, statistics) to a 1-D array of per-channel scores, higher = more
important; weight criteria ignore the statistics. Adding a criterion is one function and one entry
in `CRITERIA`. Statistics are the streaming sums of `core.importance.stats` (BN outputs, pre-ReLU);
a unit with several producers (residual-coupled stage) averages the producers with equal weight,
while weight criteria sum over producers (the channel's filters in all of them are removed).

`combined` -- the gradient-free approximation of LCP (Localization-aware Channel Pruning, Xie et
al. 2020):

    combined_c = (A_c / max_u A) * (1 + D_c) / (1 + max_u D)
    A_c = E_ctx[ReLU(a_c)]                                   ReLU'd activation, RoI-aligned in context boxes
    D_c = |mu_fg,c - mu_bg,c| / sqrt(var_fg,c + var_bg,c + eps)   object/background separation, in std units

where a_c is channel c's BN output, `ctx`/`fg` are the RoI-aligned context boxes (ground truth
enlarged 1.5x), `bg` the map outside them, and max_u is the maximum over the unit's channels.

Why this form: LCP ranks channel c by ||dL/dW_{:,c}||^2 of the next layer's weights, L being the
classification + GIoU loss of an auxiliary RoI head on contextual boxes plus the next layer's
reconstruction error inside those boxes. That gradient is sum_p g(p) x_c(p) with x_c = ReLU(a_c) the
next layer's input; by Cauchy-Schwarz its size is bounded by the energy of x_c where the loss
gradient lives -- inside the context boxes -- hence A, measured on RoI-aligned bins so that each
object counts once, like LCP's contextual RoIAlign. Among channels of equal energy the classification
term favours those whose response differs between objects and background, hence the factor
(1 + D): a boost for separation that never zeroes a channel with none, because OS2D matches class
and target features and needs descriptive channels that fire on shelves and products alike. BN's
gamma is not a third factor: a = gamma * x_hat + beta already carries |gamma| in A, so multiplying
by it again would count scale twice. Normalizing each factor by its unit maximum does not change the
order inside a unit (a positive rescaling of a product), but puts every unit's scores in [0, 1] so
that a single global threshold compares units. A channel whose output is exactly zero scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np
import torch

from core.importance.stats import ChannelStatistics
from core.model.os2d import OS2DModel
from core.prune.units import Unit

CriterionFn = Callable[[OS2DModel, Unit, "ChannelStatistics | None"], np.ndarray]
_EPS_RELATIVE = 1e-8  # separation's eps, relative to the unit's mean variance: scale-free
_EPS_ABSOLUTE = 1e-30


@dataclass(frozen=True)
class Criterion:
    """A registered criterion: the function, and whether it needs the statistics pass."""

    name: str
    fn: CriterionFn
    needs_statistics: bool
    description: str

    def __call__(self, model: OS2DModel, unit: Unit, stats: ChannelStatistics | None = None) -> np.ndarray:
        if self.needs_statistics and stats is None:
            raise ValueError(f"criterion '{self.name}' needs channel statistics for unit {unit.name}")
        scores = np.asarray(self.fn(model, unit, stats), dtype=np.float64)
        if scores.shape != (unit.channels,):
            raise ValueError(f"criterion '{self.name}' gave {scores.shape} scores for unit {unit.name} "
                             f"of {unit.channels} channels")
        return scores


# -- helpers ----------------------------------------------------------------------------------------

def channel_order(scores: np.ndarray) -> np.ndarray:
    """Channel indices, most important first; ties keep channel order, NaN counts as least important."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return np.argsort(-s, kind="stable")


def normalize_max(x: np.ndarray) -> np.ndarray:
    """x / max(x) for non-negative scores (all zeros stay zeros)."""
    x = np.asarray(x, dtype=np.float64)
    m = float(x.max()) if x.size else 0.0
    return x / m if m > 0 else np.zeros_like(x)


def normalize_rank(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1]: the most important channel gets 1 (ties share their mean rank)."""
    from scipy.stats import rankdata

    x = np.asarray(x, dtype=np.float64)
    return rankdata(x) / max(len(x), 1)


def _weights(model: OS2DModel, names: tuple[str, ...]) -> list[torch.Tensor]:
    return [model.get_submodule(n).weight.detach() for n in names]


def _separation_per_producer(stats: ChannelStatistics, squared: bool) -> np.ndarray:
    """Fisher ratio (squared) or its root, per producer, averaged over producers that saw fg and bg."""
    m_fg, v_fg, seen_fg = stats.producer_moments("fg")
    m_bg, v_bg, seen_bg = stats.producer_moments("bg")
    seen = seen_fg & seen_bg
    if not seen.any():
        return np.zeros(stats.channels)
    var = v_fg + v_bg
    eps = _EPS_RELATIVE * float(var[seen].mean()) + _EPS_ABSOLUTE
    diff2 = (m_fg - m_bg) ** 2
    ratio = diff2 / (var + eps)
    ratio = ratio if squared else np.sqrt(ratio)
    return ratio[seen].mean(axis=0)


# -- the criteria -----------------------------------------------------------------------------------

def weight_l1(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None = None) -> np.ndarray:
    """L1 norm of each channel's filter, summed over the unit's producer convs."""
    return sum(w.abs().flatten(1).sum(1).double().cpu().numpy() for w in _weights(model, unit.producers))


def weight_l2(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None = None) -> np.ndarray:
    """L2 norm of each channel's filter, summed over the unit's producer convs."""
    return sum(w.flatten(1).pow(2).sum(1).sqrt().double().cpu().numpy() for w in _weights(model, unit.producers))


def bn_gamma(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None = None) -> np.ndarray:
    """|gamma| of the unit's batch norms, summed (network slimming's criterion)."""
    return sum(w.abs().double().cpu().numpy() for w in _weights(model, unit.norms))


def act_l1(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None) -> np.ndarray:
    """Mean |a| over the target images' maps."""
    return stats.mean_abs("whole")


def act_variance(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None) -> np.ndarray:
    """Variance of a over the target images' maps (a constant channel folds into the next bias)."""
    return stats.variance("whole")


def sparsity(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None) -> np.ndarray:
    """Fraction of positions that survive the ReLU (a > 0): a channel that is rarely on matters less."""
    return stats.fraction_positive("whole")


def fg_bg_separation(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None) -> np.ndarray:
    """Fisher ratio (mu_fg - mu_bg)^2 / (var_fg + var_bg + eps) between context boxes and background."""
    return _separation_per_producer(stats, squared=True)


def combined(model: OS2DModel, unit: Unit, stats: ChannelStatistics | None) -> np.ndarray:
    """The gradient-free LCP approximation; see the module docstring for the formula and why."""
    energy = normalize_max(stats.mean_relu("fg"))
    d = _separation_per_producer(stats, squared=False)
    boost = (1.0 + d) / (1.0 + float(d.max())) if d.size else d
    return energy * boost


CRITERIA: Mapping[str, Criterion] = MappingProxyType({c.name: c for c in (
    Criterion("combined", combined, True, "LCP approximation: context-box activation x (1 + fg/bg separation)"),
    Criterion("weight_l1", weight_l1, False, "L1 norm of the producer filters"),
    Criterion("weight_l2", weight_l2, False, "L2 norm of the producer filters"),
    Criterion("bn_gamma", bn_gamma, False, "|gamma| of the batch norms"),
    Criterion("act_l1", act_l1, True, "mean |activation| over target images"),
    Criterion("act_variance", act_variance, True, "activation variance over target images"),
    Criterion("sparsity", sparsity, True, "fraction of positions active after ReLU"),
    Criterion("fg_bg_separation", fg_bg_separation, True, "Fisher ratio between context boxes and background"),
)})

# the criteria that read only the weights: no calibration images, so a plan can always rank by them
DATA_FREE = tuple(name for name, c in CRITERIA.items() if not c.needs_statistics)


def score_unit(name: str, model: OS2DModel, unit: Unit, stats: ChannelStatistics | None) -> np.ndarray:
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion '{name}', expected one of {', '.join(CRITERIA)}")
    return CRITERIA[name](model, unit, stats)
