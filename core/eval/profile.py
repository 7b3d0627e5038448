"""Model profile: parameters, MACs, fp32 size and detection latency, and side-by-side comparisons.

MACs come from the same analytic cost model that predicts a plan (`PlanCostModel`), so a plan's
prediction and the pruned model's profile are the same count by construction; `count_macs_by_hooks`
is the independent check (forward hooks on every conv plus the correlation matmul) used in tests.
Latency is a full detection forward on a target image with the class features precomputed
(what the video and evaluation loops run per frame): target trunk + correlation + transform +
resampling for `num_classes` classes, timed on the folded channels-last copy `Detector` runs
(`core.model.inference`), so a profile's latency is what detection costs in this tool.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from core.model.inference import inference_model
from core.model.os2d import GRID, OS2DModel
from core.prune.plan import PlanCostModel


@dataclass(frozen=True)
class Profile:
    name: str
    parameters: int
    size_mb: float  # fp32 parameters, 10^6 bytes
    macs: int  # target trunk + class branch + head at the reference input
    macs_target: int
    macs_class: int
    macs_head: int
    feature_dim: int
    input_size: tuple[int, int]
    num_classes: int
    class_image_size: int
    cpu_latency_ms: float | None = None  # median over repeats
    cpu_latency_min_ms: float | None = None
    cpu_latency_max_ms: float | None = None
    cpu_threads: int = 0
    cuda_latency_ms: float | None = None
    cuda_device: str = ""
    repeats: int = 0

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Profile":
        d = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        d["input_size"] = tuple(d["input_size"])
        return cls(**d)


def _time_forward(model: OS2DModel, device: torch.device, input_size: tuple[int, int], num_classes: int,
                  class_image_size: int, repeats: int, warmup: int, optimize: bool) -> list[float]:
    if optimize:
        model = inference_model(model, device)
    elif next(model.parameters()).device != device:
        model = copy.deepcopy(model).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, *input_size, generator=g).to(device)
    if optimize:
        x = x.contiguous(memory_format=torch.channels_last)
    classes = [torch.randn(3, class_image_size, class_image_size, generator=g).to(device) for _ in range(num_classes)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        feats = model.class_features(classes)
        for i in range(warmup + repeats):
            sync()
            t = time.perf_counter()
            model(x, class_feats=feats)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1e3)
    return times


def profile_model(model: OS2DModel, *, name: str = "", input_size: tuple[int, int] = (512, 512), num_classes: int = 1,
                  class_image_size: int | None = None, repeats: int = 10, warmup: int = 2,
                  device: str = "auto", optimize: bool = True) -> Profile:
    """Counts, and latency when repeats > 0. device: "auto" = CPU, plus CUDA when present; "cpu"; "cuda".
    optimize=False times the model as it is instead of the inference copy.

    The model is not modified (timing runs on a copy or in eval mode, which is then restored)."""
    cis = int(class_image_size or model.config.class_image_size)
    pred = PlanCostModel.from_model(model, input_size=tuple(input_size), num_classes=num_classes,
                                    class_image_size=cis).base
    cpu = cpu_min = cpu_max = cuda = None
    cuda_name = ""
    if repeats > 0:
        want_cpu = device in ("auto", "cpu")
        want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA latency requested but no CUDA device is available")
        was_training = model.training
        model.eval()
        try:
            if want_cpu:
                t = _time_forward(model, torch.device("cpu"), tuple(input_size), num_classes, cis, repeats, warmup,
                                  optimize)
                cpu, cpu_min, cpu_max = statistics.median(t), min(t), max(t)
            if want_cuda:
                dev = torch.device("cuda")
                cuda = statistics.median(_time_forward(model, dev, tuple(input_size), num_classes, cis, repeats,
                                                       warmup, optimize))
                cuda_name = torch.cuda.get_device_name(dev)
        finally:
            model.train(was_training)
    return Profile(
        name=name, parameters=pred.parameters, size_mb=pred.size_mb, macs=pred.macs, macs_target=pred.macs_target,
        macs_class=pred.macs_class, macs_head=pred.macs_head, feature_dim=pred.feature_dim,
        input_size=tuple(input_size), num_classes=num_classes, class_image_size=cis,
        cpu_latency_ms=cpu, cpu_latency_min_ms=cpu_min, cpu_latency_max_ms=cpu_max,
        cpu_threads=torch.get_num_threads(), cuda_latency_ms=cuda, cuda_device=cuda_name, repeats=repeats,
    )


def count_macs_by_hooks(model: OS2DModel, *, input_size: tuple[int, int] = (512, 512), num_classes: int = 1,
                        class_image_size: int | None = None) -> dict[str, int]:
    """MACs measured by running the model: hooks on Conv2d/Linear plus the correlation matmul.

    Slow (a real forward pass); the independent check of the analytic counts."""
    cis = int(class_image_size or model.config.class_image_size)
    total = {"conv": 0}

    def hook(m: nn.Module, inp: Sequence[torch.Tensor], out: torch.Tensor) -> None:
        if isinstance(m, nn.Conv2d):
            total["conv"] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total["conv"] += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, *input_size, generator=g)
        classes = [torch.randn(3, cis, cis, generator=g) for _ in range(num_classes)]
        with torch.inference_mode():
            feats = model.class_features(classes)
            class_convs = total["conv"]
            fm = model.target_features(x)
            target_convs = total["conv"] - class_convs
            model.head(fm, feats)
            head_convs = total["conv"] - class_convs - target_convs
    finally:
        for h in handles:
            h.remove()
    d, h, w = fm.shape[1:]
    corr = num_classes * GRID * GRID * d * h * w
    return {"macs": class_convs + target_convs + head_convs + corr, "macs_target": target_convs,
            "macs_class": class_convs, "macs_head": head_convs + corr}


@dataclass(frozen=True)
class ProfileComparison:
    a: Profile
    b: Profile

    @property
    def cpu_speedup(self) -> float | None:
        if self.a.cpu_latency_ms and self.b.cpu_latency_ms:
            return self.a.cpu_latency_ms / self.b.cpu_latency_ms
        return None

    @property
    def cuda_speedup(self) -> float | None:
        if self.a.cuda_latency_ms and self.b.cuda_latency_ms:
            return self.a.cuda_latency_ms / self.b.cuda_latency_ms
        return None

    def rows(self) -> list[tuple[str, Any, Any, str]]:
        """(metric, a, b, b relative to a) rows for a table."""
        def rel(x, y, speed=False):
            if x is None or y is None or not x or not y:
                return ""
            return f"{x / y:.2f}x faster" if speed else f"{y / x:.1%}"
        a, b = self.a, self.b
        return [
            ("parameters", a.parameters, b.parameters, rel(a.parameters, b.parameters)),
            ("size (MB, fp32)", round(a.size_mb, 2), round(b.size_mb, 2), rel(a.size_mb, b.size_mb)),
            ("GMACs", round(a.macs / 1e9, 3), round(b.macs / 1e9, 3), rel(a.macs, b.macs)),
            ("feature channels", a.feature_dim, b.feature_dim, rel(a.feature_dim, b.feature_dim)),
            ("CPU latency (ms)", _r(a.cpu_latency_ms), _r(b.cpu_latency_ms), rel(a.cpu_latency_ms, b.cpu_latency_ms, True)),
            ("CUDA latency (ms)", _r(a.cuda_latency_ms), _r(b.cuda_latency_ms), rel(a.cuda_latency_ms, b.cuda_latency_ms, True)),
        ]

    def to_json(self) -> dict:
        return {"a": self.a.to_json(), "b": self.b.to_json(), "cpu_speedup": self.cpu_speedup,
                "cuda_speedup": self.cuda_speedup}

    def to_markdown(self) -> str:
        head = f"| metric | {self.a.name or 'a'} | {self.b.name or 'b'} | b vs a |\n|---|---:|---:|---:|\n"
        return head + "\n".join(f"| {m} | {x if x is not None else '–'} | {y if y is not None else '–'} | {r} |"
                                for m, x, y, r in self.rows()) + "\n"


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def compare_profiles(a: Profile, b: Profile) -> ProfileComparison:
    """Side by side, b relative to a (speedup = a's latency / b's)."""
    return ProfileComparison(a, b)
