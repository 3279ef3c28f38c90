"""Pose-curve previews: a plot of the curve, and the pose boxes the motion field generator sees."""
from __future__ import annotations

from comfy_api.latest import io, ui

from a2h_core.pose.render import BOX_VALUE, render_pose_boxes
from a2h_core.previews.pose_boxes import preview_pose_boxes
from a2h_core.previews.pose_plot import plot_pose_curve

from .common import CATEGORY, blame
from .types import A2HPose

PREVIEW_CATEGORY = f"{CATEGORY}/preview"


class Audio2HeadPosePlot(io.ComfyNode):
    """Plots yaw/pitch/roll and x/y/z of a curve over time as an image."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPosePlot",
            display_name="Audio2Head Pose Plot",
            category=PREVIEW_CATEGORY,
            description="Top: yaw (red), pitch (green), roll (blue) in degrees. Bottom: x, y, z as the change from "
                        "the first pose. Time runs left to right.",
            inputs=[
                A2HPose.Input("pose", tooltip="Head-pose curve to plot."),
                io.Int.Input("width", default=640, min=32, max=4096, tooltip="Plot width in pixels."),
                io.Int.Input("height", default=360, min=32, max=4096, tooltip="Plot height in pixels."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The plot as a 1-image batch.")],
        )

    @classmethod
    def execute(cls, pose, width, height) -> io.NodeOutput:
        with blame("width, height"):
            plot = plot_pose_curve(pose, width=width, height=height)[None]
        return io.NodeOutput(plot, ui=ui.PreviewImage(plot, cls=cls))


class Audio2HeadPoseBoxes(io.ComfyNode):
    """Renders the pose box of every pose (the model's conditioning image), optionally over an image."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseBoxes",
            display_name="Audio2Head Pose Boxes",
            category=PREVIEW_CATEGORY,
            description="One 256x256 image per pose with the 3-D pose box the motion field generator receives "
                        "(white on black), or the box tinted over an image to check a curve against the portrait.",
            inputs=[
                A2HPose.Input("pose", tooltip="Head-pose curve to render (one image per pose)."),
                io.Image.Input("image", optional=True,
                               tooltip="Optional background: one image (repeated) or one per pose, e.g. the "
                                       "portrait or the generated frames."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="One image per pose.")],
        )

    @classmethod
    def execute(cls, pose, image=None) -> io.NodeOutput:
        if image is None:
            boxes = render_pose_boxes(pose.values) / BOX_VALUE
            return io.NodeOutput(boxes[..., None].expand(-1, -1, -1, 3).contiguous())
        with blame("image"):
            return io.NodeOutput(preview_pose_boxes(image, pose.values))
