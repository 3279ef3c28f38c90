# Ports the First Order Motion Model architecture (github.com/AliaksandrSiarohin/first-order-model),
# Copyright (c) 2019-2023 Aliaksandr Siarohin, MIT licence; its notice is reproduced in LICENSE.
"""Dense motion network (FOMM): a dense backward warp and an occlusion map from sparse keypoint motions.

Works at `scale_factor` of the image size (64x64 for 256). For each keypoint k the sparse motion maps a driving
pixel z to the source as kp_src + J_src J_drv^-1 (z - kp_drv); a background "keypoint" keeps the identity. The
source image warped by each of the K+1 motions, and the difference of driving and source keypoint Gaussians, feed
an hourglass whose softmax mask blends the K+1 motions into one dense deformation.

Batched for one source and many driving frames (inference: `kp_source` and the source image have N=1 and are
broadcast over the B driving frames), or for B pairs of source and driving frames (training: N=B).
Driving keypoints are absolute positions, as in the original Audio2Head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.modules.blocks import AntiAliasDownsample, Hourglass, make_coordinate_grid, matmul_2x2, precise_dtype
from a2h_core.modules.keypoints import Keypoints


def keypoint_gaussians(value: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """[N, K, 2] keypoints -> [N, K, H, W] unnormalised Gaussians exp(-|z - kp|^2 / (2 variance))."""
    grid = make_coordinate_grid(height, width, value)
    offset = grid - value[:, :, None, None, :]
    return torch.exp(-0.5 * (offset**2).sum(-1) / variance)


class DenseMotionNetwork(nn.Module):
    """Sparse keypoint motions -> dense deformation [B, h, w, 2] (grid_sample coordinates) and occlusion map."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        gen = config.generator
        cfg = gen.dense_motion
        self.num_kp = config.num_kp
        self.kp_variance = cfg.kp_variance
        in_features = (config.num_kp + 1) * (config.num_channels + 1)  # per motion: Gaussian + warped image
        self.hourglass = Hourglass(cfg.block_expansion, in_features, cfg.num_blocks, cfg.max_features)
        self.mask = nn.Conv2d(self.hourglass.out_filters, config.num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = None
        if gen.estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
        self.down = AntiAliasDownsample.or_identity(config.num_channels, cfg.scale_factor)

    def sparse_motions(self, height: int, width: int, kp_source: Keypoints, kp_driving: Keypoints) -> torch.Tensor:
        """[B, K+1, h, w, 2]: where each driving pixel comes from in the source, per keypoint (index 0: identity).

        Computed in at least float32 (half precision would shift the warp by a fraction of a pixel).
        """
        work = precise_dtype(kp_driving.value.dtype)
        identity = make_coordinate_grid(height, width, kp_driving.value.to(work))[None, None]  # [1, 1, h, w, 2]
        coords = identity - kp_driving.value.to(work)[:, :, None, None, :]  # [B, K, h, w, 2]
        if kp_driving.jacobian is not None:
            jacobian = matmul_2x2(kp_source.jacobian.to(work), torch.inverse(kp_driving.jacobian.to(work)))
            coords = matmul_2x2(jacobian[:, :, None, None], coords.unsqueeze(-1)).squeeze(-1)
        driving_to_source = coords + kp_source.value.to(work)[:, :, None, None, :]
        batch = driving_to_source.shape[0]
        return torch.cat([identity.expand(batch, 1, height, width, 2), driving_to_source], dim=1)

    def forward(self, source_image: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> dict:
        """source_image [1 or B, 3, H, W], kp_source N=1 or B, kp_driving N=B -> dict(deformation [B, h, w, 2],
        occlusion_map [B, 1, h, w] (when estimated), mask [B, K+1, h, w]).

        The geometry (Gaussians, motions, warps, the blended deformation) is computed in at least float32; only the
        hourglass and its heads run in the caller's dtype.
        """
        source = self.down(source_image)
        _, channels, height, width = source.shape
        batch, motions = len(kp_driving), self.num_kp + 1

        sparse = self.sparse_motions(height, width, kp_source, kp_driving)
        work = sparse.dtype
        gaussians = (keypoint_gaussians(kp_driving.value.to(work), height, width, self.kp_variance)
                     - keypoint_gaussians(kp_source.value.to(work), height, width, self.kp_variance))
        heatmaps = torch.cat([gaussians.new_zeros(batch, 1, height, width), gaussians], dim=1)  # [B, K+1, h, w]
        if len(source) == 1:  # one source for every driving frame (inference)
            sources = source.to(work).expand(batch * motions, channels, height, width)
        else:  # one source per driving frame (training): each repeated for its K+1 motions
            sources = source.to(work)[:, None].expand(batch, motions, channels, height, width).reshape(
                batch * motions, channels, height, width)
        warped = F.grid_sample(
            sources,
            sparse.reshape(batch * motions, height, width, 2),
            mode="bilinear", padding_mode="zeros", align_corners=False,
        ).view(batch, motions, channels, height, width)

        features = torch.cat([heatmaps.unsqueeze(2), warped], dim=2).view(batch, -1, height, width)
        prediction = self.hourglass(features.to(source.dtype))
        mask = F.softmax(self.mask(prediction).to(work), dim=1)
        deformation = (sparse.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1).permute(0, 2, 3, 1)
        out = {"deformation": deformation, "mask": mask}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction))
        return out
