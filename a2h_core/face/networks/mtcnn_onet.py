"""MTCNN output network (O-Net): final score, box and five landmarks on 48x48 crops."""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.face.networks.mtcnn_layers import flatten_like_keras, max_pool_same


class ONet(nn.Module):
    """O-Net: forward(crops [N, 3, 48, 48], normalised as for P-Net) -> (box offsets [N, 4], landmarks [N, 10] as
    fractions of the crop (five x, then five y), face probability [N])."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.fc5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.box = nn.Linear(256, 4)  # x1, y1, x2, y2 offsets as fractions of the crop side
        self.landmarks = nn.Linear(256, 10)  # eyes, nose, mouth corners (image left first): x1..x5, y1..y5
        self.score = nn.Linear(256, 2)  # background, face logits

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = max_pool_same(self.prelu1(self.conv1(crops)), 3, 2)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)
        x = max_pool_same(self.prelu3(self.conv3(x)), 2, 2)
        x = self.prelu5(self.fc5(flatten_like_keras(self.prelu4(self.conv4(x)))))
        return self.box(x), self.landmarks(x), torch.softmax(self.score(x), 1)[:, 1]
