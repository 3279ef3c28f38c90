"""Conversions at the node boundary shared by several nodes: ComfyUI tensors in, UI payloads out, input blame."""
from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np
import torch

from a2h_core.errors import A2HWarning, Audio2HeadError

log = logging.getLogger("Audio2Head")

CATEGORY = "Audio2Head"
POSE_UI_KEY = "a2h_pose"  # key of the pose-curve payload in a node's UI output (read by web/js)
BATCH_POLICY = "Only the first image of a batch is used (a warning says so when B > 1)."


@contextlib.contextmanager
def blame(input_name: str):
    """Re-raise a library error so that the message names the node input it came from."""
    try:
        yield
    except Audio2HeadError as error:
        raise Audio2HeadError(f"input '{input_name}': {error}") from error


def single_image(image: torch.Tensor, input_name: str = "image") -> torch.Tensor:
    """The first image of a ComfyUI IMAGE batch as [1, H, W, C] (see BATCH_POLICY)."""
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        raise Audio2HeadError(f"input '{input_name}': expected a ComfyUI IMAGE tensor [B, H, W, C], "
                              f"got {type(image).__name__} {tuple(getattr(image, 'shape', ()))}")
    if image.dim() == 3:
        image = image[None]
    if image.shape[0] == 0:
        raise Audio2HeadError(f"input '{input_name}': the image batch is empty")
    if image.shape[0] > 1:
        message = f"input '{input_name}' holds {image.shape[0]} images; Audio2Head uses the first one only"
        warnings.warn(message, A2HWarning, stacklevel=2)
        log.warning(message)
    return image[:1]


def single_audio(audio: dict, input_name: str = "audio") -> dict:
    """The first clip of a ComfyUI AUDIO batch (same policy as images: a warning when B > 1)."""
    waveform = audio.get("waveform") if isinstance(audio, dict) else None
    if isinstance(waveform, torch.Tensor) and waveform.dim() == 3 and waveform.shape[0] > 1:
        message = f"input '{input_name}' holds {waveform.shape[0]} clips; Audio2Head uses the first one only"
        warnings.warn(message, A2HWarning, stacklevel=2)
        log.warning(message)
        return {**audio, "waveform": waveform[:1]}
    return audio


def frames_to_image(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] -> ComfyUI IMAGE float32 [N, H, W, 3] in 0..1."""
    if isinstance(frames, np.ndarray):  # a read-only batch (shared with the encoder thread) is copied: torch needs W
        frames = np.require(frames, requirements="W")
    frames = torch.as_tensor(frames)
    if frames.dtype == torch.uint8:
        return frames.to(torch.float32) / 255.0
    return frames.to(torch.float32).clamp(0, 1)


def pose_ui(curve) -> dict:
    """UI payload plotting a pose curve on the node: {POSE_UI_KEY: [{fps, yaw, pitch, roll, x, y, z}]}.

    Angles are degrees, translations the model's camera units; values are rounded to keep the message small.
    """
    ypr = np.asarray(curve.to_ypr(), dtype=np.float64)
    payload = {"fps": float(curve.fps), "frames": len(ypr)}
    for column, name in enumerate(("yaw", "pitch", "roll", "x", "y", "z")):
        payload[name] = np.round(ypr[:, column], 3).tolist()
    return {POSE_UI_KEY: [payload]}
