"""Random thin-plate-spline transforms for the equivariance losses (FOMM, Siarohin et al. 2019, Sec. 3.3 and its
`Transform`): a random affine map plus a random thin-plate spline on a grid of control points.

For coordinates z in [-1, 1]^2 (x then y, `grid_sample`'s convention) a transform of a batch of B images is

    T(z) = A z + b + sum_k w_k U(|z - c_k|_1),   U(d) = d^2 log(d + 1e-6),

with [A | b] = [I | 0] + N(0, sigma_affine^2) per entry, control points c_k on a `points x points` grid spanning
[-1, 1]^2, and weights w_k ~ N(0, sigma_tps^2), the same for x and y, as FOMM samples them (its kernel uses the L1
distance between a point and a control point). `warp_frames` samples an image at T(z) for every output pixel z
(reflection padding), so a keypoint at p in the warped image sits at T(p) in the original; `jacobian` is dT/dz by
autograd.

Kornia's thin-plate spline (`kornia.geometry.transform.warp_image_tps`) fits a spline to point correspondences with
the Euclidean kernel r^2 log r^2; FOMM's transform samples the kernel weights directly and uses another kernel, and
the Jacobian term needs T under autograd, so the transform is written out here (a few tensor lines) rather than fitted
through kornia, which stays a test-only dependency.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from a2h_core.modules.blocks import make_coordinate_grid


def noise_size(points: int) -> int:
    """Standard normal draws one transform needs: 6 affine entries and one weight per control point."""
    return 6 + points * points


class RandomTPS:
    """One random transform per image of a batch (see the module doc)."""

    def __init__(self, batch: int, sigma_affine: float = 0.05, sigma_tps: float = 0.005, points: int = 5,
                 device=None, generator: torch.Generator | None = None, noise: torch.Tensor | None = None):
        """noise: [B, 6 + points^2] standard normal draws (`noise_size`), e.g. made by the data set per sample so
        that the transforms do not depend on how a batch is split across processes; None draws them here."""
        if noise is None:
            noise = torch.randn(batch, noise_size(points), generator=generator)
        noise = noise.to(device=device, dtype=torch.float32)
        self.theta = noise[:, :6].reshape(-1, 2, 3) * sigma_affine + torch.eye(2, 3, device=device)[None]
        self.control_points = make_coordinate_grid(points, points, torch.zeros(())).reshape(-1, 2).to(device)
        self.control_params = (noise[:, 6:] * sigma_tps).reshape(-1, 1, points * points)
        self.batch = len(noise)

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """[B, N, 2] coordinates -> T(coordinates) [B, N, 2] (float32 or wider)."""
        work = coordinates.float() if coordinates.dtype in (torch.float16, torch.bfloat16) else coordinates
        theta = self.theta.to(work.dtype)
        out = (theta[:, None, :, :2] @ work.unsqueeze(-1)).squeeze(-1) + theta[:, None, :, 2]
        distance = (work[:, :, None, :] - self.control_points.to(work.dtype)[None, None]).abs().sum(-1)  # [B, N, P]
        kernel = distance ** 2 * torch.log(distance + 1e-6)
        return out + (kernel * self.control_params.to(work.dtype)).sum(-1, keepdim=True)

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """dT/dz at [B, N, 2] coordinates -> [B, N, 2, 2] (rows: output x, y; columns: input x, y), differentiable."""
        if not coordinates.requires_grad:
            coordinates = coordinates.detach().requires_grad_(True)
        warped = self.warp_coordinates(coordinates)
        grad_x = torch.autograd.grad(warped[..., 0].sum(), coordinates, create_graph=True)[0]
        grad_y = torch.autograd.grad(warped[..., 1].sum(), coordinates, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)

    def warp_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> the transformed frames: output pixel z shows the input at T(z) (reflection padding)."""
        batch, _, height, width = frames.shape
        grid = make_coordinate_grid(height, width, frames.float()).reshape(1, -1, 2).expand(batch, -1, -1)
        grid = self.warp_coordinates(grid).reshape(batch, height, width, 2)
        return F.grid_sample(frames.float(), grid, padding_mode="reflection", align_corners=False).to(frames.dtype)
