# Ports the First Order Motion Model architecture (github.com/AliaksandrSiarohin/first-order-model),
# Copyright (c) 2019-2023 Aliaksandr Siarohin, MIT licence; its notice is reproduced in LICENSE.
"""Keypoint detector (`kp_detector`, FOMM): keypoints and Jacobians of the source image.

The image is anti-alias downsampled to 64 x 64 (`scale_factor`: 256 -> 64; 512 -> 64 with `at_image_size(512)`),
a 2-D hourglass extracts features, and 7x7 heads without padding give one heatmap and one Jacobian map per keypoint
(58x58), turned into keypoints by a softmax at temperature 0.1.
"""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.modules.blocks import (
    AntiAliasDownsample,
    Hourglass,
    heatmap_softmax,
    init_identity_jacobian,
    keypoints_from_heatmaps,
)
from a2h_core.modules.keypoints import Keypoints


class KeypointDetector(nn.Module):
    """image [B, 3, S, S] in 0..1 -> Keypoints([B, K, 2], [B, K, 2, 2])."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.kp_detector
        self.temperature = cfg.temperature
        self.predictor = Hourglass(cfg.block_expansion, config.num_channels, cfg.num_blocks, cfg.max_features)
        self.kp = nn.Conv2d(self.predictor.out_filters, config.num_kp, kernel_size=(7, 7), padding=0)
        self.jacobian = None
        if config.estimate_jacobian:
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * config.num_kp, kernel_size=(7, 7), padding=0)
            init_identity_jacobian(self.jacobian)
        self.down = AntiAliasDownsample.or_identity(config.num_channels, cfg.scale_factor)

    def forward(self, image: torch.Tensor, with_heatmaps: bool = False) -> Keypoints | tuple[Keypoints, torch.Tensor]:
        """image [B, 3, S, S] in 0..1 -> Keypoints; with `with_heatmaps` also the softmax heatmaps [B, K, h, w]
        (the targets of the motion field generator's eq. 5)."""
        feature_map = self.predictor(self.down(image))
        jacobian_map = None if self.jacobian is None else self.jacobian(feature_map)
        logits = self.kp(feature_map)
        heatmap = heatmap_softmax(logits, self.temperature)
        keypoints = keypoints_from_heatmaps(logits, jacobian_map, self.temperature, heatmap)
        return (keypoints, heatmap) if with_heatmaps else keypoints
