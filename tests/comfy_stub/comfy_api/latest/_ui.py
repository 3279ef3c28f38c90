"""UI outputs. ComfyUI saves preview images to its temp folder; the double keeps the tensor instead."""
from __future__ import annotations


class PreviewImage:
    def __init__(self, image, animated: bool = False, cls=None, **kwargs):
        self.image = image
        self.animated = animated

    def as_dict(self) -> dict:
        return {"images": [{"filename": f"preview_{i}.png", "subfolder": "", "type": "temp"}
                           for i in range(len(self.image))], "animated": (self.animated,)}


class PreviewText:
    def __init__(self, value: str, **kwargs):
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}
