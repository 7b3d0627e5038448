"""Pruning plans: ratios per group and unit → channels kept, and the size/cost they predict.

`plan_counts` needs no importance scores, so the GUI can follow a slider; `resolve` then picks *which*
channels by one criterion of an importance result (anything with `criteria` and
`scores[criterion][unit] -> per-channel array`, higher = more important). `PlanCostModel` predicts
parameters, MACs and fp32 size from kept counts with a few dot products, never building a model.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np
from torch import nn

from core.errors import InputError
from core.model.backbone import conv_output_hw, trunk_conv_positions
from core.model.os2d import GRID, OS2DModel
from core.prune.units import TRUNK, Unit, find_units

PLAN_FORMAT = "os2d-studio-plan"
PLAN_VERSION = 1
GROUPS = ("stem", "layer1", "layer2", "layer3", "transform")
MAX_RATIO = 0.95
CLASS_TRUNK = "net_label_features.net_class_features"


class PlanError(InputError):
    """A plan that cannot be applied; the message says which field, unit or file is wrong.

    `PlanError(file, problem)` like every InputError when the plan came from a file; `PlanError(problem)`
    where it has none (sliders, a project's plan section), so the caller that knows the source can name it."""

    def __init__(self, *args: str | os.PathLike) -> None:
        if len(args) == 2:
            super().__init__(*args)
        elif len(args) == 1:
            ValueError.__init__(self, str(args[0]))
            self.source = self.path = ""
            self.problem = str(args[0])
        else:
            raise TypeError("PlanError(problem) or PlanError(file, problem)")


class ImportanceLike(Protocol):
    criteria: Sequence[str]
    scores: Mapping[str, Mapping[str, np.ndarray]]


def _check_ratio(value: Any, what: str) -> float:
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise PlanError(f"{what}: ratio must be a number, got {value!r}") from None
    if not (0.0 <= r <= MAX_RATIO) or math.isnan(r):
        raise PlanError(f"{what}: ratio {r:g} is outside [0, {MAX_RATIO}] (a ratio is the fraction of channels removed)")
    return r


def _pairs(value: Any, what: str) -> tuple[tuple[str, float], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    out: dict[str, float] = {}
    for name, r in items:
        if not isinstance(name, str) or not name:
            raise PlanError(f"{what}: names must be non-empty strings, got {name!r}")
        out[name] = _check_ratio(r, f"{what} '{name}'")
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class PruningPlan:
    """What to prune. Precedence: per-unit override > group ratio > global ratio.

    Ratios are fractions of channels *removed*. `min_channels` is a floor per unit; `round_to` rounds
    the kept count *up* to a multiple (fast kernels), never past the unit's size. The overrides are
    stored as sorted (name, ratio) pairs so the plan stays hashable; dicts are accepted.
    """

    ratio: float = 0.0
    group_ratios: tuple[tuple[str, float], ...] | Mapping[str, float] = ()
    unit_ratios: tuple[tuple[str, float], ...] | Mapping[str, float] = ()
    min_channels: int = 8
    round_to: int = 1
    criterion: str = "weight_l1"
    prune_trunk_output: bool = True  # the layer3 output read by the correlation (both branches)
    prune_head: bool = True  # the transformation net's two hidden layers

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratio", _check_ratio(self.ratio, "global ratio"))
        object.__setattr__(self, "group_ratios", _pairs(self.group_ratios, "group"))
        object.__setattr__(self, "unit_ratios", _pairs(self.unit_ratios, "unit"))
        bad = [g for g, _ in self.group_ratios if g not in GROUPS]
        if bad:
            raise PlanError(f"unknown group(s) {', '.join(bad)}; groups are {', '.join(GROUPS)}")
        for name, v, lo in (("min_channels", self.min_channels, 1), ("round_to", self.round_to, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise PlanError(f"{name} must be an integer >= {lo}, got {v!r}"
                                + (" (a unit pruned to nothing would disconnect the network)" if name == "min_channels" else ""))
            object.__setattr__(self, name, int(v))
        if not isinstance(self.criterion, str) or not self.criterion.strip():
            raise PlanError(f"criterion must be a non-empty name, got {self.criterion!r}")
        for name in ("prune_trunk_output", "prune_head"):
            if not isinstance(getattr(self, name), bool):
                raise PlanError(f"{name} must be true or false, got {getattr(self, name)!r}")

    # -- lookups ---------------------------------------------------------------------------------
    @property
    def group_ratio_map(self) -> dict[str, float]:
        return dict(self.group_ratios)

    @property
    def unit_ratio_map(self) -> dict[str, float]:
        return dict(self.unit_ratios)

    def excludes(self, unit: Unit) -> bool:
        """Units the plan's switches keep whole, whatever the ratios say."""
        return (unit.feeds_correlation and not self.prune_trunk_output) or (unit.kind == "head" and not self.prune_head)

    def ratio_for(self, unit: Unit) -> float:
        if self.excludes(unit):
            return 0.0
        units, groups = self.unit_ratio_map, self.group_ratio_map
        if unit.name in units:
            return units[unit.name]
        return groups.get(unit.group, self.ratio)

    def cuts_any(self, units: Iterable[Unit]) -> bool:
        """Whether the plan removes channels from any of these units."""
        return any(self.ratio_for(u) > 0 for u in units)

    def with_changes(self, **changes: Any) -> "PruningPlan":
        return replace(self, **changes)

    # -- validation against a model and an importance result --------------------------------------
    def validate(self, units: Sequence[Unit], criteria: Iterable[str] | None = None) -> None:
        """Raise PlanError for names this model does not have or a criterion the importance lacks."""
        names = [u.name for u in units]
        by_name = {u.name: u for u in units}
        for name, _ in self.unit_ratios:
            if name not in by_name:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PlanError(f"unknown unit '{name}'{hint}; this model has {len(names)} units")
            if self.excludes(by_name[name]):
                switch = "prune_trunk_output" if by_name[name].feeds_correlation else "prune_head"
                raise PlanError(f"unit '{name}' has a ratio but {switch} is false; drop the override or enable {switch}")
        if criteria is not None:
            criteria = list(criteria)
            if self.criterion not in criteria:
                raise PlanError(f"unknown criterion '{self.criterion}'; the importance result has "
                                f"{', '.join(criteria) or 'no criteria'}")

    # -- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": PLAN_FORMAT, "version": PLAN_VERSION, "ratio": self.ratio,
            "group_ratios": dict(self.group_ratios), "unit_ratios": dict(self.unit_ratios),
            "min_channels": self.min_channels, "round_to": self.round_to, "criterion": self.criterion,
            "prune_trunk_output": self.prune_trunk_output, "prune_head": self.prune_head,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PruningPlan":
        if not isinstance(data, Mapping):
            raise PlanError(f"a plan is a JSON object, got {type(data).__name__}")
        if data.get("format", PLAN_FORMAT) != PLAN_FORMAT:
            raise PlanError(f"not a pruning plan (format '{data.get('format')}')")
        version = data.get("version", PLAN_VERSION)
        if not isinstance(version, int) or version > PLAN_VERSION:
            raise PlanError(f"plan format version {version!r} is newer than this os2d-studio ({PLAN_VERSION})")
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - fields - {"format", "version"})
        if unknown:
            raise PlanError(f"unknown plan field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        kwargs = {k: data[k] for k in fields if k in data}
        for k in ("group_ratios", "unit_ratios"):
            if k in kwargs and not isinstance(kwargs[k], Mapping):
                raise PlanError(f"{k} must be an object of name: ratio")
        return cls(**kwargs)

    def save(self, path: str | os.PathLike) -> Path:
        from core.io import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PruningPlan":
        """The one way a plan file is read (CLI --plan, the GUI): every problem names the file."""
        from core.io import read_json

        path = Path(path)
        data = read_json(path, PlanError, "plan file")
        try:
            return cls.from_json(data)
        except PlanError as e:
            raise PlanError(path, e.problem) from None


# -- how many channels -----------------------------------------------------------------------------
def keep_count(channels: int, ratio: float, min_channels: int = 1, round_to: int = 1) -> int:
    """Channels kept: floor(C·(1-r)) as Torch-Pruning counts, then the floor `min_channels`, then
    rounded up to a multiple of `round_to` (capped at C). Ratio 0 keeps everything."""
    if ratio <= 0:
        return channels
    keep = int(math.floor(channels * (1.0 - ratio) + 1e-9))
    keep = max(keep, min(min_channels, channels), 1)
    if round_to > 1:
        keep = min(channels, -(-keep // round_to) * round_to)
    return keep


def plan_counts(plan: PruningPlan, units: Sequence[Unit]) -> dict[str, int]:
    """Kept channels per unit; no importance needed (what a slider shows before choosing channels)."""
    return {u.name: keep_count(u.channels, plan.ratio_for(u), plan.min_channels, plan.round_to) for u in units}


@dataclass(frozen=True, eq=False)
class KeptChannels:
    """Sorted kept channel indices per unit (every unit of the model, pruned or not)."""

    indices: Mapping[str, np.ndarray]
    channels: Mapping[str, int]  # the units' sizes before pruning
    criterion: str = ""

    def counts(self) -> dict[str, int]:
        return {k: int(len(v)) for k, v in self.indices.items()}

    def pruned_units(self) -> list[str]:
        return [k for k, v in self.indices.items() if len(v) < self.channels[k]]

    def to_json(self) -> dict:
        return {"criterion": self.criterion, "channels": dict(self.channels),
                "kept": {k: [int(i) for i in v] for k, v in self.indices.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "KeptChannels":
        return cls({k: np.asarray(v, dtype=np.int64) for k, v in data["kept"].items()},
                   {k: int(v) for k, v in data["channels"].items()}, str(data.get("criterion", "")))


def resolve(plan: PruningPlan, units: Sequence[Unit], importance: ImportanceLike | None) -> KeptChannels:
    """Choose the kept channels: the highest `plan.criterion` scores, ties to the lower index (the same
    order as `core.importance.criteria.channel_order`)."""
    criteria = None if importance is None else list(importance.criteria)
    plan.validate(units, criteria)
    counts = plan_counts(plan, units)
    kept: dict[str, np.ndarray] = {}
    for u in units:
        n = counts[u.name]
        if n >= u.channels:
            kept[u.name] = np.arange(u.channels, dtype=np.int64)
            continue
        if importance is None:
            raise PlanError(f"the plan prunes '{u.name}' but no importance result was given")
        per_unit = importance.scores[plan.criterion]
        if u.name not in per_unit:
            raise PlanError(f"importance '{plan.criterion}' has no scores for unit '{u.name}' "
                            "(computed for another model or an older pruning of this one?)")
        s = np.asarray(per_unit[u.name], dtype=np.float64).reshape(-1)
        if s.shape[0] != u.channels:
            raise PlanError(f"importance '{plan.criterion}' for '{u.name}' has {s.shape[0]} scores, "
                            f"the unit has {u.channels} channels")
        s = np.nan_to_num(s, nan=-np.inf)  # NaN counts as least important, as core.importance orders
        order = np.lexsort((np.arange(u.channels), -s))  # by score descending, then index ascending
        kept[u.name] = np.sort(order[:n]).astype(np.int64)
    return KeptChannels(kept, {u.name: u.channels for u in units}, plan.criterion)


# -- analytic cost model ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """Size and cost of a (pruned) model at the cost model's reference input."""

    parameters: int
    size_mb: float  # fp32 parameters, 10^6 bytes (as `os2d-studio info` reports)
    macs: int  # target trunk + class branch + head
    macs_target: int  # trunk on the target image
    macs_class: int  # trunk on the class images
    macs_head: int  # correlation + transformation net, for all classes
    feature_dim: int
    base_parameters: int  # the unpruned model the cost model was built from
    base_macs: int
    input_size: tuple[int, int]
    class_image_size: int
    num_classes: int

    @property
    def parameter_fraction(self) -> float:
        return self.parameters / self.base_parameters

    @property
    def mac_fraction(self) -> float:
        return self.macs / self.base_macs

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Prediction":
        d = {k: data[k] for k in cls.__dataclass_fields__}
        d["input_size"] = tuple(d["input_size"])
        return cls(**d)


@dataclass(frozen=True, eq=False)
class PlanCostModel:
    """Per-layer shapes of one model at one reference input, precomputed once.

    Arrays are per conv (`c_*`) and per batch norm (`b_*`); a unit index of -1 means a fixed
    channel count. `predict` only gathers kept counts and takes dot products.
    """

    unit_names: tuple[str, ...]
    unit_channels: np.ndarray
    correlation_unit: int
    c_names: tuple[str, ...]
    c_in_unit: np.ndarray
    c_in_fixed: np.ndarray
    c_out_unit: np.ndarray
    c_out_fixed: np.ndarray
    c_kernel: np.ndarray  # kh·kw / groups
    c_bias: np.ndarray
    c_pos_target: np.ndarray  # output positions per call, by branch (0 where the conv does not run)
    c_pos_class: np.ndarray
    c_pos_head: np.ndarray
    b_unit: np.ndarray
    b_fixed: np.ndarray
    b_affine: np.ndarray
    fixed_parameters: int  # parameters in no conv or batch norm
    feature_hw: tuple[int, int]
    input_size: tuple[int, int]
    class_image_size: int
    num_classes: int
    base: Prediction | None = None

    @classmethod
    def from_model(cls, model: OS2DModel, units: Sequence[Unit] | None = None, *,
                   input_size: tuple[int, int] = (512, 512), num_classes: int = 1,
                   class_image_size: int | None = None) -> "PlanCostModel":
        units = find_units(model) if units is None else list(units)
        cis = int(class_image_size or model.config.class_image_size)
        merged = model.config.merge_branch_parameters
        out_unit = {n: i for i, u in enumerate(units) for n in u.producers}
        in_unit = {n: i for i, u in enumerate(units) for n in u.consumers}
        bn_unit = {n: i for i, u in enumerate(units) for n in u.norms}
        corr = next((i for i, u in enumerate(units) if u.feeds_correlation), -1)

        t_pos, fhw = trunk_conv_positions(model.net_feature_maps, tuple(input_size))
        c_pos, _ = trunk_conv_positions(model.net_label_features.net_class_features, (cis, cis))
        conv_rows, bn_rows = [], []
        covered = 0
        for name, m in model.named_modules():  # shared modules appear once
            if name.startswith(TRUNK + "."):
                local, key = name[len(TRUNK) + 1:], name
                pos = (t_pos.get(local, 0), c_pos.get(local, 0) if merged else 0, 0)
            elif name.startswith(CLASS_TRUNK + "."):  # separate class trunk: pruned like the target trunk
                local = name[len(CLASS_TRUNK) + 1:]
                key = f"{TRUNK}.{local}"
                pos = (0, c_pos.get(local, 0), 0)
            else:
                key = name
                pos = (0, 0, 0)
            if isinstance(m, nn.Conv2d):
                if key.startswith(TRUNK + ".") and local not in t_pos:
                    raise ValueError(f"cost model: trunk conv '{name}' is not on the ResNet path it knows")
                if not key.startswith(TRUNK + "."):
                    h, w = conv_output_hw(fhw, m)
                    pos = (0, 0, h * w)
                if m.groups != 1 and (key in out_unit or key in in_unit):
                    raise ValueError(f"cost model: grouped conv '{name}' cannot be a pruning producer/consumer")
                conv_rows.append((name, in_unit.get(key, -1), m.in_channels, out_unit.get(key, -1), m.out_channels,
                                  m.kernel_size[0] * m.kernel_size[1] // m.groups, m.bias is not None, *pos))
                covered += sum(p.numel() for p in m.parameters(recurse=False))
            elif isinstance(m, nn.BatchNorm2d):
                bn_rows.append((bn_unit.get(key, -1), m.num_features, m.affine))
                covered += sum(p.numel() for p in m.parameters(recurse=False))
        fixed = model.num_parameters() - covered
        for i, u in enumerate(units):  # the units must describe this model as it is
            for n in u.producers:
                if model.get_submodule(n).out_channels != u.channels:
                    raise ValueError(f"cost model: unit '{u.name}' has {u.channels} channels but '{n}' "
                                     f"outputs {model.get_submodule(n).out_channels}; recompute the units")
        col = lambda k, dt=np.int64: np.array([r[k] for r in conv_rows], dtype=dt)  # noqa: E731
        cm = cls(
            unit_names=tuple(u.name for u in units),
            unit_channels=np.array([u.channels for u in units], dtype=np.int64),
            correlation_unit=corr, c_names=tuple(r[0] for r in conv_rows),
            c_in_unit=col(1), c_in_fixed=col(2), c_out_unit=col(3), c_out_fixed=col(4), c_kernel=col(5),
            c_bias=col(6), c_pos_target=col(7), c_pos_class=col(8), c_pos_head=col(9),
            b_unit=np.array([r[0] for r in bn_rows], dtype=np.int64),
            b_fixed=np.array([r[1] for r in bn_rows], dtype=np.int64),
            b_affine=np.array([r[2] for r in bn_rows], dtype=np.int64),
            fixed_parameters=int(fixed), feature_hw=tuple(fhw), input_size=tuple(input_size),
            class_image_size=cis, num_classes=int(num_classes),
        )
        object.__setattr__(cm, "base", cm.predict(None))
        if cm.base.parameters != model.num_parameters():
            raise AssertionError(f"cost model counts {cm.base.parameters} parameters, the model has {model.num_parameters()}")
        return cm

    def counts_array(self, kept: Mapping[str, Any] | KeptChannels | np.ndarray | None) -> np.ndarray:
        """Kept counts in unit order from counts, index arrays, or KeptChannels; missing units keep all."""
        if kept is None:
            return self.unit_channels.copy()
        if isinstance(kept, np.ndarray):
            return kept.astype(np.int64)
        if isinstance(kept, KeptChannels):
            kept = kept.indices
        unknown = set(kept) - set(self.unit_names)
        if unknown:
            raise PlanError(f"unknown unit(s) {', '.join(sorted(unknown))} for this cost model")
        out = self.unit_channels.copy()
        for i, name in enumerate(self.unit_names):
            if name in kept:
                v = kept[name]
                out[i] = int(v) if np.ndim(v) == 0 else len(v)
        return out

    def predict(self, kept: Mapping[str, Any] | KeptChannels | np.ndarray | None) -> Prediction:
        n = self.counts_array(kept)
        ext = np.append(n, 0)  # index -1 gathers the appended 0, replaced by the fixed count
        cin = np.where(self.c_in_unit >= 0, ext[self.c_in_unit], self.c_in_fixed)
        cout = np.where(self.c_out_unit >= 0, ext[self.c_out_unit], self.c_out_fixed)
        per_pos = cin * cout * self.c_kernel
        conv_params = int(per_pos.sum() + (self.c_bias * cout).sum())
        bn = np.where(self.b_unit >= 0, ext[self.b_unit], self.b_fixed)
        params = conv_params + int((2 * bn * self.b_affine).sum()) + self.fixed_parameters
        d = int(n[self.correlation_unit]) if self.correlation_unit >= 0 else 0
        h, w = self.feature_hw
        m_t = int(per_pos @ self.c_pos_target)
        m_c = int(per_pos @ self.c_pos_class) * self.num_classes
        m_h = int(per_pos @ self.c_pos_head) * self.num_classes + self.num_classes * GRID * GRID * d * h * w
        base = self.base
        return Prediction(
            parameters=params, size_mb=params * 4 / 1e6, macs=m_t + m_c + m_h, macs_target=m_t, macs_class=m_c,
            macs_head=m_h, feature_dim=d, base_parameters=base.parameters if base else params,
            base_macs=base.macs if base else m_t + m_c + m_h, input_size=self.input_size,
            class_image_size=self.class_image_size, num_classes=self.num_classes,
        )


def predict(source: PlanCostModel | OS2DModel, kept: Mapping[str, Any] | KeptChannels | None, **reference: Any) -> Prediction:
    """Predicted size and cost; pass a prebuilt PlanCostModel when called repeatedly (sliders)."""
    cost = source if isinstance(source, PlanCostModel) else PlanCostModel.from_model(source, **reference)
    return cost.predict(kept)
