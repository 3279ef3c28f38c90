"""Pose-curve tools: load, save, keyframes, edit, retime, blend and still head. All work on `a2h_core.pose`.

Curve lengths: a curve for a video of N frames needs N + 1 poses (frame i uses pose i; the predictor gives pose 0
from the image). Nodes with an optional `features` input size their curve that way from the audio.
"""
from __future__ import annotations

import json
from pathlib import Path

from comfy_api.latest import io, ui

from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.pose import FIT_MODES, PoseCurve, curve_from_keyframes, load_pose_curve, save_pose_curve

from . import comfy
from .common import CATEGORY, blame, pose_ui
from .types import A2HFeatures, A2HPose

POSE_CATEGORY = f"{CATEGORY}/pose"

# The keyframe widget's default: a short nod and turn. Schema (a2h_core/pose/keyframes.py):
# {"interpolation": "linear" | "smooth" | "ease", "relative": false, "fps": 25, "num_frames": optional,
#  "keyframes": [{"time": seconds (or "frame": pose index), "yaw", "pitch", "roll": degrees, "x", "y", "z"}, ...]}
# A channel no keyframe sets keeps the base pose (a frontal head, or the first pose of the `base` input).
DEFAULT_KEYFRAMES = json.dumps({
    "interpolation": "smooth",
    "keyframes": [
        {"time": 0.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0},
        {"time": 1.0, "yaw": 12.0, "pitch": -4.0, "roll": 2.0},
        {"time": 2.0, "yaw": -8.0, "pitch": 5.0, "roll": -2.0},
        {"time": 3.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0},
    ],
}, indent=1)


def pose_input(name: str = "pose", tooltip: str = "Head-pose curve.", optional: bool = False):
    return A2HPose.Input(name, tooltip=tooltip, optional=optional)


def pose_output(tooltip: str = "The resulting head-pose curve."):
    return A2HPose.Output(display_name="pose", tooltip=tooltip)


def length_features_input():
    return A2HFeatures.Input("features", optional=True,
                             tooltip="Audio features: when connected, the curve gets one pose per video frame plus "
                                     "one (frames + 1), matching the audio.")


def target_length(features, num_frames: int, fallback: int | None, what: str) -> int:
    """Poses wanted: from the audio when connected, else the widget, else `fallback`."""
    if features is not None:
        return features.num_frames + 1
    if num_frames > 0:
        return num_frames
    if fallback is None:
        raise Audio2HeadError(f"input '{what}': set num_frames above 0 or connect 'features' to size the curve")
    return fallback


CURVE_SUFFIXES = (".json", ".csv")  # what Pose Load lists and reads


def resolve_input_path(path: str) -> Path:
    """The curve file a Pose Load entry names: in ComfyUI's input folder or the pack's examples, nowhere else."""
    return comfy.resolve_input_file(path, CURVE_SUFFIXES, "path")


def result(curve: PoseCurve) -> io.NodeOutput:
    return io.NodeOutput(curve, ui=pose_ui(curve))


