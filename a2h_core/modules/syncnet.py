# Ports the SyncNet architecture of syncnet_python (github.com/joonson/syncnet_python, SyncNetModel.py),
# Copyright (c) 2016-present Joon Son Chung, MIT licence; its notice is reproduced in LICENSE.
"""SyncNet (Chung & Zisserman, "Out of time", ACCV 2016 workshops), the lip-sync judge of LSE-C / LSE-D.

Two streams map 0.2 s of speech and the 5 video frames of the same 0.2 s into one embedding space, where a small
distance means "in sync":

- audio: MFCC [B, 1, 13, 20] (13 coefficients x 20 steps of 10 ms) -> 2-D convolutions -> 512 -> `embedding_size`;
- lips: frames [B, 3, 5, 224, 224] (BGR, 0..255, no normalisation: what OpenCV decodes) -> 3-D convolutions, the
  first spanning all 5 frames -> 512 -> `embedding_size`.

Layer order and indices follow the original's `nn.Sequential`s (`netcnnaud`, `netfcaud`, `netcnnlip`, `netfclip`)
so its published `syncnet_v2.model` state dict loads strictly. Weights are read by
`a2h_core.training.lip_sync.load_syncnet`; nothing here downloads.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

MFCC_COEFFICIENTS = 13  # rows of the audio input: python_speech_features' 13 cepstra
MFCC_STEPS = 20  # columns of the audio input: 20 x 10 ms, the span of 5 video frames at 25 fps
WINDOW_FRAMES = 5  # video frames per lip window
FACE_SIZE = 224  # side of the face crop the lip stream takes (its last convolution needs exactly 6 x 6 left)


@dataclass(frozen=True)
class SyncNetConfig:
    """SyncNet's one free size; the published `syncnet_v2.model` uses the default."""

    embedding_size: int = 1024  # output width of both streams' last linear layer


def _conv_bn_relu(conv: nn.Module, channels: int, batch_norm: type[nn.Module]) -> list[nn.Module]:
    return [conv, batch_norm(channels), nn.ReLU()]


class SyncNet(nn.Module):
    """Audio and lip embeddings; the same distance on both tells whether a window is in sync."""

    def __init__(self, config: SyncNetConfig | None = None):
        super().__init__()
        config = config or SyncNetConfig()
        self.config = config
        conv2, bn2 = nn.Conv2d, nn.BatchNorm2d
        self.netcnnaud = nn.Sequential(
            *_conv_bn_relu(conv2(1, 64, kernel_size=3, padding=1), 64, bn2),
            nn.MaxPool2d(kernel_size=1, stride=1),  # an identity in the original; kept so the indices match its file
            *_conv_bn_relu(conv2(64, 192, kernel_size=3, padding=1), 192, bn2),
            nn.MaxPool2d(kernel_size=3, stride=(1, 2)),
            *_conv_bn_relu(conv2(192, 384, kernel_size=3, padding=1), 384, bn2),
            *_conv_bn_relu(conv2(384, 256, kernel_size=3, padding=1), 256, bn2),
            *_conv_bn_relu(conv2(256, 256, kernel_size=3, padding=1), 256, bn2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            *_conv_bn_relu(conv2(256, 512, kernel_size=(5, 4)), 512, bn2),  # 5 x 4 left: one position
        )
        self.netfcaud = self._head(config.embedding_size)
        self.netfclip = self._head(config.embedding_size)
        conv3, bn3 = nn.Conv3d, nn.BatchNorm3d
        self.netcnnlip = nn.Sequential(
            *_conv_bn_relu(conv3(3, 96, kernel_size=(WINDOW_FRAMES, 7, 7), stride=(1, 2, 2)), 96, bn3),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn_relu(conv3(96, 256, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, bn3),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv_bn_relu(conv3(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_conv_bn_relu(conv3(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_conv_bn_relu(conv3(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn_relu(conv3(256, 512, kernel_size=(1, 6, 6)), 512, bn3),  # 6 x 6 left at 224: one position
        )

    @staticmethod
    def _head(embedding_size: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding_size))

    def audio_embedding(self, mfcc: torch.Tensor) -> torch.Tensor:
        """mfcc [B, 1, 13, 20] -> [B, embedding_size]."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def lip_embedding(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [B, 3, 5, 224, 224] (BGR, 0..255) -> [B, embedding_size]."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))
