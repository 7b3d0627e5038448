"""Physical channel removal: smaller Conv2d/BatchNorm2d modules holding the kept slices.

For each unit the kept channels are taken (index_select) from its producers' output rows and biases,
its batch norms (affine parameters and running statistics) and its consumers' input columns. The
trunk is one module shared by the target and class branches, so slicing it once keeps both branches
consistent; a model with separate branch trunks gets the same indices in both. The result is an
ordinary `OS2DModel` with smaller layers: no masks, no hooks, nothing to undo.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from core.jobs import CancelToken, Progress, no_progress
from core.model.os2d import OS2DModel
from core.prune.plan import CLASS_TRUNK, KeptChannels
from core.prune.units import TRUNK, Unit, find_units


class SurgeryError(ValueError):
    """Kept channels that do not fit the model (unknown unit, bad or empty indices)."""


def branch_names(model: OS2DModel, name: str) -> list[str]:
    """The module paths a unit member stands for: the class-branch twin when the trunks are separate."""
    if not model.config.merge_branch_parameters and name.startswith(TRUNK + "."):
        return [name, CLASS_TRUNK + name[len(TRUNK):]]
    return [name]


def _check_indices(unit: Unit, idx: Any) -> torch.Tensor | None:
    """Sorted unique kept indices as a LongTensor, or None when the unit stays whole."""
    a = np.asarray(idx)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise SurgeryError(f"unit '{unit.name}': kept channels must be a 1-D list of integers")
    a = np.unique(a.astype(np.int64))
    if a.size != np.asarray(idx).size:
        raise SurgeryError(f"unit '{unit.name}': kept channels contain duplicates")
    if a.size == 0:
        raise SurgeryError(f"unit '{unit.name}': keeping no channels would disconnect the network")
    if a[0] < 0 or a[-1] >= unit.channels:
        raise SurgeryError(f"unit '{unit.name}': kept index out of range [0, {unit.channels})")
    if a.size == unit.channels:
        return None
    return torch.from_numpy(a)


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)


def _param(t: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(t.contiguous(), requires_grad=like.requires_grad)


def _sliced_conv(m: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Conv2d:
    if m.groups != 1:
        raise SurgeryError(f"grouped convolution ({m.groups} groups) cannot be pruned by this surgery")
    w = m.weight.detach()
    if out_idx is not None:
        w = w.index_select(0, out_idx.to(w.device))
    if in_idx is not None:
        w = w.index_select(1, in_idx.to(w.device))
    # built on the meta device: no wasted random initialisation, then given the kept slices
    new = nn.Conv2d(w.shape[1], w.shape[0], m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                    m.bias is not None, m.padding_mode, device="meta", dtype=w.dtype)
    new.weight = _param(w.clone(), m.weight)
    if m.bias is not None:
        b = m.bias.detach()
        new.bias = _param((b.index_select(0, out_idx.to(b.device)) if out_idx is not None else b).clone(), m.bias)
    new.train(m.training)
    return new


def _sliced_bn(m: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), m.eps, m.momentum, m.affine, m.track_running_stats, device="meta")
    take = lambda t: t.detach().index_select(0, idx.to(t.device)).clone()  # noqa: E731
    if m.affine:
        new.weight = _param(take(m.weight), m.weight)
        new.bias = _param(take(m.bias), m.bias)
    if m.track_running_stats:
        new.running_mean = take(m.running_mean)
        new.running_var = take(m.running_var)
        new.num_batches_tracked = m.num_batches_tracked.detach().clone()
    new.train(m.training)
    return new


def prune_model(model: OS2DModel, kept: Mapping[str, Any] | KeptChannels, *, units: Sequence[Unit] | None = None,
                progress: Progress = no_progress, cancel: CancelToken | None = None) -> OS2DModel:
    """A pruned deep copy of `model` keeping `kept[unit]` channels (indices into the unit as it is
    now); units not named stay whole. The input model is never modified."""
    units = find_units(model) if units is None else list(units)
    if isinstance(kept, KeptChannels):
        kept = kept.indices
    by_name = {u.name: u for u in units}
    unknown = sorted(set(kept) - set(by_name))
    if unknown:
        raise SurgeryError(f"unknown unit(s) {', '.join(unknown)}; this model's units start with "
                           f"{', '.join(list(by_name)[:3])}")
    plan: list[tuple[Unit, torch.Tensor]] = []
    for u in units:
        if u.name in kept:
            idx = _check_indices(u, kept[u.name])
            if idx is not None:
                plan.append((u, idx))

    total = len(plan) + 2
    progress(0, total, "copying the model")
    if cancel is not None:
        cancel.raise_if_cancelled()
    new = copy.deepcopy(model)  # deepcopy keeps the shared trunk shared
    progress(1, total, "slicing layers")

    out_idx: dict[str, torch.Tensor] = {}
    in_idx: dict[str, torch.Tensor] = {}
    for u, idx in plan:
        for n in u.producers:
            out_idx[n] = idx
        for n in u.consumers:
            in_idx[n] = idx
    done_convs: set[str] = set()
    for step, (u, idx) in enumerate(plan):
        if cancel is not None:
            cancel.raise_if_cancelled()
        for n in (*u.producers, *u.consumers):
            if n in done_convs:  # a conv is a consumer of one unit and the producer of the next
                continue
            done_convs.add(n)
            for m_name in branch_names(model, n):
                _set_module(new, m_name, _sliced_conv(new.get_submodule(m_name), out_idx.get(n), in_idx.get(n)))
        for n in u.norms:
            for m_name in branch_names(model, n):
                _set_module(new, m_name, _sliced_bn(new.get_submodule(m_name), idx))
        progress(2 + step, total, f"pruned {u.name}: {u.channels} → {len(idx)}")
    problems = consistency_problems(new)
    if problems:  # a bug in the units or here; never hand out a model that fails at run time
        raise SurgeryError("pruned model is inconsistent: " + "; ".join(problems[:3]))
    progress(total, total, f"pruned {len(plan)} units")
    return new


def consistency_problems(model: OS2DModel, units: Sequence[Unit] | None = None) -> list[str]:
    """Channel counts that disagree between a unit's producers, norms and consumers (empty = sound).

    Useful after loading a model rebuilt from stored shapes: a tampered or mixed-up file would
    otherwise only fail at the first forward pass."""
    problems = []
    try:
        units = find_units(model) if units is None else units
    except AttributeError as e:
        return [f"not an OS2D layout: {e}"]
    for u in units:
        for base in (u.producers, u.norms, u.consumers):
            for b in base:
                for n in branch_names(model, b):
                    m = model.get_submodule(n)
                    have = (m.out_channels if b in u.producers else m.in_channels) if isinstance(m, nn.Conv2d) \
                        else m.num_features
                    if have != u.channels:
                        problems.append(f"'{n}' has {have} channels where unit '{u.name}' has {u.channels}")
    return problems
