# Follows torchvision's ResNet layout (github.com/pytorch/vision), Copyright (c) Soumith Chintala 2016,
# BSD 3-Clause licence; its notice is reproduced in LICENSE.
"""ResNet-34 encoder of the head-pose predictor (torchvision's layout, any input channel count and stem width)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or 1x1 conv + BN projection) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet34(nn.Module):
    """ResNet-34 (stages of 3, 4, 6, 3 basic blocks) ending in global average pooling and a linear layer.

    `width` is the stem's channel count (64 in the published model); the stages use 1x, 2x, 4x and 8x of it.
    """

    def __init__(self, out_features: int, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes = width
        for index, (multiplier, blocks) in enumerate(zip((1, 2, 4, 8), (3, 4, 6, 3)), start=1):
            stride = 1 if index == 1 else 2
            layer = [BasicBlock(planes, width * multiplier, stride)]
            planes = width * multiplier
            layer += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNet34Encoder(nn.Module):
    """A ResNet-34 held under the attribute `resnet`, the extra level the checkpoint's key names have."""

    def __init__(self, out_features: int, in_channels: int, width: int):
        super().__init__()
        self.resnet = ResNet34(out_features, in_channels, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet(x)
