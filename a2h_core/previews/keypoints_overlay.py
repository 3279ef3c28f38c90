"""Keypoints drawn as coloured dots over images or video frames."""
from __future__ import annotations

import torch

from a2h_core.errors import Audio2HeadError
from a2h_core.modules.keypoints import Keypoints

# distinct colours for the 10 keypoints (RGB 0..1), repeated when a model has more
KEYPOINT_COLOURS = torch.tensor([
    [0.90, 0.10, 0.10], [0.10, 0.70, 0.10], [0.15, 0.35, 0.95], [0.95, 0.75, 0.05], [0.80, 0.15, 0.80],
    [0.05, 0.80, 0.80], [1.00, 0.50, 0.00], [0.55, 0.30, 0.10], [1.00, 1.00, 1.00], [0.40, 0.40, 0.40],
])


def overlay_keypoints(images: torch.Tensor, keypoints: Keypoints, radius: int) -> torch.Tensor:
    """Filled dots at the keypoint positions on a ComfyUI IMAGE batch [B, H, W, 3].

    Keypoint coordinates in [-1, 1] span the image's first to last pixel centre. One image is repeated for every
    keypoint row, and one keypoint row is drawn on every image; otherwise row i goes on image i.
    """
    count = max(len(images), len(keypoints))
    if len(images) not in (1, count) or len(keypoints) not in (1, count):
        raise Audio2HeadError(f"'images' ({len(images)} frames) and 'keypoints' ({len(keypoints)} rows) must have "
                              "the same length, or one of them a single entry")
    height, width = images.shape[1:3]
    rows = torch.arange(height, dtype=torch.float32)[:, None]
    cols = torch.arange(width, dtype=torch.float32)[None, :]
    positions = keypoints.value.detach().float().cpu()
    out = images.expand(count, -1, -1, -1).clone() if len(images) == 1 else images.clone()
    for frame in range(count):
        points = positions[min(frame, len(positions) - 1)]
        for index, (x, y) in enumerate(points.tolist()):
            px, py = (x + 1) / 2 * (width - 1), (y + 1) / 2 * (height - 1)
            disk = (rows - py) ** 2 + (cols - px) ** 2 <= radius ** 2
            out[frame][disk] = KEYPOINT_COLOURS[index % len(KEYPOINT_COLOURS)].to(out.dtype)
    return out
