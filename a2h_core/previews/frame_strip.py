"""Real against generated frames, and a per-frame metric curve, drawn with Pillow (training's validation plots and
`evaluate video`'s figures)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (31, 31, 31)
PANEL = (18, 18, 18)
LABEL = (179, 179, 179)
CURVE = (255, 140, 40)


def frame_strip(rows: dict[str, np.ndarray], max_frames: int = 8, tile: int = 128) -> np.ndarray:
    """[H, W, 3] uint8: one labelled row per entry of `rows` (name -> frames [N, S, S, 3] uint8), up to `max_frames`
    frames evenly spaced over N, each resized to `tile` pixels."""
    font = ImageFont.load_default()
    count = max(len(frames) for frames in rows.values())
    picks = np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int))
    label_h = 14
    image = Image.new("RGB", (len(picks) * tile, len(rows) * (tile + label_h)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for r, (name, frames) in enumerate(rows.items()):
        y = r * (tile + label_h)
        draw.text((3, y + 1), name, fill=LABEL, font=font)
        for c, index in enumerate(picks):
            frame = frames[min(index, len(frames) - 1)]
            image.paste(Image.fromarray(np.ascontiguousarray(frame)).resize((tile, tile), Image.BILINEAR),
                        (c * tile, y + label_h))
    return np.asarray(image)


def plot_per_frame(values: np.ndarray, title: str, unit: str = "", width: int = 640, height: int = 240) -> np.ndarray:
    """[height, width, 3] uint8: a metric over frames (e.g. PSNR per frame), with its range and mean printed."""
    values = np.asarray(values, np.float64)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if high - low < 1e-6:
        low, high = low - 1, high + 1
    draw.text((6, 2), f"{title}: mean {np.mean(finite) if len(finite) else float('nan'):.3f}{unit}, range "
                      f"{low:.3g}..{high:.3g}{unit}, {len(values)} frames", fill=LABEL, font=font)
    x0, y0, x1, y1 = 6, 18, width - 6, height - 6
    draw.rectangle([x0, y0, x1, y1], fill=PANEL)
    if len(values) > 1:
        xs = x0 + 2 + np.arange(len(values)) * (x1 - x0 - 4) / (len(values) - 1)
        ys = y1 - 2 - (np.clip(np.nan_to_num(values, nan=low, posinf=high), low, high) - low) / (high - low) * (
            y1 - y0 - 4)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=CURVE, width=1)
    return np.asarray(image)
