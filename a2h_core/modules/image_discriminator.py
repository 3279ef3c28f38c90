# Follows the First Order Motion Model discriminator (github.com/AliaksandrSiarohin/first-order-model),
# Copyright (c) 2019-2023 Aliaksandr Siarohin, MIT licence; its notice is reproduced in LICENSE.
"""Frame discriminator for the optional GAN terms of N_D/N_I training (training only; off by default, as in FOMM's
vox-256 configuration).

A PatchGAN on frames [B, 3, H, W] in 0..1: `num_blocks` convolutions (4x4, instance normalisation after the first,
LeakyReLU 0.2, 2x2 average pooling after all but the last; spectral normalisation when configured), then a 1x1
convolution scoring every patch. It returns the scores and every block's features, which FOMM's feature-matching
loss compares between real and generated frames. FOMM's keypoint heatmap input (`use_kp`) is off in vox-256 and
not implemented.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2h_core.config import ImageDiscriminatorConfig

_NEGATIVE_SLOPE = 0.2  # FOMM's LeakyReLU slope


class _DownBlock(nn.Module):
    def __init__(self, in_features: int, out_features: int, norm: bool, pool: bool, spectral: bool):
        super().__init__()
        conv = nn.Conv2d(in_features, out_features, kernel_size=4)
        self.conv = nn.utils.parametrizations.spectral_norm(conv) if spectral else conv
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, _NEGATIVE_SLOPE)
        return F.avg_pool2d(out, (2, 2)) if self.pool else out


class FrameDiscriminator(nn.Module):
    """frames [B, 3, H, W] -> (patch scores [B, 1, h, w], the block features for feature matching)."""

    def __init__(self, config: ImageDiscriminatorConfig, num_channels: int = 3):
        super().__init__()
        blocks = []
        in_features = num_channels
        for i in range(config.num_blocks):
            out_features = min(config.max_features, config.block_expansion * 2 ** (i + 1))
            blocks.append(_DownBlock(in_features, out_features, norm=i != 0, pool=i != config.num_blocks - 1,
                                     spectral=config.spectral_norm))
            in_features = out_features
        self.down_blocks = nn.ModuleList(blocks)
        conv = nn.Conv2d(in_features, 1, kernel_size=1)
        self.conv = nn.utils.parametrizations.spectral_norm(conv) if config.spectral_norm else conv

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        out = frames
        for block in self.down_blocks:
            out = block(out)
            features.append(out)
        return self.conv(out), features
