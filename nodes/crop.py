"""Crop a face out of a larger picture for the networks, and paste the generated frames back into it."""
from __future__ import annotations

import numpy as np
import torch
from comfy_api.latest import io

from a2h_core.io.image import CropBox, even_size, feather_mask, paste_back, prepare_source_image

from . import comfy
from .common import BATCH_POLICY, CATEGORY, blame, frames_to_image, single_image
from .types import A2HCrop

PASTE_CHUNK = 16  # frames blended at a time, so the uint8 intermediates stay small


class Audio2HeadCrop(io.ComfyNode):
    """Cuts a face box out of a picture; the box is resized to the 256x256 network input."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadCrop",
            display_name="Audio2Head Crop",
            category=f"{CATEGORY}/image",
            description="Crops the face region of a larger picture (a square box around the head with some margin "
                        "works best) and resizes it to 256x256. Feed 'image' to the Audio2Head nodes and 'crop' to "
                        "Audio2Head Paste Back.",
            inputs=[
                io.Image.Input("image", tooltip=f"The full picture. {BATCH_POLICY}"),
                io.Int.Input("x", default=0, min=0, max=16384, tooltip="Left edge of the face box, in pixels."),
                io.Int.Input("y", default=0, min=0, max=16384, tooltip="Top edge of the face box, in pixels."),
                io.Int.Input("width", default=256, min=1, max=16384, tooltip="Width of the face box, in pixels."),
                io.Int.Input("height", default=256, min=1, max=16384, tooltip="Height of the face box, in pixels."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The 256x256 face crop the networks see."),
                A2HCrop.Output(display_name="crop", tooltip="The full picture and the box, for paste-back."),
            ],
        )

    @classmethod
    def execute(cls, image, x, y, width, height) -> io.NodeOutput:
        with blame("image / x, y, width, height"):
            source, crop = prepare_source_image(single_image(image), crop=CropBox(x, y, width, height))
        return io.NodeOutput(source.permute(0, 2, 3, 1).contiguous(), crop)


def placed_mask(crop, feather: float) -> torch.Tensor:
    """The blend mask of paste-back in full-frame coordinates, as a ComfyUI MASK [1, H, W]."""
    box = crop.box
    out_w, out_h = even_size(crop.full_image.shape[1], crop.full_image.shape[0])
    mask = np.zeros((out_h, out_w), dtype=np.float32)
    face = feather_mask(box.width, box.height, int(round(feather * min(box.width, box.height))))
    visible = mask[box.y:box.y + box.height, box.x:box.x + box.width]
    visible[:] = face[:visible.shape[0], :visible.shape[1]]
    return torch.from_numpy(mask)[None]


class Audio2HeadPasteBack(io.ComfyNode):
    """Blends generated 256x256 frames back into the full picture with a feathered edge."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPasteBack",
            display_name="Audio2Head Paste Back",
            category=f"{CATEGORY}/image",
            description="Puts the animated face back into the full picture of Audio2Head Crop. The output is cut "
                        "to an even width and height, as H.264 in Save Video requires.",
            inputs=[
                io.Image.Input("frames", tooltip="Generated frames (from Audio2Head Generator)."),
                A2HCrop.Input("crop", tooltip="From Audio2Head Crop."),
                io.Float.Input("feather", default=0.1, min=0.0, max=0.5, step=0.01,
                               tooltip="Width of the blend edge as a fraction of the box's shorter side."),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="Full-size frames."),
                io.Mask.Output(display_name="mask", tooltip="Where the face was blended in (1 = generated)."),
            ],
        )

    @classmethod
    def execute(cls, frames, crop, feather) -> io.NodeOutput:
        uint8 = (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        progress = comfy.Progress(len(uint8))
        chunks = []
        for start in range(0, len(uint8), PASTE_CHUNK):
            with blame("frames"):
                chunks.append(frames_to_image(paste_back(uint8[start:start + PASTE_CHUNK], crop, feather)))
            progress.step(len(chunks[-1]))
        return io.NodeOutput(torch.cat(chunks), placed_mask(crop, feather))
