"""Audio features node: a ComfyUI AUDIO -> the 41 acoustic features per 10 ms the networks were trained on."""
from __future__ import annotations

import numpy as np
import torch
from comfy_api.latest import io, ui

from a2h_core.config import FPS
from a2h_core.audio.features import AudioFeatures, extract_features

from .common import CATEGORY, blame, single_audio
from .types import A2HFeatures

PLOT_HEIGHT = 164  # 41 feature rows, 4 pixels each
PLOT_MAX_WIDTH = 1024  # long clips are squeezed to this many columns


def feature_plot(features: AudioFeatures) -> torch.Tensor:
    """A heat map of the features (rows: features, top = MFCC 0; columns: time), each row scaled to 0..1."""
    values = np.asarray(features.values, dtype=np.float64).T  # [41, rows]
    low = values.min(axis=1, keepdims=True)
    span = values.max(axis=1, keepdims=True) - low
    scaled = np.where(span > 0, (values - low) / np.where(span > 0, span, 1), 0.0)
    plot = torch.from_numpy(scaled).float()[None, None]
    width = min(values.shape[1], PLOT_MAX_WIDTH)
    plot = torch.nn.functional.interpolate(plot, size=(PLOT_HEIGHT, width), mode="nearest")[0, 0]
    # a blue-to-yellow ramp: easier to read than gray
    return torch.stack([plot, 0.3 + 0.5 * plot, 1.0 - plot], dim=-1)[None].clamp(0, 1)


class Audio2HeadAudioFeatures(io.ComfyNode):
    """Computes the model's audio features (13 MFCC, 26 log filter bank, pitch, voiced flag; 4 rows per frame)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadAudioFeatures",
            display_name="Audio2Head Audio Features",
            category=f"{CATEGORY}/audio",
            description="Audio -> the 41 features per 10 ms Audio2Head was trained on (mono 16 kHz; any sample "
                        "rate and channel count is converted). The video gets one frame per 40 ms at 25 fps.",
            inputs=[
                io.Audio.Input("audio", tooltip="Speech to animate. Channels are averaged; a batch of several "
                                                "clips uses the first one."),
            ],
            outputs=[
                A2HFeatures.Output(display_name="features", tooltip="Audio features for the pose predictor and the "
                                                                     "motion field generator."),
                io.Int.Output(display_name="frames", tooltip="Number of video frames the audio gives (25 fps)."),
                io.Float.Output(display_name="fps", tooltip="Video frame rate (25)."),
            ],
        )

    @classmethod
    def execute(cls, audio) -> io.NodeOutput:
        with blame("audio"):
            features = extract_features(single_audio(audio))
        return io.NodeOutput(features, features.num_frames, float(FPS),
                             ui=ui.PreviewImage(feature_plot(features), cls=cls))
