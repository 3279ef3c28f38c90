"""Keypoints passed between the Audio2Head networks: positions and local Jacobians of a batch of frames."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Keypoints:
    """Keypoints of N frames (source image or driving frames).

    `value` holds the positions in normalised image coordinates ([-1, 1], x then y, the convention of
    `grid_sample`); `jacobian` holds the 2x2 local affine transform around each keypoint, or None when the model
    does not estimate Jacobians.
    """

    value: torch.Tensor  # [N, K, 2] positions in [-1, 1], x then y
    jacobian: torch.Tensor | None = None  # [N, K, 2, 2] local Jacobians, or None

    def __post_init__(self) -> None:
        if self.value.dim() != 3 or self.value.shape[-1] != 2:
            raise ValueError(f"Keypoints.value must be [N, K, 2], got {tuple(self.value.shape)}")
        if self.jacobian is not None and self.jacobian.shape != (*self.value.shape, 2):
            raise ValueError(
                f"Keypoints.jacobian must be [N, K, 2, 2] matching value {tuple(self.value.shape)}, "
                f"got {tuple(self.jacobian.shape)}"
            )

    def __len__(self) -> int:
        return self.value.shape[0]

    def __getitem__(self, idx) -> Keypoints:
        """Select frames along N; an integer index keeps the frame dimension (returns N=1)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        jacobian = None if self.jacobian is None else self.jacobian[idx]
        return Keypoints(self.value[idx], jacobian)

    def to(self, device=None, dtype=None) -> Keypoints:
        jacobian = None if self.jacobian is None else self.jacobian.to(device=device, dtype=dtype)
        return Keypoints(self.value.to(device=device, dtype=dtype), jacobian)

    @staticmethod
    def cat(items: list[Keypoints]) -> Keypoints:
        """Concatenate along N; either all items carry Jacobians or none does."""
        if not items:
            raise ValueError("Keypoints.cat needs at least one item")
        has_jacobian = {item.jacobian is not None for item in items}
        if len(has_jacobian) != 1:
            raise ValueError("Keypoints.cat: some items have Jacobians and some do not")
        value = torch.cat([item.value for item in items])
        jacobian = torch.cat([item.jacobian for item in items]) if has_jacobian.pop() else None
        return Keypoints(value, jacobian)
