"""Latency of a model on each deployment runtime, timed the way `core.eval.profile` times torch: one
target forward with the class features precomputed, on a seeded random input, median over repeats after
warm-up. Why a table over runtimes: pruning's speed-up is only worth what it gives in the runtime a model
is deployed with, and int8 multiplies it."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from core.deploy.runtime import availability, open_runtime
from core.jobs import CancelToken, Progress, no_progress
from core.model.os2d import OS2DModel

# what `time_runtimes` measures by default: every runtime a side of the app can pick
RUNTIMES = (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"),
            ("openvino", "int8"))


@dataclass(frozen=True)
class RuntimeLatency:
    backend: str
    precision: str
    ms: float | None  # median ms per target forward; None when not measured
    skipped: str = ""  # why not measured (the runtime is missing here, no int8 model yet)

    @property
    def runtime(self) -> str:
        return f"{self.backend}:{self.precision}"

    def to_json(self) -> dict:
        return {"backend": self.backend, "precision": self.precision, "ms": self.ms, "skipped": self.skipped}


def time_runtime(model: OS2DModel, backend: str, precision: str = "fp32", *, input_size: tuple[int, int] = (512, 512),
                 num_classes: int = 1, repeats: int = 10, warmup: int = 2, device: str | None = None,
                 deploy_dir=None) -> list[float]:
    """Milliseconds per target forward (without decoding) for each of `repeats` runs."""
    net = open_runtime(model, backend, precision, device=device, deploy_dir=deploy_dir)
    g = torch.Generator().manual_seed(0)
    cis = int(model.config.class_image_size)
    x = torch.randn(1, 3, *input_size, generator=g)
    feats = net.class_features([torch.randn(3, cis, cis, generator=g) for _ in range(num_classes)])
    times = []
    for i in range(warmup + repeats):
        t = time.perf_counter()
        net(x, class_feats=feats)
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1e3)
    return times


def time_runtimes(model: OS2DModel, *, runtimes=RUNTIMES, input_size: tuple[int, int] = (512, 512),
                  num_classes: int = 1, repeats: int = 10, warmup: int = 2, progress: Progress = no_progress,
                  cancel: CancelToken | None = None) -> list[RuntimeLatency]:
    """One `RuntimeLatency` per runtime, on the CPU; a runtime that cannot run here (or int8 without a
    quantized model of `model` in the cache) is listed with the reason instead of a time. The first use
    of an exported runtime exports the model into the cache, which takes a few seconds."""
    from core.eval.profile import profile_model

    cancel = cancel or CancelToken()
    avail = availability(model)
    out = []
    for i, (backend, precision) in enumerate(runtimes):
        cancel.raise_if_cancelled()
        progress(i, len(runtimes), f"timing {backend} {precision}")
        why = avail.get((backend, precision), "")
        if why:
            out.append(RuntimeLatency(backend, precision, None, why))
            continue
        if backend == "torch":
            ms = profile_model(model, input_size=input_size, num_classes=num_classes, repeats=repeats, warmup=warmup,
                               device="cpu").cpu_latency_ms
        else:
            ms = statistics.median(time_runtime(model, backend, precision, input_size=input_size,
                                                num_classes=num_classes, repeats=repeats, warmup=warmup))
        out.append(RuntimeLatency(backend, precision, float(ms)))
    progress(len(runtimes), len(runtimes), "timed")
    return out
