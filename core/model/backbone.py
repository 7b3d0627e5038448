"""ResNet trunks cut after `layer3` ("C4", stride 16), as OS2D uses them.

The module keeps torchvision's attribute names (conv1, bn1, layer1..layer3) so that official OS2D
checkpoints and torchvision ImageNet state dicts load without renaming.
"""

from __future__ import annotations

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
