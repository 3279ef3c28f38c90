"""Personalize node: fine-tune the head-motion predictor on one short clip of a person, save and output the model."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from comfy_api.latest import io, ui

from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.training.personalize import PersonalizeConfig, person_clip, personalize

from . import comfy
from .common import CATEGORY, blame, log, single_audio
from .model_loader import LoadedModels, managed_networks
from .types import A2HModel, A2HPose

_NAME = re.compile(r"^[\w][\w .-]{0,99}$")  # a plain file name: letters, digits, _ . - and spaces, no folders


def _frames_at_25(image: torch.Tensor, fps: float) -> np.ndarray:
    """IMAGE frames [N, H, W, 3] in 0..1 at `fps` -> uint8 frames at 25 fps (nearest frame per 1/25 s)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] != 3:
        raise Audio2HeadError(f"input 'frames': expected IMAGE frames [N, H, W, 3], got "
                              f"{tuple(getattr(image, 'shape', ()))}")
    frames = (image.detach().cpu().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    if abs(fps - FPS) > 1e-6:
        count = int(len(frames) / fps * FPS)
        index = np.minimum(np.round(np.arange(count) * fps / FPS).astype(int), len(frames) - 1)
        frames = frames[index]
    return frames


class Audio2HeadPersonalize(io.ComfyNode):
    """Fine-tunes N_H on one clip of the target person; the result is saved to models/audio2head/<name>."""

    @classmethod
    def define_schema(cls):
        defaults = PersonalizeConfig()
        return io.Schema(
            node_id="Audio2HeadPersonalize",
            display_name="Audio2Head Personalize",
            category=f"{CATEGORY}/loaders",
            description="Personalised head motion: fine-tunes the head-motion predictor on one short clip (about "
                        "300 frames, 12 s) of the person: their frames, speech and head-pose curve. The clip's last "
                        "20 % is held out to report the error before and after. Saves a complete weights file to "
                        "models/audio2head/<name>.safetensors (it appears in the Model Loader's list) and outputs "
                        "the personalised model.",
            inputs=[
                A2HModel.Input("model", tooltip="Base networks from Audio2Head Model Loader; only the head-motion "
                                                "predictor changes."),
                io.Image.Input("frames", tooltip="The person's clip as IMAGE frames (e.g. Load Video's images); "
                                                 "face crops work best."),
                io.Audio.Input("audio", tooltip="The clip's sound."),
                A2HPose.Input("pose", tooltip="The clip's head-pose curve, one pose per frame (e.g. Audio2Head Pose "
                                              "Load of an OpenFace CSV)."),
                io.Float.Input("fps", default=float(FPS), min=1.0, max=120.0,
                               tooltip="Frame rate of 'frames' (resampled to 25 fps)."),
                io.Int.Input("steps", default=defaults.steps, min=1, max=100000,
                             tooltip="Fine-tuning steps (minutes on a CPU, seconds on a GPU)."),
                io.String.Input("name", default="personal",
                                tooltip="File name in models/audio2head (.safetensors is added)."),
            ],
            outputs=[A2HModel.Output(display_name="model", tooltip="The personalised networks.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, model, frames, audio, pose, fps, steps, name) -> io.NodeOutput:
        name = str(name).strip().removesuffix(".safetensors")
        if not _NAME.match(name):
            raise Audio2HeadError(f"input 'name': {name!r} is not a plain file name; use letters, digits, _ . - "
                                  "and spaces, without folders")
        target = comfy.model_dirs()[0] / f"{name}.safetensors"
        if target.exists() and target.resolve() == _path(model.source):
            raise Audio2HeadError(f"input 'name': {target.name} is the base model's own file; choose another name")
        with blame("frames"):
            clip = person_clip(_frames_at_25(frames, float(fps)), single_audio(audio), pose, name=name)
        progress = comfy.Progress(steps)
        config = PersonalizeConfig(steps=int(steps), device=str(model.load_device))
        with blame("model"):
            result = personalize(model.models, clip, config, out=target,
                                 progress=lambda step, total, note: progress(step, total), base_name=model.source)
        message = (f"saved {target.name}: held-out HE {result.before['he']:.4f} -> {result.after['he']:.4f}, "
                   f"HS* {result.before['hs_star']:.3f} -> {result.after['hs_star']:.3f}")
        log.info(message)
        personal = LoadedModels(managed_networks(result.models.to(model.offload_device), model.load_device,
                                                 model.offload_device), model.dtype, str(target))
        return io.NodeOutput(personal, ui=ui.PreviewText(message))


def _path(source: str) -> Path | None:
    try:
        return Path(source).resolve()
    except (OSError, ValueError):
        return None
