"""Warping generator node: source image + source and driving keypoints -> video frames (IMAGE), fps and a VIDEO."""
from __future__ import annotations

from comfy_api.latest import io

from a2h_core.audio.soundtrack import load_soundtrack
from a2h_core.config import FPS
from a2h_core.inference.wrapper import check_keypoint_pair

from . import comfy
from .common import CATEGORY, blame, single_audio
from .pose import image_input, model_input, source_tensor
from .types import A2HKeypoints
from .video import FRAMES_ALL, frames_input, video_output, write_streamed

BATCH_SIZE_TOOLTIP = ("Frames per generator pass. Larger is faster on a GPU and needs more memory; 4-8 suits a "
                      "CPU.")


class Audio2HeadGenerator(io.ComfyNode):
    """Occlusion-aware warping generator: renders one 256x256 frame per driving keypoint row."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadGenerator",
            display_name="Audio2Head Generator",
            category=f"{CATEGORY}/motion",
            description="Warps the portrait to each frame's driving keypoints. Connect the speech to audio and the "
                        "video output to Save Video (streamed: memory stays flat for long clips), or wire frames and "
                        "fps into Create Video together with the audio.",
            inputs=[
                model_input(), image_input(),
                A2HKeypoints.Input("source_keypoints", tooltip="From Audio2Head Keypoint Detector."),
                A2HKeypoints.Input("driving_keypoints", tooltip="From Audio2Head Motion Field (one row per frame)."),
                io.Int.Input("batch_size", default=8, min=1, max=256, tooltip=BATCH_SIZE_TOOLTIP),
                io.Audio.Input("audio", optional=True,
                               tooltip="The speech the keypoints were made from: the video output's sound (trimmed "
                                       "to the frames). Without it the video is silent."),
                frames_input(),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="Video frames [N, 256, 256, 3] (or only the first, "
                                                               "see frames_output)."),
                io.Float.Output(display_name="fps", tooltip="Frame rate of the frames (25)."),
                video_output(),
            ],
        )

    @classmethod
    def execute(cls, model, image, source_keypoints, driving_keypoints, batch_size, audio=None,
                frames_output=FRAMES_ALL) -> io.NodeOutput:
        # Both sockets have one type, so the canvas allows them swapped: one row against many says so.
        check_keypoint_pair(source_keypoints, driving_keypoints, "input 'source_keypoints'",
                            "input 'driving_keypoints'")
        source = source_tensor(image, model)
        soundtrack = None
        if audio is not None:
            with blame("audio"):
                soundtrack = load_soundtrack(single_audio(audio))
        num_frames = len(driving_keypoints)
        progress = comfy.Progress(num_frames)  # counts frames; its update raises on Cancel inside ComfyUI
        with model.wrapper() as wrapper:
            batches = wrapper.render_frames(source, source_keypoints, driving_keypoints, batch_size=batch_size,
                                            progress=progress)
            image_out, video = write_streamed(batches, num_frames, frames_output, soundtrack,
                                              settings={"node": "Audio2HeadGenerator", "batch_size": batch_size})
        return io.NodeOutput(image_out, float(FPS), video)
