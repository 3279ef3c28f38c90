"""Test photographs with known faces, built from scikit-image's astronaut portrait (a real photo, public domain).

Each scene pastes the portrait at a known place and scale into a larger canvas (a smooth, face-free background),
so the true face box is known: `ASTRONAUT_FACE` mapped through the same placement. Scenes cover what users load:
a large picture, a small face in a corner, grayscale, a tilted head, a second smaller face, a face at the edge.
Also: a video of the portrait rolled by a known curve while it moves across the frame (`rolling_video`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# The astronaut's face in skimage.data.astronaut() (512x512): x, y, width, height, hand-checked (brow to chin,
# ear to ear), and the centre of the five landmarks (between the eyes and the mouth).
ASTRONAUT_FACE = (178.0, 56.0, 92.0, 118.0)
ASTRONAUT_FACE_CENTRE = (224.0, 122.0)


def astronaut() -> np.ndarray:
    """skimage.data.astronaut(): [512, 512, 3] uint8 RGB."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth coloured background (a gradient plus blurred noise) with nothing face-like in it."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(60, 200, size=(max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    ramp = np.linspace(-25, 25, width, dtype=np.float32)[None, :, None]
    return np.clip(smooth + ramp, 0, 255).astype(np.uint8)


@dataclass
class Scene:
    """A picture and the true boxes of the faces in it (x, y, w, h), largest first."""

    name: str
    image: np.ndarray  # [H, W, 3] uint8 RGB
    faces: list[tuple[float, float, float, float]] = field(default_factory=list)


def _paste(canvas: np.ndarray, picture: np.ndarray, x: int, y: int) -> None:
    """Paste `picture` with its top-left corner at (x, y), clipped to the canvas."""
    h, w = picture.shape[:2]
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + h, canvas.shape[0]), min(x + w, canvas.shape[1])
    canvas[top:bottom, left:right] = picture[top - y:bottom - y, left - x:right - x]


def placed(picture: np.ndarray, scale: float, angle: float = 0.0) -> tuple[np.ndarray, callable]:
    """The portrait scaled (and rotated by `angle` degrees counter-clockwise about its centre, as PIL does), and a
    function mapping a point of the original portrait into it."""
    h, w = picture.shape[:2]
    size = (round(w * scale), round(h * scale))
    image = Image.fromarray(picture).resize(size, Image.BICUBIC)
    if angle:
        image = image.rotate(angle, resample=Image.BICUBIC, fillcolor=(128, 128, 128))

    def mapping(x: float, y: float) -> tuple[float, float]:
        px, py = x * size[0] / w, y * size[1] / h
        if not angle:
            return px, py
        cx, cy = size[0] / 2, size[1] / 2
        t = np.radians(angle)  # counter-clockwise on screen (y down): x' = c dx + s dy, y' = -s dx + c dy
        dx, dy = px - cx, py - cy
        return cx + np.cos(t) * dx + np.sin(t) * dy, cy - np.sin(t) * dx + np.cos(t) * dy

    return np.asarray(image), mapping


def _face_box(mapping, x: int, y: int) -> tuple[float, float, float, float]:
    fx, fy, fw, fh = ASTRONAUT_FACE
    corners = np.array([mapping(fx + a, fy + b) for a in (0, fw) for b in (0, fh)])
    (left, top), (right, bottom) = corners.min(0), corners.max(0)
    return (left + x, top + y, right - left, bottom - top)


def scene(name: str, width: int, height: int, placements: list[tuple[int, int, float, float]],
          gray: bool = False, seed: int = 0) -> Scene:
    """Portraits pasted at (x, y) with (scale, angle) into a width x height canvas; the first is the largest."""
    canvas = background(width, height, seed)
    faces = []
    for x, y, scale, angle in placements:
        picture, mapping = placed(astronaut(), scale, angle)
        _paste(canvas, picture, x, y)
        faces.append(_face_box(mapping, x, y))
    if gray:
        canvas = np.repeat(np.asarray(Image.fromarray(canvas).convert("L"))[:, :, None], 3, axis=2)
    return Scene(name, canvas, faces)


def build_scenes() -> list[Scene]:
    """The scenes of the face-detection tests (each a few hundred kilobytes, about 1 to 3 megapixels)."""
    return [
        scene("large_canvas", 1600, 1200, [(500, 260, 1.5, 0.0)]),
        scene("small_face_in_corner", 1400, 1000, [(1050, 620, 0.6, 0.0)], seed=1),
        scene("grayscale", 1200, 900, [(300, 150, 1.2, 0.0)], gray=True, seed=2),
        scene("rotated", 1200, 1000, [(250, 150, 1.2, 20.0)], seed=3),
        scene("second_smaller_face", 1600, 1000, [(100, 150, 1.4, 0.0), (1000, 400, 0.7, 0.0)], seed=4),
        scene("face_at_the_edge", 1000, 800, [(-170, 20, 1.0, 0.0)], seed=5),
        scene("phone_portrait", 900, 1200, [(-60, 250, 1.6, 0.0)], seed=6),
    ]


def rolling_video(frames: int = 50, size: int = 320, scale: float = 0.5, amplitude: float = 12.0,
                  travel: int = 60, mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A clip of the portrait rolled in-plane by a known curve while it moves across the frame.

    Returns frames [N, size, size, 3] uint8 and the true roll per frame in degrees, in the project's convention
    (positive: the head tilts clockwise on screen). With `mirror`, every frame is flipped left-right (and the true
    roll changes sign).
    """
    t = np.arange(frames)
    roll = amplitude * np.sin(2 * np.pi * t / frames * 1.5)
    shift = np.round(travel * (t / max(frames - 1, 1) - 0.5)).astype(int)
    out = np.empty((frames, size, size, 3), np.uint8)
    portrait = astronaut()
    base = background(size, size, 7)
    for i in range(frames):
        # PIL rotates counter-clockwise for a positive angle: a clockwise roll of r degrees is rotate(-r).
        picture, mapping = placed(portrait, scale, -roll[i])
        fx, fy = mapping(*ASTRONAUT_FACE_CENTRE)
        frame = base.copy()
        _paste(frame, picture, int(round(size / 2 - fx)) + shift[i], int(round(size / 2 - fy)) + 10)
        out[i] = frame[:, ::-1] if mirror else frame
    return out, (-roll if mirror else roll)
