"""A labelled plot of a head-pose curve: yaw, pitch, roll and x, y, z over time."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from a2h_core.errors import Audio2HeadError
from a2h_core.pose.curve import PoseCurve


_PLOT_COLORS = np.array([(0.95, 0.35, 0.35), (0.35, 0.85, 0.35), (0.4, 0.6, 1.0)], dtype=np.float32)
_LABEL_GRAY = np.array([0.7, 0.7, 0.7], dtype=np.float32)

# A 3 x 5 pixel font for the plot labels (drawn at 2x): enough for numbers, units and channel names.
_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###", "1": ".#.|##.|.#.|.#.|###", "2": "###|..#|###|#..|###", "3": "###|..#|.##|..#|###",
    "4": "#.#|#.#|###|..#|..#", "5": "###|#..|###|..#|###", "6": "###|#..|###|#.#|###", "7": "###|..#|..#|.#.|.#.",
    "8": "###|#.#|###|#.#|###", "9": "###|#.#|###|..#|###", "-": "...|...|###|...|...", ".": "...|...|...|...|.#.",
    "+": "...|.#.|###|.#.|...", " ": "...|...|...|...|...", "A": ".#.|#.#|###|#.#|#.#", "C": ".##|#..|#..|#..|.##",
    "D": "##.|#.#|#.#|#.#|##.", "E": "###|#..|##.|#..|###", "F": "###|#..|##.|#..|#..", "G": ".##|#..|#.#|#.#|.##",
    "H": "#.#|#.#|###|#.#|#.#", "I": "###|.#.|.#.|.#.|###", "L": "#..|#..|#..|#..|###", "M": "#.#|###|###|#.#|#.#",
    "N": "##.|#.#|#.#|#.#|#.#",
    "O": ".#.|#.#|#.#|#.#|.#.", "P": "##.|#.#|##.|#..|#..", "R": "##.|#.#|##.|#.#|#.#", "S": ".##|#..|.#.|..#|##.",
    "T": "###|.#.|.#.|.#.|.#.", "W": "#.#|#.#|#.#|###|#.#", "X": "#.#|#.#|.#.|#.#|#.#", "Y": "#.#|#.#|.#.|.#.|.#.",
    "Z": "###|..#|.#.|#..|###",
}
_GLYPH_SCALE = 2


def _draw_text(canvas: np.ndarray, text: str, x: int, y: int, color: np.ndarray) -> int:
    """Draw `text` with its top-left corner at (x, y), clipped to the canvas; returns the x after it."""
    for char in text.upper():
        rows = _GLYPHS.get(char, _GLYPHS[" "]).split("|")
        glyph = np.array([[cell == "#" for cell in row] for row in rows])
        glyph = glyph.repeat(_GLYPH_SCALE, 0).repeat(_GLYPH_SCALE, 1)
        h, w = glyph.shape
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, canvas.shape[0]), min(x + w, canvas.shape[1])
        if y1 > y0 and x1 > x0:
            canvas[y0:y1, x0:x1][glyph[y0 - y:y1 - y, x0 - x:x1 - x]] = color
        x += w + _GLYPH_SCALE
    return x


def plot_pose_curve(curve, width: int = 640, height: int = 360, frame: int | None = None) -> torch.Tensor:
    """A labelled plot of a pose curve for previews: float32 [height, width, 3] in 0..1 (one ComfyUI IMAGE frame).

    Top panel: yaw (red), pitch (green), roll (blue) in degrees. Bottom panel: x (red), y (green), z (blue) as
    the change from the first pose. Each panel scales to its data and shows its top and bottom values; the grey
    line is 0. Time runs left to right over the whole curve (the pose count and fps are printed); `frame` marks
    one pose with a white line.
    """
    from a2h_core.pose import PoseCurve

    if not isinstance(curve, PoseCurve):
        curve = PoseCurve(np.asarray(curve))
    width, height = int(width), int(height)
    if width < 32 or height < 32:
        raise Audio2HeadError(f"the plot needs at least 32 x 32 pixels, got {width} x {height}")
    labels = width >= 160 and height >= 96  # room for the 10-pixel text
    ypr = curve.to_ypr()
    ypr[:, 3:] -= ypr[:1, 3:]
    canvas = np.full((height, width, 3), 0.12, dtype=np.float32)
    text_h = 5 * _GLYPH_SCALE
    margin, gap = (6, 8) if labels else (2, 3)
    panel_h = (height - 2 * margin - gap - (text_h + 4 if labels else 0)) // 2
    plot_w = width - 2 * margin
    n = len(ypr)
    # Pose position of every pixel column, and the poses each column covers (their extremes are kept).
    at = np.arange(plot_w) * (n - 1) / max(plot_w - 1, 1)
    first = np.minimum(np.floor(at).astype(int), n - 1)
    stop = np.minimum(np.append(first[1:], n - 1) + 1, n)
    rows = np.arange(height)[:, None]
    names = (("YAW", "PITCH", "ROLL"), ("X", "Y", "Z"))
    for panel in range(2):
        top = margin + panel * (panel_h + gap)
        canvas[top:top + panel_h, margin:margin + plot_w] = 0.07
        data = ypr[:, 3 * panel:3 * panel + 3]
        low, high = min(data.min(), 0.0), max(data.max(), 0.0)
        pad = (high - low) * 0.08 if high > low else 1.0
        low, high = low - pad, high + pad

        def to_row(value):
            return top + (panel_h - 1) * (high - value) / (high - low)

        canvas[int(round(to_row(0.0))), margin:margin + plot_w] = 0.35
        region = canvas[:, margin:margin + plot_w]
        for channel in range(3):
            values = np.interp(at, np.arange(n), data[:, channel])
            nxt = np.append(values[1:], values[-1])
            lo, hi = np.minimum(values, nxt), np.maximum(values, nxt)
            if n > plot_w:
                lo = np.minimum(lo, np.array([data[a:b, channel].min() for a, b in zip(first, stop)]))
                hi = np.maximum(hi, np.array([data[a:b, channel].max() for a, b in zip(first, stop)]))
            mask = (rows >= np.floor(to_row(hi)) - 1) & (rows <= np.ceil(to_row(lo)))  # 2 px thick
            mask[:top] = False
            mask[top + panel_h:] = False
            region[mask] = _PLOT_COLORS[channel]
        if not labels:
            continue
        unit = " DEG" if panel == 0 else " CHANGE"
        _draw_text(canvas, f"{high:+.1f}{unit}", margin + 3, top + 3, _LABEL_GRAY)
        _draw_text(canvas, f"{low:+.1f}", margin + 3, top + panel_h - text_h - 3, _LABEL_GRAY)
        x = width - margin - 3 - sum(len(name) + 1 for name in names[panel]) * 4 * _GLYPH_SCALE
        for channel, name in enumerate(names[panel]):
            x = _draw_text(canvas, name + " ", x, top + 3, _PLOT_COLORS[channel])
    if labels:
        footer = f"{n} POSES {curve.fps:g} FPS {curve.duration:.2f} S"
        _draw_text(canvas, footer, margin, height - margin - text_h, _LABEL_GRAY)
    if frame is not None and n > 1:
        x = margin + int(round(min(max(frame, 0), n - 1) * (plot_w - 1) / (n - 1)))
        canvas[margin:margin + 2 * panel_h + gap, x] = 1.0
        if labels:
            label = f"FRAME {frame}"
            _draw_text(canvas, label, width - margin - len(label) * 4 * _GLYPH_SCALE, height - margin - text_h, 1.0)
    return torch.from_numpy(canvas)


def save_png(image, path) -> None:
    """Write an RGB image ([H, W, 3] float 0..1 or uint8, numpy or torch) as a PNG file."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(array).save(path, format="PNG")
