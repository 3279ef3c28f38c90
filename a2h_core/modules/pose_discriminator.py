"""Pose-sequence discriminator: PatchGAN adapted to 1-D convolutions along time (paper Sec. 3.2, used by eq. 4).

The original PatchGAN (Isola et al. 2017) classifies overlapping image patches as real or fake. Here the "image" is
a head-pose sequence [B, 6, T] in the predictor's normalised range [-1, 1]: strided 1-D convolutions along time
(kernel 4, stride 2, LeakyReLU 0.2, instance normalisation after the first layer) end in a one-channel convolution
that scores every temporal patch. Each score sees a receptive field of a few dozen frames, so the discriminator
judges local motion texture (smoothness, rhythm, amplitude) rather than the whole clip. Instance normalisation is
per sequence, so scores never depend on the other sequences of a batch (and distributed training matches one
process exactly). Training only: the published checkpoint has no discriminator.
"""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.config import PoseDiscriminatorConfig

_NEGATIVE_SLOPE = 0.2  # PatchGAN's LeakyReLU slope


class PoseSequenceDiscriminator(nn.Module):
    """Scores temporal patches of pose sequences: [B, 6, T] -> [B, 1, P] (LSGAN targets: 1 real, 0 fake)."""

    def __init__(self, config: PoseDiscriminatorConfig):
        super().__init__()
        kernel, padding = config.kernel_size, config.kernel_size // 2 - 1 if config.kernel_size > 2 else 0
        layers: list[nn.Module] = []
        in_channels = config.pose_dim
        for index in range(config.num_layers):
            out_channels = min(config.channels * 2 ** index, config.max_channels)
            layers.append(nn.Conv1d(in_channels, out_channels, kernel, stride=2, padding=padding))
            if index > 0:
                layers.append(nn.InstanceNorm1d(out_channels, affine=True))
            layers.append(nn.LeakyReLU(_NEGATIVE_SLOPE))
            in_channels = out_channels
        # PatchGAN's last two layers: a stride-1 convolution, then the one-channel patch score.
        out_channels = min(in_channels * 2, config.max_channels)
        layers += [nn.Conv1d(in_channels, out_channels, kernel, stride=1, padding=padding),
                   nn.InstanceNorm1d(out_channels, affine=True), nn.LeakyReLU(_NEGATIVE_SLOPE),
                   nn.Conv1d(out_channels, 1, kernel, stride=1, padding=padding)]
        self.layers = nn.Sequential(*layers)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        """poses [B, 6, T] (normalised) -> patch scores [B, 1, P]."""
        return self.layers(poses)
