"""`python -m a2h_core pose`: make, predict, edit and plot head-pose curves."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2h_core.audio.features import extract_features
from a2h_core.cli.progress import ProgressBar
from a2h_core.errors import Audio2HeadError
from a2h_core.face.video_pose import DEFAULT_SMOOTHING, fit_video_pose
from a2h_core.inference.pipeline import PipelineConfig, resolve_crop
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.image import prepare_source_image
from a2h_core.io.weights import load_models
from a2h_core.paths import checked_output_file
from a2h_core.pose import FIT_MODES, PoseCurve, load_pose_curve, save_pose_curve
from a2h_core.pose.values import validated_count, validated_fps, validated_sigma
from a2h_core.previews.pose_plot import plot_pose_curve, save_png


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `python -m a2h_core pose`: make and edit head-pose curves (and plot them)."""
    parser = subparsers.add_parser(
        "pose", help="make, edit and plot head-pose curves",
        description="Build a head-pose curve (from a file, keyframes, or a still head), edit it and save it as "
                    "JSON or CSV for `generate --pose-curve`. Edits apply in this order: --fps, --frames, --scale, "
                    "--offset, --smooth, --blend, --still.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, help="pose curve to start from (JSON, CSV or OpenFace 2.0 CSV)")
    source.add_argument("--from-video", type=Path, metavar="CLIP",
                        help="fit the head pose of every frame of a video (face detection, landmarks, 3-D template; "
                             "gaps without a face are bridged and reported); the curve keeps the clip's fps")
    source.add_argument("--from-keyframes", type=Path, metavar="FILE",
                        help='keyframe JSON: {"fps": 25, "interpolation": "smooth", "keyframes": '
                             '[{"frame": 0, "yaw": 0}, {"time": 1.5, "yaw": 15, "pitch": -5}, ...]}')
    parser.add_argument("--frames", type=int, help="make the curve exactly this many poses long")
    parser.add_argument("--fit", choices=FIT_MODES, default="hold",
                        help="how --frames lengthens a curve: hold the last pose (default), repeat, pingpong, stretch")
    parser.add_argument("--fps", type=float, help="resample to this pose rate (default: keep; the model uses 25)")
    parser.add_argument("--scale", help="motion amplitude about the first pose: one factor or six (yaw,pitch,roll,"
                                        "x,y,z)")
    parser.add_argument("--offset", help="add six numbers: yaw,pitch,roll (degrees),x,y,z")
    parser.add_argument("--smooth", type=float, default=0.0, help="Gaussian smoothing, sigma in poses")
    parser.add_argument("--blend", type=Path, help="another pose-curve file to mix in")
    parser.add_argument("--blend-weight", type=float, default=0.5, help="weight of --blend (default 0.5)")
    parser.add_argument("--still", action="store_true", help="hold the first pose: a still head")
    parser.add_argument("--columns", choices=("axis_angle", "ypr"), default="axis_angle",
                        help="columns of the saved file: axis_angle (rx..tz, exact, default) or ypr (degrees)")
    parser.add_argument("--out", type=Path, help="write the curve here (.json or .csv)")
    parser.add_argument("--plot", type=Path, help="write a plot of the curve here (a .png file)")
    parser.add_argument("--face-detector", default="auto", metavar="auto|yunet|mtcnn|PATH",
                        help="face detector for --from-video (default auto, see `crop --help`)")
    parser.add_argument("--video-smoothing", type=float, default=DEFAULT_SMOOTHING, metavar="SECONDS",
                        help=f"--from-video: Gaussian smoothing of the fitted poses, sigma in seconds "
                             f"(default {DEFAULT_SMOOTHING}; 0 = none)")
    add_prediction_options(parser)
    parser.set_defaults(func=run)
    return parser


def _numbers(text: str, what: str):
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        raise Audio2HeadError(f"{what} must be one number or six separated by commas, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def edit_curve(curve: PoseCurve, args: argparse.Namespace) -> PoseCurve:
    """Apply the `pose` command's edit options to a curve (also usable on a predicted curve)."""
    if getattr(args, "fps", None) is not None:  # 0 is refused by the check, never ignored
        curve = curve.resampled(args.fps)
    if getattr(args, "frames", None) is not None:
        curve = curve.fitted(args.frames, args.fit)
    if getattr(args, "scale", None) is not None:
        curve = curve.scaled(_numbers(args.scale, "--scale"))
    if getattr(args, "offset", None) is not None:
        curve = curve.offset(_numbers(args.offset, "--offset"))
    if getattr(args, "smooth", 0):
        curve = curve.smoothed(args.smooth)
    if getattr(args, "blend", None) is not None:
        curve = curve.blended(load_pose_curve(args.blend, fps=None), args.blend_weight)
    if getattr(args, "still", False):
        curve = curve.held()
    return curve


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse a missing or unwritable --out / --plot before any work (missing parent folders are created)."""
    if not args.out and not args.plot:
        raise Audio2HeadError("pose: nothing to write; add --out FILE.json|.csv and/or --plot FILE.png")
    inputs = [p for p in (args.input, args.from_keyframes, args.blend, args.image, args.audio,
                          getattr(args, "from_video", None)) if p]
    if args.out:
        checked_output_file(args.out, "--out", suffixes=(".json", ".csv"), inputs=inputs)
    if args.plot:
        checked_output_file(args.plot, "--plot", suffixes=(".png",), inputs=inputs)


def write_curve(args: argparse.Namespace, curve: PoseCurve | None) -> int:
    """Start from `curve` (a predicted one) or from the source options, apply the edits, write the outputs."""
    check_outputs(args)
    if args.frames is not None:
        validated_count(args.frames, "--frames")
    if args.fps is not None:
        validated_fps(args.fps, "--fps")
    validated_sigma(args.smooth)
    if curve is None:
        if getattr(args, "input", None):
            curve = load_pose_curve(args.input, fps=None)
        elif getattr(args, "from_keyframes", None):
            curve = load_pose_curve(args.from_keyframes, fps=None)
        elif getattr(args, "still", False):
            curve = PoseCurve.still(num_poses=1 if args.frames is None else args.frames)
        else:
            raise Audio2HeadError("pose: give a starting curve: --input FILE, --from-keyframes FILE, --from-video CLIP "
                                  "or --still")
    curve = edit_curve(curve, args)
    if args.out:
        save_pose_curve(curve, args.out, columns=args.columns)
        print(f"Wrote {args.out} ({len(curve)} poses at {curve.fps:g} fps)", file=sys.stderr)
    if args.plot:
        save_png(plot_pose_curve(curve), args.plot)
        print(f"Wrote {args.plot}", file=sys.stderr)
    return 0


def add_prediction_options(parser: argparse.ArgumentParser) -> None:
    """Let `pose` run the pipeline's pose stage: predict the curve from a portrait and speech, then edit and save it."""
    group = parser.add_argument_group(
        "prediction", "predict the starting curve with the head-pose predictor instead of reading one "
                      "(needs --image, --audio and --weights together)")
    group.add_argument("--image", type=Path, help="portrait image")
    group.add_argument("--audio", type=Path, help="speech")
    group.add_argument("--weights", help="weights: a .safetensors or .pth.tar file, a folder, or a Hub repo id")
    group.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    group.add_argument("--crop", default="auto", metavar="auto|none|X,Y,W,H",
                       help="the crop of the image the predictor sees, as for generate (default auto)")


def run(args: argparse.Namespace) -> int:
    """Handler of `pose`: predict the starting curve when asked to, then edit and write it."""
    prediction = (args.image, args.audio, args.weights)
    if getattr(args, "from_video", None):
        if any(prediction):
            raise Audio2HeadError("pose: give either --from-video or --image/--audio/--weights, not both")
        check_outputs(args)
        print(f"Fitting head poses to {args.from_video}", file=sys.stderr)
        bar = ProgressBar("Frames")
        result = fit_video_pose(args.from_video, detector=args.face_detector, smoothing=args.video_smoothing,
                                progress=bar)
        print(result.report() + f"; detector {result.detector}", file=sys.stderr)
        result.curve.warn_if_out_of_range("head-pose curve from the video")
        return write_curve(args, result.curve)
    if not any(prediction):
        return write_curve(args, None)
    if not all(prediction):
        raise Audio2HeadError("pose: predicting a curve needs --image, --audio and --weights together")
    if args.input or args.from_keyframes:
        raise Audio2HeadError("pose: give either a curve to start from (--input, --from-keyframes) or "
                              "--image/--audio/--weights to predict one, not both")
    check_outputs(args)
    # Cheap inputs first: a bad image, or one without a face, fails before the audio is read.
    crop = resolve_crop(args.image, PipelineConfig(crop=args.crop, face_detector=args.face_detector),
                        log=lambda message: print(message, file=sys.stderr), what=repr(str(args.image)))
    source, _ = prepare_source_image(args.image, crop)
    features = extract_features(args.audio)
    models = load_models(args.weights, device=args.device)
    curve = Audio2HeadWrapper(models, device=args.device).predict_poses(source, features)
    print(f"Predicted {len(curve)} poses for {features.num_frames} frames", file=sys.stderr)
    return write_curve(args, curve)
