"""Streaming, localization-aware channel statistics from forward hooks: one forward pass per image.

Why: a criterion that needs no gradient costs one inference per calibration image and no more
memory than inference, so it runs on the machine that runs the detector. The statistics are running
sums (never activation maps), collected under `torch.inference_mode()`.

What is observed: the output of every batch norm listed in a unit's `norms`, i.e. each producer
conv's output after BN and before ReLU (the residual add comes after it). In one pass per image the
class images go through the trunk (region `class`), then the target image through the trunk and the
head, with the class images of the image's classes, so the transformation-net units see real
correlation maps.

Regions of the target-image maps (localization awareness, after LCP, Xie et al. 2020):
- `fg`: per object, the *context box* -- LCP's contextual RoI is the box enclosing the ground truth and
  its high-IoU default boxes; OS2D has a single default box size (240 px), which for most objects
  matches no box at IoU >= 0.5, so we use the ground truth enlarged `context_scale` (1.5) times about
  its centre, clipped to the image. Each context box is RoI-aligned (`torchvision.ops.roi_align`,
  `roi_size`² bins, spatial_scale = 1/stride of that map) and the statistics are over the pooled bin
  values: every object counts equally, whatever its size, as in a detector's RoI head.
- `bg`: every map position whose cell centre lies outside all context boxes (a box mask).
- `whole`: every position of the map.
- `class`: every position of the class-image maps (the trunk is shared by both branches).
For head units the maps are per class image (the correlation of the target with that class); the
foreground of class c's map is the context boxes of class c, everything else is its background.
Difficult boxes count as objects: they are not background, whatever the mAP does with them.

A map's stride is the power of two nearest to (input size / map size): ResNet maps are
ceil(H / 2^k), so H / h is not exactly the nominal stride for odd sizes.

Stage units (residual-coupled block outputs) have several producers whose BN outputs live on
different maps (e.g. the stem at stride 2 and layer1 at stride 4 for ResNet-18). We keep their
statistics per producer (arrays [P, C]) and criteria average producers *with equal weight*: the
unit's channel feeds every one of those residual sums, and pooling positions instead would let
the stride-2 stem outweigh the stride-4 blocks four to one.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.ops import roi_align

from core.importance.calibration import CalibrationSample, CalibrationSet
from core.jobs import CancelToken, Progress, no_progress
from core.model.os2d import OS2DModel
from core.prune.units import Unit

REGIONS = ("fg", "bg", "whole", "class")
# per channel; the position count is per producer. `sum_relu` is of max(a, 0) taken per pixel (for
# `fg` before pooling), so a channel is "off inside objects" only if it is off at every sampled pixel.
STATS = ("sum_abs", "sum", "sum_sq", "count_pos", "sum_relu")
TRUNK_PREFIX = "net_feature_maps."
CLASS_TRUNK_PREFIX = "net_label_features.net_class_features."


@dataclass(frozen=True)
class StatsConfig:
    context_scale: float = 1.5  # context box = ground truth enlarged this much about its centre
    roi_size: int = 7  # RoI-aligned bins per side
    sampling_ratio: int = 2  # bilinear samples per bin side (fixed: deterministic and cheap)

    def __post_init__(self) -> None:
        if not self.context_scale >= 1.0:
            raise ValueError(f"context_scale must be >= 1, got {self.context_scale}")
        if self.roi_size < 1 or self.sampling_ratio < 1:
            raise ValueError("roi_size and sampling_ratio must be positive")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "StatsConfig":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# -- measuring a job ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    """Wall time and peak memory of one job. On CUDA the peak is torch's max allocated memory on the
    device; on CPU the process's peak RSS during the job (the kernel's high-water mark is reset at
    the start when /proc allows, otherwise it is the peak since the process started)."""

    seconds: float
    peak_bytes: int
    start_bytes: int
    memory: str  # "cuda-max-allocated", "cpu-peak-rss", "cpu-peak-rss-since-start" or "unknown"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Measurement":
        return cls(float(data["seconds"]), int(data["peak_bytes"]), int(data["start_bytes"]), str(data["memory"]))


def _proc_status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


class Meter:
    """`with Meter(device) as m: ...` then `m.result`: a `Measurement` of the block."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.result: Measurement | None = None

    def __enter__(self) -> "Meter":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = int(torch.cuda.memory_allocated(self.device))
            self._kind = "cuda-max-allocated"
        else:
            reset = _reset_peak_rss()
            rss = _proc_status_bytes("VmRSS")
            self._start = rss or 0
            self._kind = ("cpu-peak-rss" if reset else "cpu-peak-rss-since-start") if rss is not None else "unknown"
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = int(torch.cuda.max_memory_allocated(self.device))
        else:
            peak = _proc_status_bytes("VmHWM") or 0
        self.result = Measurement(time.perf_counter() - self._t0, peak, self._start, self._kind)


