"""Predicted against true head motion, one panel per pose dimension, drawn with Pillow (training's validation plots)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from a2h_core.pose.curve import POSE_COLUMNS

BACKGROUND = (31, 31, 31)  # around the panels
PANEL = (18, 18, 18)  # inside a panel
TRUE_COLOUR = (200, 200, 200)  # the ground truth
PREDICTED_COLOUR = (255, 140, 40)  # the prediction
LABEL = (179, 179, 179)  # text


def plot_pose_comparison(predicted: np.ndarray, true: np.ndarray, title: str = "", width: int = 720,
                         height: int = 360) -> np.ndarray:
    """[height, width, 3] uint8: six panels (rx, ry, rz in degrees; tx, ty, tz in camera units), the truth in grey
    and the prediction in orange over frames; each panel scales to both curves and prints its range."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    top = 16
    draw.text((6, 2), f"{title}  grey: true, orange: predicted ({len(true)} frames)", fill=LABEL, font=font)
    cols, rows, gap = 3, 2, 6
    panel_w = (width - gap * (cols + 1)) // cols
    panel_h = (height - top - gap * (rows + 1)) // rows
    for d, name in enumerate(POSE_COLUMNS):
        x0 = gap + (d % cols) * (panel_w + gap)
        y0 = top + gap + (d // cols) * (panel_h + gap)
        draw.rectangle([x0, y0, x0 + panel_w, y0 + panel_h], fill=PANEL)
        scale = np.degrees if d < 3 else (lambda v: v)
        series = [scale(true[:, d]), scale(predicted[:, d])]
        low = min(float(s.min()) for s in series)
        high = max(float(s.max()) for s in series)
        if high - low < 1e-6:
            low, high = low - 1, high + 1
        for values, colour in zip(series, (TRUE_COLOUR, PREDICTED_COLOUR)):
            xs = x0 + 2 + np.arange(len(values)) * (panel_w - 4) / max(len(values) - 1, 1)
            ys = y0 + 12 + (high - values) / (high - low) * (panel_h - 16)
            draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=1)
        unit = " deg" if d < 3 else ""
        draw.text((x0 + 3, y0 + 1), f"{name} {low:.3g}..{high:.3g}{unit}", fill=LABEL, font=font)
    return np.asarray(image)
