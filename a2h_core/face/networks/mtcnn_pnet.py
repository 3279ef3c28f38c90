"""MTCNN proposal network (P-Net): a fully convolutional 12x12 face classifier run over an image pyramid."""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.face.networks.mtcnn_layers import max_pool_same


class PNet(nn.Module):
    """P-Net: forward(image [B, 3, H, W], normalised (x - 127.5) / 128, RGB) -> (box offsets [B, 4, h, w],
    face probability [B, h, w]); each output cell looks at a 12x12 window, cells are 2 pixels apart."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.box = nn.Conv2d(32, 4, 1)  # x1, y1, x2, y2 offsets as fractions of the window side
        self.score = nn.Conv2d(32, 2, 1)  # background, face logits

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = max_pool_same(self.prelu1(self.conv1(image)), 2, 2)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.box(x), torch.softmax(self.score(x), 1)[:, 1]
