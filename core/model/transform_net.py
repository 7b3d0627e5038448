"""The transformation net of OS2D (weakalign's FeatureRegression made fully convolutional).

It reads the 15x15 correlations at every target location and regresses an affine transform
(6 parameters, v2) or a scale+translation (4 parameters, v1's simplified affine).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def l2_normalize_channels(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Divide by the channel-wise L2 norm plus eps (OS2D adds eps to the norm, not under the root)."""
    return x / (x.norm(dim=1, keepdim=True) + eps)


class TransformationNet(nn.Module):
    """conv k0 → BN → ReLU → conv k1 → BN → ReLU → `linear` (a conv) to the transform parameters."""

    def __init__(
        self,
        output_dim: int = 6,
        input_dim: int = 15 * 15,
        channels: tuple[int, ...] = (128, 64),
        kernel_sizes: tuple[int, ...] = (7, 5),
    ) -> None:
        super().__init__()
        if output_dim not in (4, 6):
            raise ValueError(f"transform output must have 4 or 6 parameters, got {output_dim}")
        layers: list[nn.Module] = []
        ch_in = input_dim
        for ch_out, k in zip(channels, kernel_sizes):
            layers += [nn.Conv2d(ch_in, ch_out, k, padding=k // 2), nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True)]
            ch_in = ch_out
        self.conv = nn.Sequential(*layers)
        k = kernel_sizes[-1]
        self.linear = nn.Conv2d(ch_in, output_dim, (k, k), padding=k // 2)
        self.output_dim = output_dim
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        """Zero weights and an identity-transform bias: training starts from "the box is the anchor"."""
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()
            if self.output_dim == 6:
                self.linear.bias[0] = 1
                self.linear.bias[4] = 1
            else:
                self.linear.bias[0] = 1
                self.linear.bias[2] = 1

    def forward(self, corr_maps: torch.Tensor) -> torch.Tensor:
        return self.linear(self.conv(l2_normalize_channels(F.relu(corr_maps))))
