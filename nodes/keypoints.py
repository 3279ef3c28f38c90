"""Keypoint nodes: source keypoints from the portrait, driving keypoints from audio + poses, and an overlay preview."""
from __future__ import annotations

from comfy_api.latest import io

from a2h_core.previews.keypoints_overlay import overlay_keypoints

from . import comfy
from .common import CATEGORY, blame
from .pose import features_input, image_input, model_input, source_tensor
from .types import A2HKeypoints, A2HPose


class Audio2HeadKeypointDetector(io.ComfyNode):
    """Finds the portrait's 10 keypoints and their Jacobians (computed once per video)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadKeypointDetector",
            display_name="Audio2Head Keypoint Detector",
            category=f"{CATEGORY}/motion",
            description="Detects the source keypoints of the portrait (one set, used for every frame).",
            inputs=[model_input(), image_input()],
            outputs=[A2HKeypoints.Output(display_name="source_keypoints",
                                         tooltip="Keypoints of the source image (1 row).")],
        )

    @classmethod
    def execute(cls, model, image) -> io.NodeOutput:
        source = source_tensor(image, model)
        with model.wrapper() as wrapper:
            keypoints = wrapper.source_keypoints(source).to(device="cpu")
        return io.NodeOutput(keypoints)


class Audio2HeadMotionField(io.ComfyNode):
    """Turns audio features and a head-pose curve into driving keypoints, 64-frame window by window."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadMotionField",
            display_name="Audio2Head Motion Field",
            category=f"{CATEGORY}/motion",
            description="Motion field generator: audio features + pose curve + portrait -> driving keypoints for "
                        "every video frame (windows of 64 frames, step 32, as the original).",
            inputs=[
                model_input(), image_input(), features_input(),
                A2HPose.Input("pose", tooltip="Head-pose curve: predicted, edited, loaded or from keyframes. Frame "
                                              "i uses pose i; frames past the curve's end hold its last pose."),
            ],
            outputs=[A2HKeypoints.Output(display_name="driving_keypoints",
                                         tooltip="Keypoints of every video frame (one row per frame).")],
        )

    @classmethod
    def execute(cls, model, image, features, pose) -> io.NodeOutput:
        source = source_tensor(image, model)
        progress = comfy.Progress(max(features.num_frames, 1))
        with blame("pose"):
            pose = pose.for_video(features.num_frames)
        with model.wrapper() as wrapper, blame("features"):
            keypoints = wrapper.driving_keypoints(source, features, pose, progress=progress).to(device="cpu")
        return io.NodeOutput(keypoints)


class Audio2HeadKeypointOverlay(io.ComfyNode):
    """Preview: keypoints drawn as coloured dots on images or video frames."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadKeypointOverlay",
            display_name="Audio2Head Keypoint Overlay",
            category=f"{CATEGORY}/preview",
            description="Draws keypoints (source or driving) on images, one colour per keypoint.",
            inputs=[
                io.Image.Input("images", tooltip="Images to draw on: the portrait or generated frames. One image "
                                                 "is repeated for every keypoint row."),
                A2HKeypoints.Input("keypoints", tooltip="Source keypoints (drawn on every image) or driving "
                                                        "keypoints (row i on frame i)."),
                io.Int.Input("radius", default=3, min=1, max=32, tooltip="Dot radius in pixels."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="Images with the keypoints drawn.")],
        )

    @classmethod
    def execute(cls, images, keypoints, radius) -> io.NodeOutput:
        return io.NodeOutput(overlay_keypoints(images, keypoints, radius))

