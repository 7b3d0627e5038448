"""Human-readable model facts for `os2d-studio info` and the GUI's model panel."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from core.model.os2d import OS2DModel


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel: str
    params: int


@dataclass(frozen=True)
class ModelSummary:
    description: str
    backbone: str
    feature_dim: int
    parameters: int
    trunk_parameters: int
    head_parameters: int
    fp32_mb: float  # unique parameters × 4 bytes, in 10^6 bytes
    fp32_mib: float
    layers: tuple[LayerRow, ...]

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("description", "backbone", "feature_dim", "parameters", "trunk_parameters",
                                            "head_parameters", "fp32_mb", "fp32_mib")}
        d["layers"] = [vars(r) for r in self.layers]
        return d


def summarize(model: OS2DModel) -> ModelSummary:
    rows = []
    seen = set()
    for name, m in model.named_modules():
        if id(m) in seen:
            continue
        seen.add(id(m))
        if isinstance(m, nn.Conv2d):
            k = "x".join(map(str, m.kernel_size))
            rows.append(LayerRow(name, "conv", m.in_channels, m.out_channels, k, sum(p.numel() for p in m.parameters())))
        elif isinstance(m, nn.BatchNorm2d):
            rows.append(LayerRow(name, "bn", m.num_features, m.num_features, "", sum(p.numel() for p in m.parameters())))
    n = model.num_parameters()
    trunk = sum(p.numel() for p in model.net_feature_maps.parameters())
    if not model.config.merge_branch_parameters:
        trunk += sum(p.numel() for p in model.net_label_features.parameters())
    return ModelSummary(
        description=model.config.describe(), backbone=model.config.backbone, feature_dim=model.feature_dim,
        parameters=n, trunk_parameters=trunk, head_parameters=n - trunk,
        fp32_mb=n * 4 / 1e6, fp32_mib=n * 4 / 2**20, layers=tuple(rows),
    )