# -- geometry ---------------------------------------------------------------------------------------

def context_boxes(boxes: torch.Tensor, image_hw: tuple[int, int], scale: float) -> torch.Tensor:
    """Ground-truth boxes [N, 4] (pixels) enlarged `scale` times about their centres, clipped."""
    b = boxes.float()
    c = (b[:, :2] + b[:, 2:]) / 2
    half = (b[:, 2:] - b[:, :2]) * (scale / 2)
    out = torch.cat([c - half, c + half], dim=1)
    h, w = image_hw
    lim = torch.tensor([w, h, w, h], dtype=out.dtype, device=out.device)
    return torch.minimum(out.clamp(min=0), lim)


def nominal_stride(input_hw: tuple[int, int], map_hw: tuple[int, int]) -> int:
    """The power of two nearest to input size / map size (ResNet maps are ceil(H / 2^k))."""
    ratio = math.sqrt((input_hw[0] / map_hw[0]) * (input_hw[1] / map_hw[1]))
    return 2 ** max(int(round(math.log2(ratio))), 0)


def outside_mask(rois: torch.Tensor, num_slices: int, map_hw: tuple[int, int], stride: int) -> torch.Tensor:
    """[S, h, w] float: 1 where a cell centre lies outside every box of its slice (rois [K, 5])."""
    h, w = map_hw
    dev = rois.device
    ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) * stride
    x1, y1, x2, y2 = (rois[:, i].view(-1, 1) for i in range(1, 5))
    in_x = ((xs.view(1, -1) >= x1) & (xs.view(1, -1) <= x2)).float()  # [K, w]
    in_y = ((ys.view(1, -1) >= y1) & (ys.view(1, -1) <= y2)).float()  # [K, h]
    # boxes covering a cell of slice s: sum_k [slice k = s] in_y[k, y] in_x[k, x], one small product per slice
    of_slice = torch.nn.functional.one_hot(rois[:, 0].long(), num_slices).t().to(in_y)  # [S, K]
    covered = torch.bmm((of_slice.unsqueeze(2) * in_y.unsqueeze(0)).transpose(1, 2),
                        in_x.unsqueeze(0).expand(num_slices, -1, -1))
    return (covered == 0).float()


