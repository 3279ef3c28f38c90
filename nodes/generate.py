"""Warping generator node: source image + source and driving keypoints -> video frames (IMAGE) and fps."""
from __future__ import annotations

import torch
from comfy_api.latest import io

from a2h_core.config import FPS
from a2h_core.inference.wrapper import check_keypoint_pair

from . import comfy
from .common import CATEGORY, frames_to_image
from .pose import image_input, model_input, source_tensor
from .types import A2HKeypoints

BATCH_SIZE_TOOLTIP = ("Frames per generator pass. Larger is faster on a GPU and needs more memory; 4-8 suits a "
                      "CPU.")


def render_video(wrapper, source, kp_source, kp_driving, batch_size: int) -> torch.Tensor:
    """All frames as a ComfyUI IMAGE [N, 256, 256, 3]; the progress bar counts frames (and handles Cancel)."""
    progress = comfy.Progress(len(kp_driving))
    video = None
    done = 0
    for frames in wrapper.render_frames(source, kp_source, kp_driving, batch_size=batch_size, progress=progress):
        if video is None:  # filled in place: the float frames are never held twice
            video = torch.empty((len(kp_driving), *frames.shape[1:]), dtype=torch.float32)
        video[done:done + len(frames)] = frames_to_image(frames)
        done += len(frames)
    return video


class Audio2HeadGenerator(io.ComfyNode):
    """Occlusion-aware warping generator: renders one 256x256 frame per driving keypoint row."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadGenerator",
            display_name="Audio2Head Generator",
            category=f"{CATEGORY}/motion",
            description="Warps the portrait to each frame's driving keypoints. Wire frames and fps into Create "
                        "Video together with the original audio, then Save Video.",
            inputs=[
                model_input(), image_input(),
                A2HKeypoints.Input("source_keypoints", tooltip="From Audio2Head Keypoint Detector."),
                A2HKeypoints.Input("driving_keypoints", tooltip="From Audio2Head Motion Field (one row per frame)."),
                io.Int.Input("batch_size", default=8, min=1, max=256, tooltip=BATCH_SIZE_TOOLTIP),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="Video frames [N, 256, 256, 3]."),
                io.Float.Output(display_name="fps", tooltip="Frame rate of the frames (25)."),
            ],
        )

    @classmethod
    def execute(cls, model, image, source_keypoints, driving_keypoints, batch_size) -> io.NodeOutput:
        # Both sockets have one type, so the canvas allows them swapped: one row against many says so.
        check_keypoint_pair(source_keypoints, driving_keypoints, "input 'source_keypoints'",
                            "input 'driving_keypoints'")
        source = source_tensor(image, model)
        with model.wrapper() as wrapper:
            frames = render_video(wrapper, source, source_keypoints, driving_keypoints, batch_size)
        return io.NodeOutput(frames, float(FPS))
