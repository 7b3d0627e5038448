"""Small real files of every kind the tool reads, and ways to damage them, for the integrity tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from core.importance.calibration import CalibrationProvenance
from core.importance.result import ImportanceResult
from core.model.checkpoint import save_model
from core.model.os2d import ModelConfig, OS2DModel


def small_model(seed: int = 0) -> OS2DModel:
    """A ResNet-18 OS2D with non-trivial BN statistics, pruned to a tenth of its channels (file ≈ 0.7 MB)."""
    from core.prune.plan import PruningPlan, resolve
    from core.importance.result import data_free_importance
    from core.prune.surgery import prune_model
    from core.prune.units import find_units

    torch.manual_seed(seed)
    m = OS2DModel(ModelConfig("resnet18"))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    units = find_units(m)
    kept = resolve(PruningPlan(ratio=0.9, min_channels=4), units, data_free_importance(m, units=units))
    return prune_model(m.eval(), kept, units=units).eval()


def save_small_model(path: Path, **meta) -> Path:
    return save_model(small_model(), path, meta=meta or {"eval_scale": 640})


def small_importance() -> ImportanceResult:
    """A result built by hand: two units, two criteria (no model run needed)."""
    rng = np.random.default_rng(0)
    units, channels = ("net_feature_maps.layer1.0.conv1", "net_feature_maps.layer2.0.conv1"), (16, 32)
    scores = {c: {u: rng.random(n) for u, n in zip(units, channels)} for c in ("weight_l1", "activation_l2")}
    orders = {c: {u: np.argsort(-s).astype(np.int64) for u, s in per.items()} for c, per in scores.items()}
    return ImportanceResult(units=units, channels=channels, scores=scores, orders=orders,
                            calibration=CalibrationProvenance("synthetic", "all", (0, 1, 2), 320.0, 0),
                            model={"sha256": "0" * 64, "path": "synthetic"})


def tensor_entries(path: Path) -> list[zipfile.ZipInfo]:
    """A torch zip's tensor storages (entries under data/), largest first."""
    with zipfile.ZipFile(path) as z:
        return sorted((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: -i.file_size)


def entry_data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where an entry's bytes start in the file (after its local header)."""
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
    return info.header_offset + 30 + int(name_len) + int(extra_len)


def rewrite_entry(src: Path, dst: Path, name: str, change) -> None:
    """Copy a zip with one entry's bytes changed by `change(bytes) -> bytes`, every CRC correct."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, change(data) if info.filename == name else data)


def flip_byte(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)
