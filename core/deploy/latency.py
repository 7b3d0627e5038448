"""Latency of an exported backend, timed the way `core.eval.profile` times torch: one target forward
with the class features precomputed, on a seeded random input, median over repeats after warm-up."""

from __future__ import annotations

import time

import torch

from core.deploy.runtime import open_runtime
from core.model.os2d import OS2DModel


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
