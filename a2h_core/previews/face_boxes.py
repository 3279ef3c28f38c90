"""The automatic crop drawn over the picture: the face box, its landmarks, the square crop, and other faces."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from a2h_core.face.framing import FaceCrop
from a2h_core.io.image import CropBox, load_image

FACE_COLOUR = (40, 220, 60)  # the detector's box of the chosen face
CROP_COLOUR = (255, 150, 0)  # the square crop the network sees
OTHER_COLOUR = (160, 160, 160)  # faces found but not used
LANDMARK_COLOUR = (255, 40, 40)


def draw_face_crop(image, crop: FaceCrop | CropBox, max_side: int | None = None) -> np.ndarray:
    """[H, W, 3] uint8: `image` with the boxes of `crop` drawn, shrunk to at most `max_side` pixels if given.

    `crop` is an automatic crop (face box, landmarks, crop and other faces are drawn) or a manual CropBox (only the
    crop). Lines are about 0.4 % of the picture's longer side thick (at least 2 pixels), so they show at any size;
    the part of a crop outside the picture is drawn on a grey margin added around it."""
    rgb = load_image(image)
    height, width = rgb.shape[:2]
    box = crop if isinstance(crop, CropBox) else crop.box
    margin_left, margin_top = max(0, -box.x), max(0, -box.y)
    margin_right, margin_bottom = max(0, box.right - width), max(0, box.bottom - height)
    canvas = np.full((height + margin_top + margin_bottom, width + margin_left + margin_right, 3), 90, np.uint8)
    canvas[margin_top:margin_top + height, margin_left:margin_left + width] = rgb
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    line = max(2, round(0.004 * max(canvas.shape[:2])))

    def rect(x, y, w, h, colour):
        draw.rectangle([x + margin_left, y + margin_top, x + margin_left + w - 1, y + margin_top + h - 1],
                       outline=colour, width=line)

    if isinstance(crop, FaceCrop):
        for index, face in enumerate(crop.faces):
            if index != crop.index:
                rect(*face.box, OTHER_COLOUR)
        rect(*crop.face.box, FACE_COLOUR)
        for x, y in crop.face.landmarks:
            r = line * 1.5
            draw.ellipse([x + margin_left - r, y + margin_top - r, x + margin_left + r, y + margin_top + r],
                         fill=LANDMARK_COLOUR)
    rect(box.x, box.y, box.width, box.height, CROP_COLOUR)
    if max_side and max(picture.size) > max_side:
        factor = max_side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * factor)), max(1, round(picture.height * factor))),
                                 Image.BILINEAR)
    return np.asarray(picture)
