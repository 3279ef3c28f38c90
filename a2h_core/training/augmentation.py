"""Frame augmentation of N_D + N_I's training pairs (FOMM's vox-256 recipe, `AugmentationConfig`).

FOMM augments the two frames of a pair as one clip: one random draw, applied to both. Its steps, in order:

1. **Flip**: with probability 1/2 the clip is reversed in time (for a pair: source and driving swap) and nothing
   else of this step happens; otherwise, with probability 1/2, both frames are mirrored left-right.
2. **Colour jitter**: factors b, c, s uniform in [max(0, 1 - x), 1 + x] for brightness, contrast and saturation and
   a hue shift h uniform in [-hue, hue], applied in a random order, each on 8-bit images (FOMM goes through PIL
   images and torchvision's PIL functions, which are PIL's `ImageEnhance` and an 8-bit HSV hue rotation):
   brightness blends with black, contrast with the mean grey level, saturation with the grey image, and hue adds
   round-toward-zero(h * 255) modulo 256 to the HSV hue channel.

Every random number comes from the caller's generator (a pure function of the sample), so resumed and distributed
runs see the same augmentation.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance

from a2h_core.training.config import AugmentationConfig


def _factor(rng: np.random.Generator, amount: float) -> float | None:
    return float(rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount)) if amount > 0 else None


def _shift_hue(image: Image.Image, shift: float) -> Image.Image:
    hue, saturation, value = image.convert("HSV").split()
    turned = (np.asarray(hue, dtype=np.int64) + int(shift * 255)) % 256
    return Image.merge("HSV", (Image.fromarray(turned.astype(np.uint8), "L"), saturation, value)).convert("RGB")


def augment_frames(frames: list[np.ndarray], config: AugmentationConfig, rng: np.random.Generator
                   ) -> list[np.ndarray]:
    """[S, S, 3] uint8 frames (a source and a driving frame) -> the same draw of augmentation applied to all of them
    (see the module doc); a time flip reverses the list."""
    if config.time_flip and rng.random() < 0.5:
        frames = frames[::-1]
    elif config.horizontal_flip and rng.random() < 0.5:
        frames = [frame[:, ::-1] for frame in frames]
    brightness, contrast, saturation = (_factor(rng, config.brightness), _factor(rng, config.contrast),
                                        _factor(rng, config.saturation))
    hue = float(rng.uniform(-config.hue, config.hue)) if config.hue > 0 else None
    steps = [(brightness, lambda image, f: ImageEnhance.Brightness(image).enhance(f)),
             (saturation, lambda image, f: ImageEnhance.Color(image).enhance(f)),
             (hue, _shift_hue),
             (contrast, lambda image, f: ImageEnhance.Contrast(image).enhance(f))]
    steps = [steps[i] for i in rng.permutation(len(steps)) if steps[i][0] is not None]
    if not steps:
        return [np.ascontiguousarray(frame) for frame in frames]
    out = []
    for frame in frames:
        image = Image.fromarray(np.ascontiguousarray(frame))
        for amount, apply in steps:
            image = apply(image, amount)
        out.append(np.asarray(image))
    return out
