"""Crop a face out of a larger picture for the networks, and paste the generated frames back into it."""
from __future__ import annotations

import numpy as np
import torch
from comfy_api.latest import io, ui

from a2h_core.config import IMAGE_SIZE
from a2h_core.face import DEFAULT_FRAMING, DETECTORS, face_crop, load_face_detector
from a2h_core.io.image import CropBox, even_size, feather_mask, paste_back, prepare_source_image
from a2h_core.previews.face_boxes import draw_face_crop

from . import comfy
from .common import BATCH_POLICY, CATEGORY, blame, frames_to_image, single_image
from .types import A2HCrop, A2HModel

PASTE_CHUNK = 16  # frames blended at a time, so the uint8 intermediates stay small
PREVIEW_SIDE = 1024  # longest side of the crop preview


CROP_MODES = ("auto", "manual")
DETECTOR_TOOLTIP = ("Face detector. auto: YuNet, downloaded once into models/face_detection (or put yunet_final.pth "
                    "there yourself); without it the offline MTCNN whose weights ship in the 'mtcnn' package. The "
                    "console says which one ran.")


def face_detector_inputs() -> list:
    """Inputs shared by the nodes that detect faces."""
    return [io.Combo.Input("detector", options=list(DETECTORS), default="auto", tooltip=DETECTOR_TOOLTIP)]


def detector_for(choice: str):
    """The cached detector for a choice, on ComfyUI's device, with YuNet's weights in models/face_detection."""
    return load_face_detector(choice, models_dir=comfy.face_models_dir(), device=comfy.load_device(),
                              log=lambda message: print(f"[Audio2Head] {message}"))


class Audio2HeadCrop(io.ComfyNode):
    """Finds the face (or takes a manual box) and cuts the model's square crop, resized to the model's image size
    (256x256 without a model)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadCrop",
            display_name="Audio2Head Crop",
            category=f"{CATEGORY}/image",
            description="Finds the face and cuts the square head-and-shoulders crop the model was trained on "
                        "(framing calibrated on the original's demo images), resized to 256x256 (or the optional "
                        "model's image size). Works with any "
                        "portrait size; a crop reaching past the edge is padded. Feed 'image' to the Audio2Head "
                        "nodes and 'crop' to Audio2Head Paste Back. The preview shows the face box (green), "
                        "landmarks and the crop (orange).",
            inputs=[
                io.Image.Input("image", tooltip=f"The full picture. {BATCH_POLICY}"),
                io.Combo.Input("mode", options=list(CROP_MODES), default="auto",
                               tooltip="auto: detect the face and frame it; manual: use x, y, width, height."),
                *face_detector_inputs(),
                io.Int.Input("face_index", default=0, min=0, max=64,
                             tooltip="auto: which face, 0 = the largest (a warning lists them when there are "
                                     "several)."),
                io.Float.Input("crop_scale", default=DEFAULT_FRAMING.scale, min=0.5, max=20.0, step=0.01,
                               tooltip="auto: crop side in face sizes (larger shows more shoulders)."),
                io.Float.Input("crop_offset", default=DEFAULT_FRAMING.offset, min=-5.0, max=5.0, step=0.01,
                               tooltip="auto: crop centre below the face centre, in face sizes (more negative moves "
                                       "the crop up)."),
                io.Int.Input("x", default=0, min=-16384, max=16384, tooltip="manual: left edge of the box, pixels."),
                io.Int.Input("y", default=0, min=-16384, max=16384, tooltip="manual: top edge of the box, pixels."),
                io.Int.Input("width", default=256, min=1, max=16384, tooltip="manual: box width in pixels."),
                io.Int.Input("height", default=256, min=1, max=16384, tooltip="manual: box height in pixels."),
                A2HModel.Input("model", optional=True,
                               tooltip="Networks from Audio2Head Model Loader: the crop is resized to their image "
                                       "size (512 for a 512-pixel model); without, 256x256."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The square face crop the networks see (256x256, or "
                                                              "the connected model's image size)."),
                A2HCrop.Output(display_name="crop", tooltip="The full picture and the box, for paste-back."),
                io.Image.Output(display_name="preview", tooltip="The picture with the boxes drawn (at most 1024 px)."),
            ],
        )

    @classmethod
    def execute(cls, image, mode, detector, face_index, crop_scale, crop_offset, x, y, width,
                height, model=None) -> io.NodeOutput:
        picture = single_image(image)
        if mode == "auto":
            with blame("image / detector"):
                found = face_crop(picture, detector=detector_for(detector), face_index=face_index or None,
                                  scale=crop_scale, offset=crop_offset, what="the image")
            print(f"[Audio2Head] face found by {found.detector_info}: crop {found.box.to_list()}")
            box, drawn = found.box, found
        else:
            box = drawn = CropBox(x, y, width, height)
        with blame("image / x, y, width, height"):
            source, crop = prepare_source_image(picture, crop=box, size=model.models.config.image_size if model
                                                else IMAGE_SIZE)
        preview = frames_to_image(draw_face_crop(picture, drawn, max_side=PREVIEW_SIDE)[None])
        return io.NodeOutput(source.permute(0, 2, 3, 1).contiguous(), crop, preview,
                             ui=ui.PreviewImage(preview, cls=cls))


def placed_mask(crop, feather: float) -> torch.Tensor:
    """The blend mask of paste-back in full-frame coordinates, as a ComfyUI MASK [1, H, W]."""
    box = crop.box
    out_w, out_h = even_size(crop.full_image.shape[1], crop.full_image.shape[0])
    mask = np.zeros((out_h, out_w), dtype=np.float32)
    face = feather_mask(box.width, box.height, int(round(feather * min(box.width, box.height))))
    left, top = max(box.x, 0), max(box.y, 0)
    right, bottom = min(box.right, out_w), min(box.bottom, out_h)
    if right > left and bottom > top:
        mask[top:bottom, left:right] = face[top - box.y:bottom - box.y, left - box.x:right - box.x]
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
        uint8 = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
        device = comfy.load_device()  # blend on the GPU when ComfyUI has one; the result comes back as a CPU IMAGE
        device = device if device.type == "cuda" else torch.device("cpu")
        progress = comfy.Progress(len(uint8))
        chunks = []
        for start in range(0, len(uint8), PASTE_CHUNK):
            with blame("frames"):
                pasted = paste_back(uint8[start:start + PASTE_CHUNK], crop, feather, device=device)
                chunks.append(frames_to_image(pasted.cpu()))
            progress.step(len(chunks[-1]))
        return io.NodeOutput(torch.cat(chunks), placed_mask(crop, feather))
