# YuNet face detector network, ported to this project's style.
#
# The architecture (and therefore the parameter names, which must match the published weight file) follows
# kornia's `kornia/models/yunet/model.py`, itself based on ShiqiYu/libfacedetection.train
# (tasks/task1/yufacedetectnet.py). The weight file is kornia's `yunet_final.pth`.
#
# Copyright 2018 Kornia Team
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""YuNet (Wu, Peng, Yu 2023): an 85 k-parameter face detector giving a box, five landmarks and a score per face.

Input: BGR images in 0..255 (no mean or scale), [B, 3, H, W]. Output, per image, for every prior (anchor) of the
four detection levels (strides 8, 16, 32, 64): 14 location offsets (box centre and size, then five landmarks),
2 class probabilities (background, face) and 1 IoU estimate. `a2h_core.face.detectors` decodes them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class YuNetConfig:
    """Fixed shape of the published YuNet; kept as data so the decoder and the network agree."""

    min_sizes: tuple[tuple[int, ...], ...] = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))  # anchor sides, px
    steps: tuple[int, ...] = (8, 16, 32, 64)  # stride of each detection level, px
    variances: tuple[float, float] = (0.1, 0.2)  # SSD-style offset scales (centre/landmarks, log size)
    width: int = 64  # channels of the backbone blocks


class _DepthwiseUnit(nn.Sequential):
    """1x1 convolution, then a 3x3 depthwise convolution, optionally followed by batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, activate: bool = True):
        super().__init__()
        self.add_module("conv1", nn.Conv2d(in_channels, out_channels, 1))
        self.add_module("conv2", nn.Conv2d(out_channels, out_channels, 3, padding=1, groups=out_channels))
        if activate:
            self.add_module("bn", nn.BatchNorm2d(out_channels))
            self.add_module("relu", nn.ReLU(inplace=True))


class _Stem(nn.Sequential):
    """Stride-2 3x3 convolution with batch norm and ReLU, then one depthwise unit."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int):
        super().__init__()
        self.add_module("conv1", nn.Conv2d(in_channels, mid_channels, 3, stride=2, padding=1))
        self.add_module("bn1", nn.BatchNorm2d(mid_channels))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv2", _DepthwiseUnit(mid_channels, out_channels))


class _Block(nn.Sequential):
    """Two depthwise units; the last one of a head has no batch norm or activation."""

    def __init__(self, in_channels: int, out_channels: int, activate: bool = True):
        super().__init__()
        self.add_module("conv1", _DepthwiseUnit(in_channels, in_channels))
        self.add_module("conv2", _DepthwiseUnit(in_channels, out_channels, activate))


class YuNet(nn.Module):
    """The YuNet detection network: a depthwise backbone with four detection heads.

    forward(bgr [B, 3, H, W] in 0..255) -> (loc [B, P, 14], face probability [B, P], iou [B, P]) for the P priors
    of `priors(H, W)`, in their order.
    """

    def __init__(self, config: YuNetConfig | None = None):
        super().__init__()
        self.config = config or YuNetConfig()
        width = self.config.width
        self.model0 = _Stem(3, 16, 16)
        self.model1 = _Block(16, width)
        self.model2 = _Block(width, width)
        self.model3 = _Block(width, width)
        self.model4 = _Block(width, width)
        self.model5 = _Block(width, width)
        self.model6 = _Block(width, width)
        outputs = 14 + 2 + 1  # location offsets, class logits, IoU
        self.head = nn.Sequential(*(_Block(width, len(sizes) * outputs, activate=False)
                                    for sizes in self.config.min_sizes))

    def forward(self, bgr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.model2(self.model1(F.max_pool2d(self.model0(bgr), 2)))
        levels = []
        for stage in (self.model3, self.model4, self.model5, self.model6):
            x = stage(F.max_pool2d(x, 2))
            levels.append(x)
        heads = [head(level).permute(0, 2, 3, 1).reshape(bgr.shape[0], -1, 17)
                 for head, level in zip(self.head, levels)]
        out = torch.cat(heads, 1)
        loc, logits, iou = out.split((14, 2, 1), dim=-1)
        return loc, torch.softmax(logits, -1)[..., 1], iou[..., 0]

    def priors(self, height: int, width: int) -> torch.Tensor:
        """Anchor boxes [P, 4] (centre x, centre y, width, height; normalised by the image size), in output order.

        Level k has a feature map of the input halved 3 + k times (rounding as the backbone does); every cell
        holds one anchor per size of `min_sizes[k]`.
        """
        h, w = (height + 1) // 2 // 2, (width + 1) // 2 // 2  # after the stem's stride 2 and the first pooling
        anchors = []
        for step, sizes in zip(self.config.steps, self.config.min_sizes):
            h, w = h // 2, w // 2
            ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                    indexing="ij")
            cx = ((xs + 0.5) * step / width)[..., None].expand(h, w, len(sizes))
            cy = ((ys + 0.5) * step / height)[..., None].expand(h, w, len(sizes))
            side = torch.tensor(sizes, dtype=torch.float32)
            sw, sh = (side / width).expand(h, w, -1), (side / height).expand(h, w, -1)
            anchors.append(torch.stack([cx, cy, sw, sh], -1).reshape(-1, 4))
        return torch.cat(anchors)
