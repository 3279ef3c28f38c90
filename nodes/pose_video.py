"""Audio2Head Pose From Video: copy a real person's head motion from a clip."""
from __future__ import annotations

from comfy_api.latest import io

from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.face.video_pose import DEFAULT_SMOOTHING, fit_video_pose

from . import comfy
from .common import blame, pose_ui
from .crop import detector_for, face_detector_inputs
from .pose_tools import POSE_CATEGORY
from .types import A2HPose


class Audio2HeadPoseFromVideo(io.ComfyNode):
    """Fits the 6-D head pose of every frame of a video (face landmarks + a 3-D face template)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseFromVideo",
            display_name="Audio2Head Pose From Video",
            category=POSE_CATEGORY,
            description="Copies a real person's head motion: detects the face in every frame, fits its head pose "
                        "(yaw, pitch, roll and position) in the model's own camera convention, bridges frames "
                        "without a face (the console lists them) and smooths the curve. Connect 'pose' to the "
                        "Motion Field or the all-in-one node; the curve keeps the clip's fps and is resampled to "
                        "25 fps there.",
            inputs=[
                io.Float.Input("fps", default=float(FPS), min=1.0, max=240.0, step=0.001,
                               tooltip="Frame rate of 'frames' (ignored for 'video')."),
                *face_detector_inputs(),
                io.Float.Input("smoothing", default=DEFAULT_SMOOTHING, min=0.0, max=1.0, step=0.01,
                               tooltip="Gaussian smoothing of the fitted poses, sigma in seconds (0 = none)."),
                io.Image.Input("frames", optional=True,
                               tooltip="Video frames as an IMAGE batch (e.g. from Load Video's components); use "
                                       "'fps' to say their rate."),
                io.Video.Input("video", optional=True, tooltip="A VIDEO (Load Video); its own frame rate is used."),
            ],
            outputs=[A2HPose.Output(display_name="pose", tooltip="One head pose per frame, at the clip's fps.")],
        )

    @classmethod
    def execute(cls, fps, detector, smoothing, frames=None, video=None) -> io.NodeOutput:
        if video is not None:
            components = video.get_components()
            frames, fps = components.images, float(components.frame_rate)
        if frames is None:
            raise Audio2HeadError("Audio2Head Pose From Video needs 'frames' (an IMAGE batch) or 'video': connect one")
        progress = comfy.Progress(len(frames))
        with blame("frames / video"):
            result = fit_video_pose(frames, fps, detector=detector_for(detector), smoothing=smoothing,
                                    progress=progress)
        print(f"[Audio2Head] {result.report()}; detector {result.detector}")
        result.curve.warn_if_out_of_range("head-pose curve from the video")
        return io.NodeOutput(result.curve, ui=pose_ui(result.curve))
