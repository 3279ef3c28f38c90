"""MTCNN refinement network (R-Net): re-scores and refines P-Net's candidates on 24x24 crops."""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.face.networks.mtcnn_layers import flatten_like_keras, max_pool_same


class RNet(nn.Module):
    """R-Net: forward(crops [N, 3, 24, 24], normalised as for P-Net) -> (box offsets [N, 4], face probability [N])."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.fc4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.box = nn.Linear(128, 4)  # x1, y1, x2, y2 offsets as fractions of the crop side
        self.score = nn.Linear(128, 2)  # background, face logits

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = max_pool_same(self.prelu1(self.conv1(crops)), 3, 2)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)
        x = self.prelu4(self.fc4(flatten_like_keras(self.prelu3(self.conv3(x)))))
        return self.box(x), torch.softmax(self.score(x), 1)[:, 1]
