"""Gradient-based channel importance: layer-wise LCP and first-order Taylor, the references the
gradient-free criteria are measured against, on the same calibration set.

Both use the OS2D training loss with a GIoU term (`core.train.loss`: RLL recognition on remapped
targets, smooth-L1 box codes, GIoU on positives; targets from the model's default boxes), the model
in evaluation mode (BN running statistics), and the class branch in the graph: with the shared trunk
a channel serves class and target images alike.

Taylor (Molchanov et al. 2017/2019), one backward for all units per image: a gate m (ones) multiplies
each unit's BN outputs (every producer, both branches); dL/dm_c = sum_p a_c(p) dL/da_c(p) is the
first-order change of the loss when the channel is removed, and the score is its mean absolute value
over images.

LCP (Xie et al. 2020), one backward *per unit* per image: LCP builds on DCP and ranks the channels
of layer k by ||dL_k/dW_{:,c}||_F^2, the gradient with respect to the next layer's weights reading
channel c (its consumers), where L_k = detection loss + reconstruction loss of the next layer's
output inside the objects' contextual boxes. Scoring the unpruned model itself, that reconstruction
error and its gradient are zero, so we take it where DCP/LCP's greedy channel selection starts: with
no channel of the unit selected yet, the consumer's output must be rebuilt from nothing, and

    L_rec,k = sum_j mean_{p in ctx, o} (conv_j(x; W_j restricted to the selected channels) - F_j)^2

(an MSE as in LCP) has gradient -2 mean_ctx F_j * x_c with respect to W_j[:, c]: how much channel c
alone explains the next layer's output inside objects. F_j is consumer j's unpruned output without
bias, `ctx` the cells of its map inside the context boxes (ground truth enlarged `context_scale`
times), o its output channels.
L_k is unit-specific, hence one backward per unit; the forward pass is shared by all units of an
image (`retain_graph`), and unlike LCP proper there is no fine-tuning between layers -- we want the
ranking, not the pruned model. The score is the mean over images. For the unit that feeds the
correlation, the consumers with weights are the last stage's later blocks; the correlation itself
has none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.importance.calibration import CalibrationSample, CalibrationSet
from core.importance.stats import (CLASS_TRUNK_PREFIX, TRUNK_PREFIX, Measurement, Meter, eval_mode, model_device,
                                   nominal_stride, outside_mask, sample_rois, StatsConfig)
from core.jobs import CancelToken, Progress, no_progress
from core.model import box_coder
from core.model.os2d import OS2DModel, OS2DOutput
from core.prune.units import Unit
from core.train.loss import LossConfig, build_targets, detection_loss, remap_targets


@dataclass(frozen=True)
class GradientConfig:
    loss: LossConfig = field(default_factory=lambda: LossConfig(giou_weight=1.0))
    reconstruction_weight: float = 1.0  # LCP's reconstruction term relative to the detection loss
    context_scale: float = 1.5  # context boxes, as for the statistics
    float32_resampling: bool = True  # as training does: float64 resampling only matters for exact inference

    def __post_init__(self) -> None:
        if self.loss.giou_weight <= 0:
            raise ValueError("LCP's localization term needs giou_weight > 0")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "GradientConfig":
        d = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if isinstance(d.get("loss"), dict):
            d["loss"] = LossConfig(**d["loss"])
        return cls(**d)


@dataclass(frozen=True, eq=False)
class GradientScores:
    """Per-unit channel scores of one gradient criterion and what computing them cost."""

    method: str
    scores: Mapping[str, np.ndarray]  # unit name → [C] float64
    num_images: int
    measurement: Measurement
    device: str


# -- shared pieces ----------------------------------------------------------------------------------

def sample_loss(model: OS2DModel, out: OS2DOutput, sample: CalibrationSample, cfg: LossConfig) -> torch.Tensor:
    """The OS2D training loss of one image against its class images (targets from default boxes)."""
    device = out.cls.device
    fm_h, fm_w = out.fm_hw
    anchors = box_coder.strided_boxes(fm_h, fm_w, model.box_size, model.stride, device=device)
    boxes = [sample.boxes.to(device).float()]
    labels = [sample.labels.to(device)]
    diff = [sample.difficult.to(device)]
    c = len(sample.class_images)
    targets = build_targets(boxes, labels, diff, c, anchors, cfg)
    with torch.no_grad():
        pred_boxes = box_coder.decode(out.loc.detach().float().permute(0, 1, 3, 2).reshape(-1, 4),
                                      anchors.repeat(c, 1)).view(1, c, -1, 4)
    remapped = remap_targets(pred_boxes, boxes, labels, diff, cfg)
    return detection_loss(out.loc.float(), out.cls.float(), out.cls_transform_detached.float(), targets, anchors,
                          cfg, remapped)["loss"]


class _Resampling:
    """Float32 resampling for the block (the model's own setting back afterwards)."""

    def __init__(self, model: OS2DModel, enabled: bool) -> None:
        self.model, self.enabled = model, enabled

    def __enter__(self) -> None:
        self.saved = self.model.resample_dtype
        if self.enabled:
            self.model.resample_dtype = torch.float32

    def __exit__(self, *exc) -> None:
        self.model.resample_dtype = self.saved


def _twin(model: nn.Module, name: str) -> nn.Module | None:
    """The class-branch copy of a trunk module when the branches do not share it."""
    if not name.startswith(TRUNK_PREFIX):
        return None
    try:
        twin = model.get_submodule(CLASS_TRUNK_PREFIX + name[len(TRUNK_PREFIX):])
    except AttributeError:
        return None
    return None if twin is model.get_submodule(name) else twin


def _forward(model: OS2DModel, sample: CalibrationSample, device: torch.device) -> OS2DOutput:
    class_feats = model.class_features([c.to(device) for c in sample.class_images])
    feats = model.target_features(sample.image.to(device).unsqueeze(0))
    return model.head(feats, class_feats, with_detached=True)


# -- Taylor -----------------------------------------------------------------------------------------

def taylor_importance(model: OS2DModel, calib: CalibrationSet, units: Sequence[Unit], *,
                      config: GradientConfig = GradientConfig(), progress: Progress = no_progress,
                      cancel: CancelToken | None = None) -> GradientScores:
    """|first-order loss change| of removing each channel, mean over images; one backward per image."""
    device = model_device(model)
    gates = [torch.ones(u.channels, device=device, requires_grad=True) for u in units]
    handles = []
    for unit, gate in zip(units, gates):
        for norm in unit.norms:
            for module in (model.get_submodule(norm), _twin(model, norm)):
                if module is not None:
                    handles.append(module.register_forward_hook(
                        lambda m, i, o, g=gate: o * g.view(1, -1, 1, 1).to(o.dtype)))
    totals = [torch.zeros(u.channels, dtype=torch.float64, device=device) for u in units]
    meter = Meter(device)
    try:
        with meter, eval_mode(model), _Resampling(model, config.float32_resampling), torch.enable_grad():
            for k, sample in enumerate(calib):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                progress(k, len(calib), f"taylor, image {k + 1} of {len(calib)}")
                loss = sample_loss(model, _forward(model, sample, device), sample, config.loss)
                grads = torch.autograd.grad(loss, gates, allow_unused=True)
                for t, g in zip(totals, grads):
                    if g is not None:
                        t += g.detach().double().abs()
    finally:
        for h in handles:
            h.remove()
    progress(len(calib), len(calib), "taylor done")
    scores = {u.name: (t / len(calib)).cpu().numpy() for u, t in zip(units, totals)}
    return GradientScores("taylor", scores, len(calib), meter.result, str(device))


# -- LCP --------------------------------------------------------------------------------------------

class _Reconstruction:
    """Forward hook on a consumer conv: LCP's reconstruction terms at the greedy start (target image only)."""

    def __init__(self, conv: nn.Conv2d, state: dict) -> None:
        self.conv, self.state = conv, state
        self.loss: torch.Tensor | None = None

    def __call__(self, module: nn.Conv2d, inputs, output: torch.Tensor) -> None:
        if self.state.get("phase") != "target":
            return
        x = inputs[0].detach()
        ref = output.detach()
        if module.bias is not None:
            ref = ref - module.bias.detach().view(1, -1, 1, 1)
        w = module.weight
        # value 0 (no channel selected yet), gradient 1 with respect to every weight
        empty = F.conv2d(x, w - w.detach(), None, module.stride, module.padding, module.dilation, module.groups)
        h, wd = ref.shape[-2:]
        stride = nominal_stride(self.state["input_hw"], (h, wd))
        inside = 1.0 - outside_mask(self.state["rois"], 1, (h, wd), stride)  # [1, h, w]
        cells = float(inside.sum()) * ref.shape[1]
        if cells > 0:
            self.loss = ((empty - ref).square() * inside.unsqueeze(1)).sum() / cells


def lcp_importance(model: OS2DModel, calib: CalibrationSet, units: Sequence[Unit], *,
                   config: GradientConfig = GradientConfig(), progress: Progress = no_progress,
                   cancel: CancelToken | None = None) -> GradientScores:
    """Layer-wise LCP scores: mean over images of ||dL_k/dW_cons[:, c]||^2; one backward per unit."""
    device = model_device(model)
    state: dict = {}
    rec: dict[str, _Reconstruction] = {}
    handles = []
    for unit in units:
        for name in unit.consumers:
            if name not in rec:
                conv = model.get_submodule(name)
                rec[name] = _Reconstruction(conv, state)
                handles.append(conv.register_forward_hook(rec[name]))
    stats_cfg = StatsConfig(context_scale=config.context_scale)
    totals = [torch.zeros(u.channels, dtype=torch.float64, device=device) for u in units]
    total_steps = len(calib) * len(units)
    frozen = [r.conv.weight for r in rec.values() if not r.conv.weight.requires_grad]
    for w in frozen:  # a frozen model still has gradients to rank by
        w.requires_grad_(True)
    meter = Meter(device)
    try:
        with meter, eval_mode(model), _Resampling(model, config.float32_resampling), torch.enable_grad():
            for k, sample in enumerate(calib):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                state["phase"] = "class"
                class_feats = model.class_features([c.to(device) for c in sample.class_images])
                state["phase"] = "target"
                state["input_hw"] = sample.image_hw
                state["rois"] = sample_rois(sample, stats_cfg, device)[0]
                feats = model.target_features(sample.image.to(device).unsqueeze(0))
                out = model.head(feats, class_feats, with_detached=True)
                state["phase"] = None
                det = sample_loss(model, out, sample, config.loss)
                for ui, unit in enumerate(units):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    progress(k * len(units) + ui, total_steps,
                             f"lcp, image {k + 1} of {len(calib)}, unit {ui + 1} of {len(units)} ({unit.name})")
                    parts = [rec[n].loss for n in unit.consumers if rec[n].loss is not None]
                    loss = det
                    if parts and config.reconstruction_weight > 0:
                        loss = loss + config.reconstruction_weight * sum(parts)
                    weights = [rec[n].conv.weight for n in unit.consumers]
                    grads = torch.autograd.grad(loss, weights, retain_graph=ui + 1 < len(units), allow_unused=True)
                    for g in grads:
                        if g is not None:
                            totals[ui] += g.detach().double().square().sum(dim=[d for d in range(g.dim()) if d != 1])
                for r in rec.values():
                    r.loss = None
                del out, det, feats, class_feats
    finally:
        for h in handles:
            h.remove()
        for w in frozen:
            w.requires_grad_(False)
        state.clear()
    progress(total_steps, total_steps, "lcp done")
    scores = {u.name: (t / len(calib)).cpu().numpy() for u, t in zip(units, totals)}
    return GradientScores("lcp", scores, len(calib), meter.result, str(device))


GRADIENT_METHODS: Mapping[str, Callable[..., GradientScores]] = MappingProxyType(
    {"lcp": lcp_importance, "taylor": taylor_importance})
