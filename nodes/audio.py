"""Audio features node: a ComfyUI AUDIO -> the 41 acoustic features per 10 ms the networks were trained on."""
from __future__ import annotations

from comfy_api.latest import io, ui

from a2h_core.audio.features import extract_features
from a2h_core.config import FPS
from a2h_core.previews.features_plot import plot_features

from . import comfy
from .common import CATEGORY, blame, single_audio
from .types import A2HFeatures


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
            features = extract_features(single_audio(audio), progress=comfy.Progress(1))
        return io.NodeOutput(features, features.num_frames, float(FPS),
                             ui=ui.PreviewImage(plot_features(features), cls=cls))
