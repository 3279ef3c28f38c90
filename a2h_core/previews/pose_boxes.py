"""The pose boxes the network sees, drawn over the portrait: a check that a curve moves the head as intended."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from a2h_core.errors import Audio2HeadError
from a2h_core.pose.render import BOX_VALUE, render_pose_boxes


def _image_batch(image) -> torch.Tensor:
    """A ComfyUI-style IMAGE as float32 [B, H, W, 3] in 0..1 (accepts [H, W, C], [B, H, W, C], numpy or torch)."""
    tensor = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if tensor.ndim == 3:
        tensor = tensor[None]
    if tensor.ndim != 4 or tensor.shape[-1] not in (1, 3, 4):
        raise Audio2HeadError(f"the preview image must be [H, W, C] or [B, H, W, C] with 1, 3 or 4 channels, got "
                              f"{tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    tensor = tensor.float()[..., :3]
    return tensor.expand(*tensor.shape[:-1], 3) if tensor.shape[-1] == 1 else tensor


def preview_pose_boxes(image, poses, color=(0.2, 1.0, 0.2), opacity: float = 0.85, device=None) -> torch.Tensor:
    """The pose box of every pose drawn over the source image: float32 [N, H, W, 3] in 0..1 (a ComfyUI IMAGE).

    image: the source image, [H, W, C] or [B, H, W, C] float 0..1 (B == 1 or B == N). The box is drawn exactly as
    the model sees it (256 x 256), then resized to the image, so it lines up with a 256 x 256 model input and with
    any image the model input was resized from.
    """
    images = _image_batch(image)
    boxes = render_pose_boxes(poses, device=device) / BOX_VALUE
    n, (b, h, w) = len(boxes), images.shape[:3]
    if b not in (1, n):
        raise Audio2HeadError(f"the preview needs one image or one per pose; got {b} images for {n} poses")
    alpha = boxes[:, None]
    if (h, w) != tuple(boxes.shape[-2:]):
        alpha = F.interpolate(alpha, size=(h, w), mode="bilinear", align_corners=False)
    alpha = (alpha[:, 0, ..., None] * float(opacity)).clamp(0, 1).to(images.device)
    tint = torch.tensor(color, dtype=torch.float32, device=images.device)
    return images * (1 - alpha) + tint * alpha