class Audio2HeadPoseLoad(io.ComfyNode):
    """Reads a pose curve: this pack's JSON/CSV, a keyframe JSON, or an OpenFace 2.0 CSV."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseLoad",
            display_name="Audio2Head Pose Load",
            category=POSE_CATEGORY,
            description="Loads a head-pose curve from a .json or .csv file (format detected from the content; "
                        "OpenFace 2.0 FeatureExtraction CSVs with pose_Tx..pose_Rz work too).",
            inputs=[
                io.Combo.Input("path", options=comfy.list_input_files(CURVE_SUFFIXES),
                               tooltip="A .json or .csv curve in ComfyUI's input folder (upload one with the button "
                                       "below), or one of this pack's examples (example_*.csv). Files elsewhere "
                                       "are never read."),
                io.Float.Input("fps", default=float(FPS), min=1.0, max=240.0, step=1.0,
                               tooltip="Resample the curve to this pose rate (25 is the model's)."),
            ],
            outputs=[pose_output("The loaded head-pose curve.")],
        )

    @classmethod
    def validate_inputs(cls, path, fps):
        """A name that is not a curve file in the input folder or the examples is refused before the run; files
        uploaded after the page was loaded are accepted (ComfyUI's own list check is replaced by this one)."""
        try:
            resolve_input_path(path)
        except Audio2HeadError as error:
            return str(error)
        return True

    @classmethod
    def fingerprint_inputs(cls, path, fps):
        """An edited file (new modification time) is read again instead of reusing the node's last output."""
        try:
            file = resolve_input_path(path)
        except Audio2HeadError:
            return (path, None, fps)
        return (str(file), file.stat().st_mtime_ns, fps)

    @classmethod
    def execute(cls, path, fps) -> io.NodeOutput:
        file = resolve_input_path(path)
        with blame("path"):
            # Messages name the entry, not the server's folder layout, and never quote the file's contents.
            return result(load_pose_curve(file, fps=fps))


class Audio2HeadPoseSave(io.ComfyNode):
    """Writes a pose curve to ComfyUI's output folder as JSON or CSV."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseSave",
            display_name="Audio2Head Pose Save",
            category=POSE_CATEGORY,
            description="Saves a head-pose curve (schema in a2h_core/pose/curve.py) to the output folder.",
            inputs=[
                pose_input(tooltip="Head-pose curve to save."),
                io.String.Input("filename_prefix", default="audio2head/pose",
                                tooltip="Output file name prefix, relative to ComfyUI's output folder."),
                io.Combo.Input("format", options=["json", "csv"], default="json", tooltip="File format."),
                io.Combo.Input("columns", options=["axis_angle", "ypr"], default="axis_angle",
                               tooltip="axis_angle: the model's exact rx..tz; ypr: yaw/pitch/roll degrees + x/y/z."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, pose, filename_prefix, format, columns) -> io.NodeOutput:
        path, name = comfy.next_output_path(filename_prefix, format)
        with blame("pose"):
            save_pose_curve(pose, path, columns=columns)
        return io.NodeOutput(ui=ui.PreviewText(f"saved {name} ({len(pose)} poses at {pose.fps:g} fps)"))


class Audio2HeadPoseKeyframes(io.ComfyNode):
    """Builds a pose curve from keyframes (the widget holds JSON; the canvas editor edits it)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseKeyframes",
            display_name="Audio2Head Pose Keyframes",
            category=POSE_CATEGORY,
            description="A head-pose curve through keyframes (yaw/pitch/roll in degrees, x/y/z), interpolated "
                        "linear, smooth (no overshoot) or ease. Drag keyframes in the plot or edit the JSON.",
            inputs=[
                io.String.Input("keyframes", default=DEFAULT_KEYFRAMES, multiline=True,
                                tooltip='JSON: {"interpolation": "smooth", "relative": false, "keyframes": '
                                        '[{"time": 0, "yaw": 0, "pitch": 0, "roll": 0}, ...]}. Times in seconds '
                                        '(or "frame"); channels a keyframe omits keep the base pose; relative: '
                                        'values are offsets from the base.'),
                length_features_input(),
                pose_input("base", optional=True,
                           tooltip="Optional curve whose first pose (the image's own) is the base for channels no "
                                   "keyframe sets and for relative keyframes. Default: a frontal head."),
            ],
            outputs=[pose_output("Curve through the keyframes (25 fps unless the JSON says otherwise).")],
        )

    @classmethod
    def execute(cls, keyframes, features=None, base=None) -> io.NodeOutput:
        with blame("keyframes"):
            try:
                document = json.loads(keyframes)
            except json.JSONDecodeError as error:
                raise Audio2HeadError(f"not valid JSON ({error})") from None
            if isinstance(document, list):
                document = {"keyframes": document}
            if not isinstance(document, dict):
                raise Audio2HeadError('expected an object with a "keyframes" list')
            count = features.num_frames + 1 if features is not None else None
            curve = curve_from_keyframes({**document, **({"num_frames": count} if count else {})}, base=base)
        return result(curve)


