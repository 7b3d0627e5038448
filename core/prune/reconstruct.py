"""Reconstruction of the consumers after a cut: new kept input weights for every conv that reads a
pruned unit's channels, by least squares, as DCP and LCP (Xie et al. 2020) do after each layer's cut.

Why: the surgery only drops the input columns of the removed channels; the consumer's remaining
weights still expect them. Solving

    min_W  sum_{cells in ctx} ||W x_pruned - F_orig||^2 + lam ||W - W_0||^2

for each consumer's kept weights W (output channels it keeps; W_0 the surgery's slice) makes its
output match the uncut model's again where it matters: on the cells of its map inside the context
boxes (ground truth enlarged `context_scale` times, the masks LCP's reconstruction term uses). F_orig
is the consumer's output without bias (before its batch norm) in the model before the cut; x_pruned
its input in the cut model, so the update also makes up for upstream changes. Consumers are solved in
forward order, each on the inputs the already updated ones produce. Regularizing towards W_0 (not
towards zero) means the error inside the context boxes can only go down on the cells solved on; with
fewer cells than weights per output (few images, deep layers) the fit there is exact and the ridge
keeps the rest of W near W_0.

The normal equations are accumulated in float64 over the calibration images from im2col patches of
the in-context cells only (at most `max_cells_per_image`, a seeded draw), so memory is bounded by the
patch width, never by the map size; a grouped conv is one system per group. Like LCP's ranking, this
sees the target image only (for the transformation net: every class slice of its correlation maps).
The correlation reads the trunk's last channels but has no weights: those channels are only cut.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.importance.calibration import CalibrationSample, CalibrationSet
from core.importance.stats import StatsConfig, eval_mode, model_device, nominal_stride, outside_mask, sample_rois
from core.jobs import CancelToken, Progress, no_progress
from core.model.os2d import OS2DModel
from core.prune.plan import KeptChannels
from core.prune.surgery import branch_names
from core.prune.units import TRUNK, Unit, find_units


@dataclass(frozen=True)
class ReconstructConfig:
    context_scale: float = 1.5  # as LCP's ranking (`GradientConfig.context_scale`)
    ridge: float = 1e-3  # lam relative to the mean diagonal of the patches' Gram matrix
    max_cells_per_image: int = 2048  # in-context cells (x class slices) per image and consumer
    seed: int = 0  # the draw of cells when there are more

    def __post_init__(self) -> None:
        if not self.ridge > 0:
            raise ValueError(f"ridge must be positive (the normal equations may be singular), got {self.ridge}")
        if self.max_cells_per_image < 1:
            raise ValueError(f"max_cells_per_image must be at least 1, got {self.max_cells_per_image}")


@dataclass(frozen=True)
class ConsumerReconstruction:
    """One consumer: relative squared error ||W x - F||^2 / ||F||^2 on the in-context cells it was solved
    on, before (the surgery's slice, on the inputs the consumers upstream give once updated) and after
    the update; or why it was left as the surgery made it."""

    name: str
    unit: str  # the pruned unit whose channels it reads
    cells: int = 0  # summed over images (x class slices for the transformation net)
    error_before: float | None = None
    error_after: float | None = None
    skipped: str = ""


@dataclass(frozen=True)
class ReconstructionReport:
    consumers: tuple[ConsumerReconstruction, ...]
    images: int
    seconds: float
    config: ReconstructConfig

    @property
    def updated(self) -> list[ConsumerReconstruction]:
        return [c for c in self.consumers if not c.skipped]

    def summary(self) -> dict:
        """What a stage's meta keeps: counts, the mean errors, and each skip with its reason."""
        done = self.updated
        mean = lambda key: float(np.mean([getattr(c, key) for c in done])) if done else None  # noqa: E731
        return {"updated": len(done), "cells": sum(c.cells for c in done), "images": self.images,
                "error_before": mean("error_before"), "error_after": mean("error_after"),
                "skipped": {c.name: c.skipped for c in self.consumers if c.skipped},
                "seconds": round(self.seconds, 3)}

    def to_json(self) -> dict:
        return {"consumers": [asdict(c) for c in self.consumers], "images": self.images,
                "seconds": round(self.seconds, 3), "config": asdict(self.config)}


class _Stop(Exception):
    """Raised by the capture hook: the rest of the forward pass is not needed."""


def consumer_input(model: OS2DModel, name: str, sample: CalibrationSample, device: torch.device) -> torch.Tensor:
    """The input of conv `name` on the sample's target image (the forward stops there)."""
    box: dict[str, torch.Tensor] = {}

    def capture(module, inputs):
        box["x"] = inputs[0].detach()
        raise _Stop

    handle = model.get_submodule(name).register_forward_pre_hook(capture)
    try:
        with torch.no_grad():
            image = sample.image.to(device).unsqueeze(0)
            if name.startswith(TRUNK + "."):
                model.target_features(image)
            else:
                class_feats = model.class_features([c.to(device) for c in sample.class_images])
                model.head(model.target_features(image), class_feats)
    except _Stop:
        pass
    finally:
        handle.remove()
    if "x" not in box:
        raise RuntimeError(f"'{name}' is not reached by the target image's forward pass")
    return box["x"]


def _out_hw(conv: nn.Conv2d, hw: tuple[int, int]) -> tuple[int, int]:
    return tuple(int((hw[i] + 2 * conv.padding[i] - conv.dilation[i] * (conv.kernel_size[i] - 1) - 1)
                     // conv.stride[i] + 1) for i in (0, 1))


def context_cells(conv: nn.Conv2d, x: torch.Tensor, sample: CalibrationSample, cfg: ReconstructConfig,
                  salt: int) -> torch.Tensor:
    """Flat indices (slice * h * w + y * w + x) of the conv's output cells inside the context boxes,
    at most `max_cells_per_image`, drawn with a generator seeded by (seed, salt): the same cells for
    the uncut and the cut model."""
    n = x.shape[0]
    h, w = _out_hw(conv, tuple(x.shape[-2:]))
    rois = sample_rois(sample, StatsConfig(context_scale=cfg.context_scale), x.device)[0]
    inside = (1.0 - outside_mask(rois, 1, (h, w), nominal_stride(sample.image_hw, (h, w)))).flatten() > 0
    cells = torch.nonzero(inside).flatten().cpu()
    cells = (torch.arange(n).view(-1, 1) * (h * w) + cells.view(1, -1)).flatten()
    if cells.numel() > cfg.max_cells_per_image:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + salt)
        cells = cells[torch.randperm(cells.numel(), generator=g)[:cfg.max_cells_per_image]].sort().values
    return cells


def patches(conv: nn.Conv2d, x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """im2col of `x` for `conv` at the given output cells only: [cells, C_in, kh, kw] (as `F.unfold`'s
    columns, without building the whole column matrix)."""
    h, w = _out_hw(conv, tuple(x.shape[-2:]))
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    xp = F.pad(x, (pw, pw, ph, ph))
    cells = cells.to(x.device)
    s, rest = cells // (h * w), cells % (h * w)
    oy, ox = rest // w, rest % w
    ys = (oy * sh).view(-1, 1, 1) + (torch.arange(kh, device=x.device) * dh).view(1, -1, 1)
    xs = (ox * sw).view(-1, 1, 1) + (torch.arange(kw, device=x.device) * dw).view(1, 1, -1)
    return xp[s.view(-1, 1, 1), :, ys, xs].permute(0, 3, 1, 2)  # [cells, kh, kw, C] → [cells, C, kh, kw]


class _Normal:
    """Running sums of one conv's normal equations, one system per group (float64)."""

    def __init__(self, groups: int, width: int, outs: int, device: torch.device) -> None:
        self.a = torch.zeros(groups, width, width, dtype=torch.float64, device=device)  # sum X^T X
        self.b = torch.zeros(groups, outs, width, dtype=torch.float64, device=device)  # sum Y^T X
        self.yy = torch.zeros((), dtype=torch.float64, device=device)
        self.cells = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """x [groups, cells, width], y [groups, cells, outs]."""
        x, y = x.double(), y.double()
        self.a += x.transpose(1, 2) @ x
        self.b += y.transpose(1, 2) @ x
        self.yy += y.square().sum()
        self.cells += x.shape[1]

    def error(self, w: torch.Tensor) -> float:
        """||W X - Y||^2 / ||Y||^2 from the sums; w [groups, outs, width]."""
        err = (w @ self.a * w).sum() - 2 * (w * self.b).sum() + self.yy
        return float(err.clamp_min(0) / self.yy.clamp_min(1e-300))

    def solve(self, w0: torch.Tensor, ridge: float) -> torch.Tensor:
        """argmin ||W X - Y||^2 + lam ||W - W_0||^2, lam = ridge * mean diagonal of X^T X (per group)."""
        width = self.a.shape[-1]
        lam = ridge * torch.diagonal(self.a, dim1=1, dim2=2).mean(dim=1).clamp_min(1e-12)  # [groups]
        eye = torch.eye(width, dtype=torch.float64, device=self.a.device)
        lhs = self.a + lam.view(-1, 1, 1) * eye
        rhs = (self.b + lam.view(-1, 1, 1) * w0).transpose(1, 2)  # [groups, width, outs]
        return torch.linalg.solve(lhs, rhs).transpose(1, 2)


def _grouped(p: torch.Tensor, groups: int) -> torch.Tensor:
    """[cells, C_in, kh, kw] → [groups, cells, C_in / groups * kh * kw] (the weight's column order)."""
    n, c = p.shape[:2]
    return p.reshape(n, groups, c // groups, -1).transpose(0, 1).reshape(groups, n, -1)


def _why_not(conv: nn.Module) -> str:
    if not isinstance(conv, nn.Conv2d):
        return f"a {type(conv).__name__}, not a convolution"
    if conv.padding_mode != "zeros":
        return f"padding mode '{conv.padding_mode}' (only zero padding is rebuilt from patches)"
    if isinstance(conv.padding, str):
        return f"padding '{conv.padding}' given by name"
    return ""


def reconstruct_consumers(original: OS2DModel, pruned: OS2DModel, kept: KeptChannels, calib: CalibrationSet, *,
                          config: ReconstructConfig = ReconstructConfig(), units: Sequence[Unit] | None = None,
                          progress: Progress = no_progress, cancel: CancelToken | None = None
                          ) -> ReconstructionReport:
    """Update, in place, the kept input weights of every consumer of the units `kept` prunes in
    `pruned` (the cut copy of `original`, the model before the cut); `original` is not modified.
    Both models must be on the same device."""
    t0 = time.perf_counter()
    units = find_units(original) if units is None else list(units)
    device = model_device(pruned)
    if model_device(original) != device:
        raise ValueError(f"the uncut model is on {model_device(original)}, the cut one on {device}")
    cut = set(kept.pruned_units())
    out_kept = {p: kept.indices[u.name] for u in units if u.name in cut for p in u.producers}
    order = {n: i for i, (n, _) in enumerate(original.named_modules())}
    todo: dict[str, str] = {}  # consumer → the unit it reads, in forward order
    skipped: list[ConsumerReconstruction] = []
    for u in units:
        if u.name not in cut:
            continue
        for name in u.consumers:
            todo.setdefault(name, u.name)
            skipped += [ConsumerReconstruction(twin, u.name, skipped="class-branch copy of a trunk conv: the "
                                               "reconstruction sees target images only")
                        for twin in branch_names(original, name)[1:]]
        if u.feeds_correlation:
            skipped.append(ConsumerReconstruction("correlation", u.name, skipped="the correlation has no weights "
                                                  "(the channels it reads are only cut)"))
    names = sorted(todo, key=order.__getitem__)
    done: list[ConsumerReconstruction] = []
    with eval_mode(original), eval_mode(pruned):
        for ci, name in enumerate(names):
            progress(ci, len(names), f"reconstructing consumer {ci + 1} of {len(names)}")
            conv, ref = pruned.get_submodule(name), original.get_submodule(name)
            why = _why_not(conv) or _why_not(ref)
            if not why and (conv.groups != ref.groups or conv.kernel_size != ref.kernel_size):
                why = "the cut changed its grouping or kernel"
            if why:
                skipped.append(ConsumerReconstruction(name, todo[name], skipped=why))
                continue
            g = conv.groups
            rows = out_kept.get(name)
            w_ref = ref.weight.detach().double()
            if rows is not None:
                w_ref = w_ref[torch.as_tensor(rows, device=w_ref.device)]
            w0 = conv.weight.detach().double().reshape(g, conv.out_channels // g, -1)
            w_ref = w_ref.reshape(g, conv.out_channels // g, -1)
            normal = None
            for k, sample in enumerate(calib):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                x_ref = consumer_input(original, name, sample, device)
                x_cut = consumer_input(pruned, name, sample, device)
                cells = context_cells(conv, x_cut, sample, config, salt=k)
                if cells.numel() == 0:
                    continue
                y = _grouped(patches(ref, x_ref, cells), g).double() @ w_ref.transpose(1, 2)
                x = _grouped(patches(conv, x_cut, cells), g)
                normal = normal or _Normal(g, x.shape[-1], y.shape[-1], device)
                normal.add(x, y)
                del x_ref, x_cut
            if normal is None or float(normal.yy) == 0.0:
                skipped.append(ConsumerReconstruction(name, todo[name], skipped="no cell inside a context box "
                                                      "with a non-zero output"))
                continue
            w = normal.solve(w0, config.ridge)
            with torch.no_grad():
                conv.weight.copy_(w.reshape(conv.weight.shape).to(conv.weight.dtype))
            done.append(ConsumerReconstruction(name, todo[name], normal.cells, normal.error(w0), normal.error(w)))
    progress(len(names), len(names), f"reconstructed {len(done)} of {len(names)} consumers")
    by_order = sorted(done + skipped, key=lambda c: order.get(c.name, len(order)))
    return ReconstructionReport(tuple(by_order), len(calib), time.perf_counter() - t0, config)