def _channel_sum(q: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    if weights is None:
        return q.sum(dim=[d for d in range(q.dim()) if d != 1]).double()
    return torch.einsum("bcn,bn->c", q.flatten(2), weights.flatten(1).to(q.dtype)).double()


def _moment_sums(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """[5, C] float64 sums over all but dim 1 of |x|, x, x², [x > 0], max(x, 0) (STATS' order);
    `weights` [B, *spatial] masks positions. One temporary map at a time."""
    out = []
    for q in (x.abs(), x, x.square(), (x > 0).to(x.dtype), x.clamp(min=0)):
        out.append(_channel_sum(q, weights))
        del q
    return torch.stack(out)


def _masked_moment_sums(x: torch.Tensor, masks: torch.Tensor, relu: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """[K, 5, C] float64: `_moment_sums` of x [B, C, h, w] under each of K position masks [B, h, w, K] at
    once, given relu = max(x, 0). Why: the hooks, not the forward, dominated the statistics pass. The
    whole map and its background are two columns of one matrix product per statistic, and
    |x| = 2·max(x, 0) − x, so a full-size map is read four times instead of ten. `chunk` channels at a
    time: the squares and signs are temporaries as large as what they are taken of, and on the largest
    maps of a ResNet-50 at 1280 full-size ones lifted the pass's peak memory well above inference's."""
    m = masks.flatten(1, 2).to(x.dtype)  # [B, N, K]

    def reduce(q: torch.Tensor) -> torch.Tensor:
        return torch.bmm(q, m).sum(0).t().double()  # [K, C]

    parts = []
    for c0 in range(0, x.shape[1], chunk):
        flat, pos = x[:, c0:c0 + chunk].flatten(2), relu[:, c0:c0 + chunk].flatten(2)
        total, total_relu = reduce(flat), reduce(pos)
        squares = reduce(flat.square())
        positive = reduce((flat > 0).to(x.dtype))
        parts.append(torch.stack([2 * total_relu - total, total, squares, positive, total_relu], 1))
    return torch.cat(parts, 2)


# -- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ChannelStatistics:
    """Running sums of one unit: `sums[f"{region}.{stat}"]` is [P, C] float64 (P producers, in the
    unit's order), `counts[region]` is [P] (positions, or RoI bins for `fg`, per channel)."""

    unit: str
    producers: tuple[str, ...]
    sums: Mapping[str, np.ndarray]
    counts: Mapping[str, np.ndarray]

    @property
    def channels(self) -> int:
        return int(next(iter(self.sums.values())).shape[1])

    def _per_producer(self, region: str, stat: str) -> np.ndarray:
        n = self.counts[region][:, None]
        return np.divide(self.sums[f"{region}.{stat}"], n, out=np.zeros_like(self.sums[f"{region}.{stat}"]),
                         where=n > 0)

    def _average(self, region: str, per_producer: np.ndarray) -> np.ndarray:
        """Equal-weight mean over the producers that saw this region (zeros if none did)."""
        seen = self.counts[region] > 0
        if not seen.any():
            return np.zeros(per_producer.shape[1])
        return per_producer[seen].mean(axis=0)

    def mean(self, region: str) -> np.ndarray:
        return self._average(region, self._per_producer(region, "sum"))

    def mean_abs(self, region: str) -> np.ndarray:
        return self._average(region, self._per_producer(region, "sum_abs"))

    def mean_relu(self, region: str) -> np.ndarray:
        """E[max(a, 0)]: what the next layer reads after the ReLU (for `fg`, RoI-aligned after the ReLU)."""
        return self._average(region, self._per_producer(region, "sum_relu"))

    def variance(self, region: str) -> np.ndarray:
        m = self._per_producer(region, "sum")
        var = np.maximum(self._per_producer(region, "sum_sq") - m * m, 0.0)
        return self._average(region, var)

    def fraction_positive(self, region: str) -> np.ndarray:
        return self._average(region, self._per_producer(region, "count_pos"))

    def producer_moments(self, region: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per producer [P, C]: mean, variance, and a [P] mask of producers that saw the region."""
        m = self._per_producer(region, "sum")
        var = np.maximum(self._per_producer(region, "sum_sq") - m * m, 0.0)
        return m, var, self.counts[region] > 0


@dataclass(frozen=True, eq=False)
class UnitStatistics:
    """Statistics of every observed unit (unit name → `ChannelStatistics`) and the cost of the pass."""

    units: Mapping[str, ChannelStatistics]
    config: StatsConfig
    num_images: int
    measurement: Measurement
    device: str

    def __getitem__(self, name: str) -> ChannelStatistics:
        return self.units[name]

    def __contains__(self, name: object) -> bool:
        return name in self.units

    def __iter__(self) -> Iterator[str]:
        return iter(self.units)

    def __len__(self) -> int:
        return len(self.units)


# -- the pass ---------------------------------------------------------------------------------------

class _PassState:
    """What the hooks need to know about the forward in flight (one object per pass, not global)."""

    def __init__(self) -> None:
        self.phase: str | None = None  # "class" or "target"
        self.input_hw: tuple[int, int] = (0, 0)
        self.rois_trunk: torch.Tensor | None = None  # [K, 5] batch index 0
        self.rois_head: torch.Tensor | None = None  # [K, 5] batch index = class image of the box
        self.num_classes: int = 0


class _Accumulator:
    def __init__(self, channels: int, device: torch.device) -> None:
        self.sums = torch.zeros(len(REGIONS), len(STATS), channels, dtype=torch.float64, device=device)
        self.counts = torch.zeros(len(REGIONS), dtype=torch.float64, device=device)

    def add(self, region: str, sums: torch.Tensor, count: float) -> None:
        r = REGIONS.index(region)
        self.sums[r] += sums
        self.counts[r] += count


def _observe(acc: _Accumulator, a: torch.Tensor, state: _PassState, is_head: bool, cfg: StatsConfig,
             forced_phase: str | None = None) -> None:
    phase = forced_phase or state.phase
    if phase is None:
        return
    a = a.detach().float()
    b, _, h, w = a.shape
    if phase == "class":
        acc.add("class", _moment_sums(a), float(b * h * w))
        return
    rois = state.rois_head if is_head else state.rois_trunk
    if rois is None or rois.shape[0] == 0:
        whole = _moment_sums(a)
        acc.add("whole", whole, float(b * h * w))
        acc.add("bg", whole, float(b * h * w))
        return
    stride = nominal_stride(state.input_hw, (h, w))
    rois = rois.to(a.dtype)
    relu = a.clamp(min=0)
    kw = dict(output_size=cfg.roi_size, spatial_scale=1.0 / stride, sampling_ratio=cfg.sampling_ratio, aligned=True)
    pooled = roi_align(a, rois, **kw)
    fg = _moment_sums(pooled)
    fg[STATS.index("sum_relu")] = _channel_sum(roi_align(relu, rois, **kw))
    acc.add("fg", fg, float(pooled.shape[0] * cfg.roi_size * cfg.roi_size))
    outside = outside_mask(rois, b, (h, w), stride)
    whole, bg = _masked_moment_sums(a, torch.stack([torch.ones_like(outside), outside], -1), relu)
    acc.add("whole", whole, float(b * h * w))
    acc.add("bg", bg, float(outside.sum()))


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode for the block, then every module's own training flag back."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, t in flags:
            m.training = t


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def sample_rois(sample: CalibrationSample, cfg: StatsConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Context boxes of a sample as roi_align rows: (trunk rows with batch 0, head rows with the class index)."""
    ctx = context_boxes(sample.boxes, sample.image_hw, cfg.context_scale).to(device)
    labels = sample.labels.to(device=device, dtype=ctx.dtype).view(-1, 1)
    return torch.cat([torch.zeros_like(labels), ctx], 1), torch.cat([labels, ctx], 1)


def collect_statistics(model: OS2DModel, calib: CalibrationSet, units: Sequence[Unit], *,
                       config: StatsConfig = StatsConfig(), progress: Progress = no_progress,
                       cancel: CancelToken | None = None) -> UnitStatistics:
    """One forward pass per calibration image with hooks on every unit's batch norms."""
    device = model_device(model)
    state = _PassState()
    accs: dict[tuple[int, int], _Accumulator] = {}
    handles = []
    for ui, unit in enumerate(units):
        is_head = unit.kind == "head"
        for pi, norm in enumerate(unit.norms):
            module = model.get_submodule(norm)
            acc = accs[(ui, pi)] = _Accumulator(unit.channels, device)
            handles.append(module.register_forward_hook(
                lambda m, i, o, acc=acc, is_head=is_head: _observe(acc, o, state, is_head, config)))
            if norm.startswith(TRUNK_PREFIX):  # separate class-branch trunk: observe its twin as `class`
                twin_name = CLASS_TRUNK_PREFIX + norm[len(TRUNK_PREFIX):]
                twin = model.get_submodule(twin_name) if _has_submodule(model, twin_name) else module
                if twin is not module:
                    handles.append(twin.register_forward_hook(
                        lambda m, i, o, acc=acc: _observe(acc, o, state, False, config, forced_phase="class")))
    meter = Meter(device)
    try:
        with meter, eval_mode(model), torch.inference_mode():
            for k, sample in enumerate(calib):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                progress(k, len(calib), f"statistics, image {k + 1} of {len(calib)}")  # a count, not the id
                state.phase = "class"
                class_feats = model.class_features([c.to(device) for c in sample.class_images])
                state.phase = "target"
                state.input_hw = sample.image_hw
                state.rois_trunk, state.rois_head = sample_rois(sample, config, device)
                feats = model.target_features(sample.image.to(device).unsqueeze(0))
                model.head(feats, class_feats)
                state.phase = None
    finally:
        for h in handles:
            h.remove()
    progress(len(calib), len(calib), f"statistics of {len(calib)} images done")
    out: dict[str, ChannelStatistics] = {}
    for ui, unit in enumerate(units):
        parts = [accs[(ui, pi)] for pi in range(len(unit.norms))]
        sums = {}
        for r, region in enumerate(REGIONS):
            for s, stat in enumerate(STATS):
                sums[f"{region}.{stat}"] = np.stack([p.sums[r, s].cpu().numpy() for p in parts])
        counts = {region: np.array([float(p.counts[r]) for p in parts]) for r, region in enumerate(REGIONS)}
        out[unit.name] = ChannelStatistics(unit.name, unit.producers, sums, counts)
    return UnitStatistics(out, config, len(calib), meter.result, str(device))


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False
