"""A labelled plot of a head-pose curve: yaw, pitch, roll and x, y, z over time, drawn with Pillow."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from a2h_core.config import MAX_PLOT_SIDE
from a2h_core.errors import Audio2HeadError
from a2h_core.paths import atomic_output, checked_output_file
from a2h_core.pose.curve import PoseCurve

CHANNEL_COLOURS = ((242, 89, 89), (89, 217, 89), (102, 153, 255))  # first, second, third channel of a panel
BACKGROUND = (31, 31, 31)  # around the panels
PANEL = (18, 18, 18)  # inside a panel
ZERO_LINE = (89, 89, 89)  # the value 0 of a panel
LABEL = (179, 179, 179)  # scale and footer text
MIN_LABELLED = (160, 96)  # smallest width, height that has room for text; smaller plots are lines only
PANEL_NAMES = (("yaw", "pitch", "roll"), ("x", "y", "z"))


def plot_pose_curve(curve, width: int = 640, height: int = 360, frame: int | None = None) -> torch.Tensor:
    """A labelled plot of a pose curve for previews: float32 [height, width, 3] in 0..1 (one ComfyUI IMAGE frame).

    Top panel: yaw (red), pitch (green), roll (blue) in degrees. Bottom panel: x (red), y (green), z (blue) as
    the change from the first pose. Each panel scales to its data and shows its top and bottom values; the grey
    line is 0. Time runs left to right over the whole curve (the pose count and fps are printed). A curve longer
    than the plot is wide keeps every peak: each pixel column spans the extremes of the poses it covers. `frame`
    marks one pose with a white line.
    """
    if not isinstance(curve, PoseCurve):
        curve = PoseCurve(np.asarray(curve))
    try:
        width, height = int(width), int(height)
    except (TypeError, ValueError, OverflowError):
        raise Audio2HeadError(f"plot width and height must be whole numbers, got {width!r} x {height!r}") from None
    if not (32 <= width <= MAX_PLOT_SIDE and 32 <= height <= MAX_PLOT_SIDE):
        raise Audio2HeadError(f"the plot needs 32 .. {MAX_PLOT_SIDE} pixels per side, got {width} x {height}")
    labels = width >= MIN_LABELLED[0] and height >= MIN_LABELLED[1]
    font = ImageFont.load_default()
    text_height = _text_size(font, "0")[1] if labels else 0
    margin, gap = (6, 8) if labels else (2, 3)
    panel_height = (height - 2 * margin - gap - (text_height + 6 if labels else 0)) // 2
    plot_width = width - 2 * margin

    ypr = curve.to_ypr()
    ypr[:, 3:] -= ypr[:1, 3:]
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for panel in range(2):
        top = margin + panel * (panel_height + gap)
        data = ypr[:, 3 * panel:3 * panel + 3]
        low, high = min(data.min(), 0.0), max(data.max(), 0.0)
        pad = (high - low) * 0.08 if high > low else 1.0
        low, high = low - pad, high + pad

        def row(value, top=top, low=low, high=high):
            return top + (panel_height - 1) * (high - value) / (high - low)

        draw.rectangle([margin, top, margin + plot_width - 1, top + panel_height - 1], fill=PANEL)
        draw.line([(margin, row(0.0)), (margin + plot_width - 1, row(0.0))], fill=ZERO_LINE)
        for channel in range(3):
            columns, values = _column_trace(data[:, channel], plot_width)
            draw.line([(margin + x, row(v)) for x, v in zip(columns, values)], fill=CHANNEL_COLOURS[channel],
                      width=2)
        if labels:
            unit = " deg" if panel == 0 else " change"
            draw.text((margin + 3, top + 2), f"{high:+.1f}{unit}", fill=LABEL, font=font)
            draw.text((margin + 3, top + panel_height - text_height - 3), f"{low:+.1f}", fill=LABEL, font=font)
            x = width - margin - 3 - sum(_text_size(font, name + " ")[0] for name in PANEL_NAMES[panel])
            for channel, name in enumerate(PANEL_NAMES[panel]):
                draw.text((x, top + 2), name, fill=CHANNEL_COLOURS[channel], font=font)
                x += _text_size(font, name + " ")[0]
    n = len(ypr)
    footer_y = height - margin - text_height
    if labels:
        draw.text((margin, footer_y), f"{n} poses, {curve.fps:g} fps, {curve.duration:.2f} s", fill=LABEL,
                  font=font)
    if frame is not None and n > 1:
        x = margin + round(min(max(frame, 0), n - 1) * (plot_width - 1) / (n - 1))
        draw.line([(x, margin), (x, margin + 2 * panel_height + gap - 1)], fill=(255, 255, 255))
        if labels:
            label = f"frame {frame}"
            draw.text((width - margin - _text_size(font, label)[0], footer_y), label, fill=(255, 255, 255),
                      font=font)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)


def _column_trace(values: np.ndarray, plot_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (pixel column, value) of a polyline that shows `values` across `plot_width` columns.

    When there are more poses than columns, each column contributes its minimum and its maximum, so a peak that
    falls between columns is still drawn."""
    n = len(values)
    if n <= plot_width:
        columns = np.arange(n) * (plot_width - 1) / max(n - 1, 1)
        return columns, values
    column_of_pose = np.arange(n) * plot_width // n
    starts = np.searchsorted(column_of_pose, np.arange(plot_width))
    lows, highs = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
    rising = np.append(values[starts[1:]] >= values[starts[:-1]], True)  # draw each column toward its next one
    first, second = np.where(rising, lows, highs), np.where(rising, highs, lows)
    return np.repeat(np.arange(plot_width), 2), np.stack([first, second], 1).reshape(-1)


def _text_size(font, text: str) -> tuple[int, int]:
    left, _top, right, bottom = font.getbbox(text)
    return right - left, bottom


def save_png(image, path) -> Path:
    """Write an RGB image ([H, W, 3] float 0..1 or uint8, numpy or torch) as a PNG file; returns the path."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise Audio2HeadError(f"a PNG preview needs an [H, W, 3] image, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    path = checked_output_file(path, "plot file", suffixes=(".png",))
    with atomic_output(path, "plot file") as temp:
        Image.fromarray(array).save(temp, format="PNG")
    return path
