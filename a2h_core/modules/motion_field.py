# Ports the First Order Motion Model architecture (github.com/AliaksandrSiarohin/first-order-model),
# Copyright (c) 2019-2023 Aliaksandr Siarohin, MIT licence; its notice is reproduced in LICENSE.
"""Motion field generator (`audio2kp`): driving keypoints and Jacobians for a window of frames.

Per window of `seq_len` frames it stacks, at 64x64 (whatever `ModelConfig.image_size` is): a 2-channel audio
embedding per frame, the downsampled source image (3 channels, the same for every frame) and the downsampled pose-box
image (1 channel). A 3-D hourglass mixes
time and space; a 3-D keypoint head (7x7x7, no spatial padding) gives one heatmap per keypoint and frame, and a 2-D
Jacobian head (7x7) gives the Jacobians, both turned into keypoints by a softmax at temperature 0.1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2h_core.config import FEATURE_ROWS_PER_FRAME, MOTION_WORKING_SIZE, NUM_AUDIO_FEATURES, ModelConfig
from a2h_core.modules.blocks import (
    AntiAliasDownsample,
    Hourglass,
    heatmap_softmax,
    init_identity_jacobian,
    keypoints_from_heatmaps,
)
from a2h_core.modules.keypoints import Keypoints

_AUDIO_EMBEDDING_CHANNELS = 2  # channels of the per-frame audio "image"


class MotionFieldGenerator(nn.Module):
    """Audio + pose boxes + source image of a window -> keypoints of every frame of the window."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.motion_field
        self.seq_len = cfg.seq_len
        self.num_kp = config.num_kp
        self.temperature = cfg.temperature
        # Image and pose boxes enter the hourglass at 64 x 64, the audio embedding's size: a quarter of 256, an
        # eighth of 512.
        if config.image_size % MOTION_WORKING_SIZE:
            raise ValueError(f"motion field generator: the image size {config.image_size} must be a multiple of "
                             f"{MOTION_WORKING_SIZE}")
        scale = MOTION_WORKING_SIZE / config.image_size
        self.down_id = AntiAliasDownsample.or_identity(config.num_channels, scale)
        self.down_pose = AntiAliasDownsample.or_identity(cfg.seq_len, scale)
        # 4x41 features of a frame -> 8x32x32 (transposed conv) -> 2x32x32, then nearest 2x to 64x64.
        self.embedding = nn.Sequential(
            nn.ConvTranspose2d(1, 8, (29, 14), stride=(1, 1), padding=(0, 11)),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, _AUDIO_EMBEDDING_CHANNELS, (13, 13), stride=(1, 1), padding=(6, 6)),
        )
        in_features = _AUDIO_EMBEDDING_CHANNELS + config.num_channels + 1
        self.predictor = Hourglass(cfg.block_expansion, in_features, cfg.num_blocks, cfg.max_features, dims=3)
        self.kp = nn.Conv3d(self.predictor.out_filters, config.num_kp, kernel_size=(7, 7, 7), padding=(3, 0, 0))
        self.jacobian = None
        if config.estimate_jacobian:
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * config.num_kp, kernel_size=(7, 7), padding=0)
            init_identity_jacobian(self.jacobian)

    def forward(self, audio: torch.Tensor, pose_boxes: torch.Tensor, source_image: torch.Tensor,
                with_heatmaps: bool = False) -> Keypoints | tuple[Keypoints, torch.Tensor]:
        """audio [B, L, 4, 41], pose_boxes [B, L, S, S] (values 0/255), source_image [B or 1, 3, S, S] (S: image_size)
        -> Keypoints [B*L, K, 2] (+ Jacobians), batch-major: window b, frame t at row b*L + t (L = seq_len); with
        `with_heatmaps` also the softmax heatmaps [B*L, K, h, w] (eq. 5's m-hat)."""
        batch, length = audio.shape[:2]
        if length != self.seq_len:
            raise ValueError(f"motion field generator: expected windows of {self.seq_len} frames, got {length}")
        embedding = self.embedding(audio.reshape(batch * length, 1, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES))
        embedding = F.interpolate(embedding, scale_factor=2, mode="nearest")
        size = embedding.shape[-1]
        embedding = embedding.reshape(batch, length, -1, size, size).transpose(1, 2)  # [B, 2, L, 64, 64]
        identity = self.down_id(source_image).unsqueeze(2).expand(batch, -1, length, -1, -1)
        poses = self.down_pose(pose_boxes).unsqueeze(1)  # the L pose images are the conv's channels
        feature_map = self.predictor(torch.cat([embedding, identity, poses], dim=1))  # [B, C, L, 64, 64]

        heatmaps = self.kp(feature_map).transpose(1, 2)  # [B, L, K, h, w]
        heatmaps = heatmaps.reshape(batch * length, *heatmaps.shape[2:])
        jacobian_map = None
        if self.jacobian is not None:
            channels, height, width = feature_map.shape[1], feature_map.shape[3], feature_map.shape[4]
            per_frame = feature_map.transpose(1, 2).reshape(batch * length, channels, height, width)
            jacobian_map = self.jacobian(per_frame)
        heatmap = heatmap_softmax(heatmaps, self.temperature)
        keypoints = keypoints_from_heatmaps(heatmaps, jacobian_map, self.temperature, heatmap)
        return (keypoints, heatmap) if with_heatmaps else keypoints
