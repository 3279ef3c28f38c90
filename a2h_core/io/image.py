"""Source-image preparation (any size, RGB/RGBA/grayscale -> the 256x256 network input), crop box and paste-back.

The original reads the image, keeps the first three channels and resizes the whole picture to 256x256 with
OpenCV's default bilinear filter on the uint8 image. `resize_uint8` reproduces that filter's fixed-point arithmetic
in numpy, so OpenCV is not needed at run time and the network sees the same pixels.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from a2h_core.config import IMAGE_SIZE, MIN_IMAGE_SIDE
from a2h_core.errors import A2HWarning, Audio2HeadError

# OpenCV's bilinear resize of 8-bit images works in fixed point: interpolation weights are scaled by 2**11.
_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS
# Float images must hold 0..1 (ComfyUI's convention); values this far outside are a different scale, not rounding.
FLOAT_RANGE_SLACK = 0.5


@dataclass(frozen=True)
class CropBox:
    """A rectangle of the full image, in pixels."""

    x: int  # left column of the box
    y: int  # top row of the box
    width: int  # box width in pixels
    height: int  # box height in pixels

    @classmethod
    def parse(cls, text: str) -> CropBox:
        """Parse "x,y,w,h" (the command line's --crop)."""
        parts = text.replace(" ", "").split(",")
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise Audio2HeadError(
                f"crop box {text!r} is not four integers: write it as x,y,width,height, e.g. 120,40,512,512"
            ) from None
        return cls(x, y, w, h)

    @classmethod
    def coerce(cls, crop) -> CropBox:
        """A CropBox from a CropBox, an "x,y,w,h" string or four whole numbers (x, y, width, height)."""
        if isinstance(crop, CropBox):
            return crop
        if isinstance(crop, str):
            return cls.parse(crop)
        if isinstance(crop, (tuple, list, np.ndarray)) and len(crop) == 4 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in crop):
            return cls(*(int(v) for v in crop))
        raise Audio2HeadError(f"crop must be a CropBox, an 'x,y,width,height' string or four whole numbers, got "
                              f"{crop!r}"[:300])

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def inside(self, image_width: int, image_height: int) -> bool:
        """Whether the box lies wholly inside the picture (otherwise cropping pads it by repeating the edge)."""
        return self.x >= 0 and self.y >= 0 and self.right <= image_width and self.bottom <= image_height

    def check_overlaps(self, image_width: int, image_height: int) -> None:
        """Refuse a box without area or without any pixel of the picture; a box partly outside is fine (padded)."""
        if self.width < 1 or self.height < 1:
            raise Audio2HeadError(f"crop box {self} has no area: width and height must be at least 1 pixel")
        if self.x >= image_width or self.y >= image_height or self.right <= 0 or self.bottom <= 0:
            raise Audio2HeadError(
                f"crop box {self} lies entirely outside the {image_width}x{image_height} image: give a box that "
                f"covers the face (x < {image_width}, y < {image_height}), or use the automatic crop"
            )

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


@dataclass
class CropInfo:
    """What paste-back needs: the full image the face was cut from and where."""

    full_image: np.ndarray  # [H, W, 3] uint8 RGB, the whole source picture
    box: CropBox  # where the 256x256 network input was cut from


def load_image(image) -> np.ndarray:
    """Any supported image -> [H, W, 3] uint8 RGB.

    Accepts a path, a PIL image, a numpy array (uint8, or float in 0..1; HW, HW1, HW3 or HW4) or a ComfyUI IMAGE
    tensor ([H, W, C] or [1, H, W, C] float 0..1). Grayscale is repeated to three channels; an alpha channel is
    dropped, as the original does (it keeps the first three channels).
    """
    if isinstance(image, (str, os.PathLike)):
        return _read_image_file(Path(image))
    if _is_pil(image):
        return _pil_to_rgb(image)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dim() == 4:
            if tensor.shape[0] != 1:
                raise Audio2HeadError(
                    f"got a batch of {tensor.shape[0]} images; Audio2Head animates one source image: pass image[0:1]"
                )
            tensor = tensor[0]
        image = tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
    if not isinstance(image, np.ndarray):
        raise Audio2HeadError(f"cannot use a {type(image).__name__} as the source image: give a path, PIL image or "
                              "array")
    return _array_to_rgb(image)


def _is_pil(image) -> bool:
    try:
        from PIL import Image
    except ImportError:  # PIL is optional for array inputs
        return False
    return isinstance(image, Image.Image)


