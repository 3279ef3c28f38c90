# Ports the First Order Motion Model architecture (github.com/AliaksandrSiarohin/first-order-model),
# Copyright (c) 2019-2023 Aliaksandr Siarohin, MIT licence; its notice is reproduced in LICENSE.
"""Occlusion-aware generator (FOMM): warps the source image's encoder features by the dense motion and decodes.

The encoder features of the source image do not depend on the driving frame, so `encode_source` computes them once
per video and `forward` renders B driving frames in one pass, broadcasting the single source over the batch; in
training every driving frame has its own source (B sources).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.modules.blocks import DownBlock2d, ResBlock, SameBlock2d, UpBlock2d
from a2h_core.modules.dense_motion import DenseMotionNetwork
from a2h_core.modules.keypoints import Keypoints


def warp(features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """Backward-warp [1 or B, C, H, W] features by a [B, h, w, 2] deformation (bilinearly resized if h, w differ).

    Sampled in the deformation's dtype (at least float32 from the dense motion network); returned in the
    features' dtype.
    """
    batch = deformation.shape[0]
    height, width = features.shape[2:]
    if deformation.shape[1:3] != (height, width):
        deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(height, width), mode="bilinear",
                                    align_corners=False).permute(0, 2, 3, 1)
    warped = F.grid_sample(features.to(deformation.dtype).expand(batch, -1, -1, -1), deformation, mode="bilinear",
                           padding_mode="zeros", align_corners=False)
    return warped.to(features.dtype)


class OcclusionAwareGenerator(nn.Module):
    """Source image + source/driving keypoints -> rendered frames."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.generator
        self.dense_motion_network = DenseMotionNetwork(config)
        self.first = SameBlock2d(config.num_channels, cfg.block_expansion, kernel_size=(7, 7), padding=(3, 3))

        def width(level: int) -> int:
            return min(cfg.max_features, cfg.block_expansion * 2**level)

        levels = cfg.num_down_blocks
        self.down_blocks = nn.ModuleList(DownBlock2d(width(i), width(i + 1)) for i in range(levels))
        self.up_blocks = nn.ModuleList(UpBlock2d(width(levels - i), width(levels - i - 1)) for i in range(levels))
        self.bottleneck = nn.Sequential()
        for i in range(cfg.num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock(width(levels)))
        self.final = nn.Conv2d(cfg.block_expansion, config.num_channels, kernel_size=(7, 7), padding=(3, 3))

    def encode_source(self, source_image: torch.Tensor) -> torch.Tensor:
        """[1, 3, H, W] in 0..1 -> encoder features [1, C, H/4, W/4] (for the published model)."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def forward(self, source_image: torch.Tensor, source_features: torch.Tensor | None, kp_source: Keypoints,
                kp_driving: Keypoints) -> dict:
        """Render len(kp_driving) frames of one source.

        source_image [1, 3, H, W], source_features from `encode_source` (None: encoded here), kp_source N=1,
        kp_driving N=B (or, for training, B sources with their features and keypoints, N=B) ->
        dict(prediction [B, 3, H, W] in 0..1, occlusion_map [B, 1, h, w], deformation [B, h, w, 2]).
        """
        if source_features is None:  # training: encoded here, inside the (distributed) forward
            source_features = self.encode_source(source_image)
        motion = self.dense_motion_network(source_image, kp_source, kp_driving)
        out = warp(source_features, motion["deformation"])
        result = {"deformation": motion["deformation"]}
        if "occlusion_map" in motion:
            occlusion = motion["occlusion_map"]
            result["occlusion_map"] = occlusion
            if occlusion.shape[2:] != out.shape[2:]:
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear", align_corners=False)
            out = out * occlusion
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        result["prediction"] = torch.sigmoid(self.final(out))
        return result
