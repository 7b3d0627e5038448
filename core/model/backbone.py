"""ResNet trunks cut after `layer3` ("C4", stride 16), as OS2D uses them.

The module keeps torchvision's attribute names (conv1, bn1, layer1..layer3) so that official OS2D
checkpoints and torchvision ImageNet state dicts load without renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101")

# OS2D's box grid assumes a stride-16 feature map whose cells "see" 16x16 pixels.
FEATURE_MAP_STRIDE = 16
FEATURE_MAP_RECEPTIVE_FIELD = 16


class ResNetTrunk(nn.Module):
    """conv1 → bn1 → relu → maxpool → layer1 → layer2 → layer3 of a torchvision ResNet."""

    def __init__(self, arch: str = "resnet50") -> None:
        super().__init__()
        arch = arch.lower()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown backbone '{arch}', expected one of {', '.join(ARCHITECTURES)}")
        full = getattr(tv_resnet, arch)(weights=None)
        self.arch = arch
        self.conv1, self.bn1, self.relu, self.maxpool = full.conv1, full.bn1, full.relu, full.maxpool
        self.layer1, self.layer2, self.layer3 = full.layer1, full.layer2, full.layer3
        self.feature_map_stride = FEATURE_MAP_STRIDE
        self.feature_map_receptive_field = FEATURE_MAP_RECEPTIVE_FIELD

    @property
    def out_channels(self) -> int:
        last = self.layer3[-1]
        return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    def freeze_bn(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def conv_output_hw(hw: tuple[int, int], m: nn.Module) -> tuple[int, int]:
    """Output size of a conv or pool layer at an input size, by formula."""
    def one(n: int, k: int, s: int, p: int, d: int) -> int:
        return (n + 2 * p - d * (k - 1) - 1) // s + 1

    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    k, s, p, d = pair(m.kernel_size), pair(m.stride), pair(m.padding), pair(m.dilation)
    if isinstance(p[0], str):  # padding="same"
        return hw if s == (1, 1) else (math.ceil(hw[0] / s[0]), math.ceil(hw[1] / s[1]))
    return one(hw[0], k[0], s[0], p[0], d[0]), one(hw[1], k[1], s[1], p[1], d[1])


def trunk_conv_positions(trunk: nn.Module, hw: tuple[int, int]) -> tuple[dict[str, int], tuple[int, int]]:
    """Output positions (H·W) of every trunk conv at an input size, and the output size: the ResNet
    topology walked by formula, so costs are predicted without a forward pass."""
    pos: dict[str, int] = {}
    x = conv_output_hw(hw, trunk.conv1)
    pos["conv1"] = x[0] * x[1]
    x = conv_output_hw(x, trunk.maxpool)
    for li in (1, 2, 3):
        for bi, block in enumerate(getattr(trunk, f"layer{li}")):
            inp, y = x, x
            for c in ("conv1", "conv2", "conv3"):
                if hasattr(block, c):
                    y = conv_output_hw(y, getattr(block, c))
                    pos[f"layer{li}.{bi}.{c}"] = y[0] * y[1]
            if block.downsample is not None:
                d = conv_output_hw(inp, block.downsample[0])
                pos[f"layer{li}.{bi}.downsample.0"] = d[0] * d[1]
            x = y
    return pos, x