def _read_image_file(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if path.is_dir():
        raise Audio2HeadError(f"source image {str(path)!r} is a folder, not an image file: give the file itself")
    if not path.is_file():
        raise Audio2HeadError(f"source image {str(path)!r} does not exist: check the path")
    try:
        with Image.open(path) as opened:
            # Phone pictures store their orientation in EXIF; apply it as ComfyUI's LoadImage does.
            return _pil_to_rgb(ImageOps.exif_transpose(opened))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise Audio2HeadError(
            f"cannot read the source image {str(path)!r} ({exc}): give a PNG, JPEG, WebP or BMP file"
        ) from None


def _pil_to_rgb(image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits before converting, PIL's convert would clip instead.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        return _array_to_rgb(np.clip(values / peak, 0.0, 1.0))
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
    return _array_to_rgb(np.asarray(image))


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise Audio2HeadError(
            f"source image has shape {array.shape}: expected height x width with 1 (gray), 3 (RGB) or 4 (RGBA) channels"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise Audio2HeadError(f"source image is empty (shape {array.shape})")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise Audio2HeadError(f"source image has dtype {array.dtype}: give uint8 (0..255) or float (0..1) pixels")
        if not np.isfinite(array).all():
            raise Audio2HeadError("source image contains NaN or infinite values: fix the image before animating it")
        low, high = float(array.min()), float(array.max())
        if high > FLOAT_RANGE_SLACK + 1.0 or low < -FLOAT_RANGE_SLACK:
            hint = " (it looks like 0..255: divide by 255, or pass uint8)" if high <= 255.0 and low >= 0 else ""
            raise Audio2HeadError(f"source image holds float values from {low:.3g} to {high:.3g}, but float images "
                                  f"must be in 0..1{hint}")
        # ComfyUI images are uint8 / 255; rounding recovers those bytes exactly.
        array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    array = array[:, :, :3]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def check_image_size(width: int, height: int, what: str = "source image") -> None:
    """Refuse an image (or crop box) too small to hold a face: below MIN_IMAGE_SIDE pixels on a side."""
    if min(width, height) < MIN_IMAGE_SIDE:
        raise Audio2HeadError(
            f"{what} is {width}x{height} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed (the network "
            f"sees {IMAGE_SIZE}x{IMAGE_SIZE}; a smaller picture holds no face to animate): give a larger portrait")


def _linear_taps(src_size: int, dst_size: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (first, second) and fixed-point weights [dst, 2] of OpenCV's bilinear filter along one axis."""
    scale = 1.0 / (dst_size / src_size)
    position = ((np.arange(dst_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    frac = (position - first.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        # Along x, OpenCV pins the weight to the border pixel outside the image.
        outside = (first < 0) | (first >= src_size - 1)
        frac[outside] = 0.0
        first = np.clip(first, 0, src_size - 1)
    weights = np.stack([np.float32(1.0) - frac, frac], axis=1) * np.float32(_COEF_SCALE)
    weights = np.rint(weights).astype(np.int64)
    # Along y, OpenCV keeps the weights and clamps the row indices instead.
    second = np.clip(first + 1, 0, src_size - 1)
    first = np.clip(first, 0, src_size - 1)
    return first, second, weights


def resize_uint8(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenCV's `cv2.resize(image, (width, height))` (INTER_LINEAR) on a [H, W, C] uint8 image, bit for bit."""
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image.copy()
    if src_w == 2 * width and src_h == 2 * height:
        # OpenCV switches to its area filter for an exact 2x reduction: rounded mean of each 2x2 block.
        blocks = image.reshape(height, 2, width, 2, -1).astype(np.int32).sum(axis=(1, 3))
        return ((blocks + 2) >> 2).astype(np.uint8)
    x0, x1, wx = _linear_taps(src_w, width, clamp_weights=True)
    y0, y1, wy = _linear_taps(src_h, height, clamp_weights=False)
    pixels = image.astype(np.int64)
    rows = pixels[:, x0] * wx[None, :, 0, None] + pixels[:, x1] * wx[None, :, 1, None]  # [H, width, C], scale 2**11
    # Vertical pass as OpenCV's SIMD kernel: drop 4 bits, 16x16 high multiply, then round off the last 2 bits.
    top = np.clip(rows[y0] >> 4, -32768, 32767) * wy[:, 0, None, None] >> 16
    bottom = np.clip(rows[y1] >> 4, -32768, 32767) * wy[:, 1, None, None] >> 16
    return np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """[H, W, 3] uint8 -> [1, 3, H, W] float32, exactly uint8 * float32(1/255) as the original's img_as_float32."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32)


def crop_padded(rgb: np.ndarray, box: CropBox) -> np.ndarray:
    """The pixels of `box` [height, width, 3]; parts outside the picture repeat its edge pixels."""
    height, width = rgb.shape[:2]
    box.check_overlaps(width, height)
    if box.inside(width, height):
        return rgb[box.y:box.bottom, box.x:box.right]
    inner = rgb[max(box.y, 0):min(box.bottom, height), max(box.x, 0):min(box.right, width)]
    pads = ((max(-box.y, 0), max(box.bottom - height, 0)), (max(-box.x, 0), max(box.right - width, 0)), (0, 0))
    return np.pad(inner, pads, mode="edge")


def prepare_source_image(image, crop: CropBox | str | None = None,
                         size: int = IMAGE_SIZE) -> tuple[torch.Tensor, CropInfo | None]:
    """Any image -> the network input [1, 3, size, size] float32 in 0..1 (size: the model's `image_size`, 256 for
    the published model), and the crop information for paste-back.

    Without a crop box the whole picture is resized to 256x256 as the original does (the aspect ratio is not kept).
    With a crop box only that rectangle is resized; paste_back later blends the animated face into the full picture.
    A box reaching past the picture's edge is padded by repeating the edge pixels (the face stays centred).
    """
    rgb = load_image(image)
    crop_info = None
    if crop is None:
        check_image_size(rgb.shape[1], rgb.shape[0])
    else:
        box = CropBox.coerce(crop)
        box.check_overlaps(rgb.shape[1], rgb.shape[0])
        check_image_size(box.width, box.height, f"crop box {box.width}x{box.height}")
        aspect = box.width / box.height
        if not 0.8 <= aspect <= 1.25:
            warnings.warn(
                f"crop box {box.width}x{box.height} is far from square: the face is stretched to 256x256 for the "
                "network and back on paste-back; a square box keeps proportions",
                A2HWarning,
                stacklevel=2,
            )
        cut = crop_padded(rgb, box)
        crop_info = CropInfo(full_image=rgb, box=box)
        rgb = cut
    return image_to_tensor(resize_uint8(np.ascontiguousarray(rgb), size, size)), crop_info


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even width and height not above the given ones (H.264 in yuv420p needs even sides)."""
    if width < 2 or height < 2:
        raise Audio2HeadError(f"a {width}x{height} frame is too small to encode: the video needs at least 2x2 pixels")
    return width - width % 2, height - height % 2


def feather_mask(width: int, height: int, feather: int) -> np.ndarray:
    """[height, width] float32 mask: 1 inside, falling linearly to 0 over `feather` pixels towards each edge."""
    def ramp(size: int) -> np.ndarray:
        distance = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)  # to the nearest edge
        return np.clip((distance + 0.5) / max(feather, 1), 0.0, 1.0) if feather > 0 else np.ones(size, np.float32)

    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def paste_back(frames, crop_info: CropInfo, feather_fraction: float = 0.1, device=None):
    """Blend generated 256x256 faces [B, 256, 256, 3] uint8 into the full picture -> [B, H, W, 3] uint8.

    The face is resized to the crop box and blended with a mask that fades linearly over `feather_fraction` of the
    box's shorter side, so no seam shows. Only the part of the box inside the picture is used (a box padded past
    the edge loses its padding). The result is cut to an even width and height for H.264.

    frames: a numpy array (the result is numpy) or a torch uint8 tensor (the result is a tensor on the same device).
    device: where to compute; default: the frames' device (a GPU keeps paste-back there), the CPU for arrays.
    The GPU and CPU results agree within one grey level (float rounding of the same operations).
    """
    as_numpy = not isinstance(frames, torch.Tensor)
    tensor = torch.from_numpy(np.ascontiguousarray(frames)) if as_numpy else frames
    work = torch.device(device) if device is not None else tensor.device
    box = crop_info.box
    full = crop_info.full_image
    out_w, out_h = even_size(full.shape[1], full.shape[0])
    # The visible part of the box: [top, bottom) x [left, right) of the output frame.
    left, top = max(box.x, 0), max(box.y, 0)
    right, bottom = min(box.right, out_w), min(box.bottom, out_h)
    background = torch.from_numpy(np.ascontiguousarray(full[:out_h, :out_w])).to(work)
    out = background[None].repeat(len(tensor), 1, 1, 1)
    if right <= left or bottom <= top:
        return out.cpu().numpy() if as_numpy else out
    faces = tensor.to(work).permute(0, 3, 1, 2).float()
    faces = F.interpolate(faces, size=(box.height, box.width), mode="bilinear", align_corners=False,
                          antialias=box.width < faces.shape[3] or box.height < faces.shape[2])
    faces = faces.permute(0, 2, 3, 1)[:, top - box.y:bottom - box.y, left - box.x:right - box.x]
    feather = int(round(feather_fraction * min(box.width, box.height)))
    mask = torch.from_numpy(feather_mask(box.width, box.height, feather)).to(work)
    mask = mask[top - box.y:bottom - box.y, left - box.x:right - box.x][None, :, :, None]
    region = background[top:bottom, left:right].float()[None]
    blended = (faces * mask + region * (1.0 - mask)).round_().clamp_(0, 255).to(torch.uint8)
    out[:, top:bottom, left:right] = blended
    return out.cpu().numpy() if as_numpy else out