class Audio2HeadPoseEdit(io.ComfyNode):
    """Scales, offsets and smooths a pose curve (in yaw/pitch/roll degrees and x/y/z)."""

    @classmethod
    def define_schema(cls):
        offsets = [io.Float.Input(f"{name}_offset", default=0.0, min=-90.0, max=90.0, step=0.5,
                                  tooltip=f"Degrees added to {name}.") for name in ("yaw", "pitch", "roll")]
        offsets += [io.Float.Input(f"{name}_offset", default=0.0, min=-300.0, max=300.0, step=1.0,
                                   tooltip=f"Added to {name} (camera units; the head is ~280 units from the camera).")
                    for name in ("x", "y", "z")]
        return io.Schema(
            node_id="Audio2HeadPoseEdit",
            display_name="Audio2Head Pose Edit",
            category=POSE_CATEGORY,
            description="Amplitude scale about the first pose (0 = still head, 1 = unchanged), then offsets, then "
                        "temporal smoothing. Curves leaving the model's training range get a warning.",
            inputs=[
                pose_input(tooltip="Head-pose curve to edit."),
                io.Float.Input("scale", default=1.0, min=0.0, max=5.0, step=0.05,
                               tooltip="Motion amplitude about the first pose: 0.5 halves the motion, 2 doubles it."),
                *offsets,
                io.Float.Input("smooth", default=0.0, min=0.0, max=50.0, step=0.5,
                               tooltip="Gaussian smoothing, sigma in poses (0 = off; 2-4 calms jitter)."),
            ],
            outputs=[pose_output()],
        )

    @classmethod
    def execute(cls, pose, scale, yaw_offset, pitch_offset, roll_offset, x_offset, y_offset, z_offset,
                smooth) -> io.NodeOutput:
        offset = [yaw_offset, pitch_offset, roll_offset, x_offset, y_offset, z_offset]
        with blame("pose"):
            curve = pose.scaled(scale) if scale != 1.0 else pose
            curve = curve.offset(offset) if any(offset) else curve
            curve = curve.smoothed(smooth) if smooth > 0 else curve
        return result(curve)


class Audio2HeadPoseRetime(io.ComfyNode):
    """Fits a curve to a length: stretch, loop, ping-pong, hold the last pose, or trim."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseRetime",
            display_name="Audio2Head Pose Retime",
            category=POSE_CATEGORY,
            description="Makes a curve exactly as long as the audio (or num_frames): longer curves are trimmed "
                        "(stretch squeezes them instead); shorter ones are lengthened by the mode.",
            inputs=[
                pose_input(tooltip="Head-pose curve to fit."),
                io.Combo.Input("mode", options=list(FIT_MODES), default="stretch",
                               tooltip="hold: hold the last pose; repeat: loop from the start; pingpong: loop back "
                                       "and forth; stretch: retime the whole motion to the new length."),
                io.Int.Input("num_frames", default=0, min=0, max=1_000_000,
                             tooltip="Poses wanted when 'features' is not connected (0: keep the length)."),
                length_features_input(),
            ],
            outputs=[pose_output()],
        )

    @classmethod
    def execute(cls, pose, mode, num_frames, features=None) -> io.NodeOutput:
        count = target_length(features, num_frames, len(pose), "num_frames")
        with blame("pose"):
            return result(pose.fitted(count, mode))


class Audio2HeadPoseBlend(io.ComfyNode):
    """Mixes two curves pose by pose."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPoseBlend",
            display_name="Audio2Head Pose Blend",
            category=POSE_CATEGORY,
            description="(1 - weight) * pose_a + weight * pose_b in yaw/pitch/roll and x/y/z. The shorter curve "
                        "holds its last pose; pose_b is resampled to pose_a's fps.",
            inputs=[
                pose_input("pose_a", tooltip="First curve (weight 0 gives this one)."),
                pose_input("pose_b", tooltip="Second curve (weight 1 gives this one)."),
                io.Float.Input("weight", default=0.5, min=0.0, max=1.0, step=0.05, tooltip="Share of pose_b."),
            ],
            outputs=[pose_output()],
        )

    @classmethod
    def execute(cls, pose_a, pose_b, weight) -> io.NodeOutput:
        with blame("pose_b"):
            return result(pose_a.blended(pose_b, weight))


class Audio2HeadStillHead(io.ComfyNode):
    """A curve that holds one pose: talking without head motion."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadStillHead",
            display_name="Audio2Head Still Head",
            category=POSE_CATEGORY,
            description="Holds the first pose of a curve (connect the predicted curve: pose 0 is the image's own "
                        "pose) for the whole video; without a curve, a frontal head.",
            inputs=[
                io.Int.Input("num_frames", default=0, min=0, max=1_000_000,
                             tooltip="Poses wanted when 'features' is not connected (0: the input curve's length)."),
                pose_input(optional=True, tooltip="Curve whose first pose is held (usually the predicted one)."),
                length_features_input(),
            ],
            outputs=[pose_output("A still head-pose curve.")],
        )

    @classmethod
    def execute(cls, num_frames, pose=None, features=None) -> io.NodeOutput:
        count = target_length(features, num_frames, len(pose) if pose is not None else None, "num_frames")
        return result(pose.held(count) if pose is not None else PoseCurve.still(num_poses=count))
