"""Command line: `python -m a2h_core generate|features|pose|convert ...`.

`generate` (the main job) is defined here; the single-stage commands are registered by the modules that own them
(`features.add_features_command`, `pose.add_pose_command`, `weights.add_convert_command`). Each sub-command stores
its handler as the parser default `func(args) -> exit code`.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from .errors import Audio2HeadError

EXIT_USER_ERROR = 2  # bad input, missing weights, ...: the message says what to fix
EXIT_INTERRUPTED = 130  # Ctrl-C, the shell convention (128 + SIGINT)



def build_parser() -> argparse.ArgumentParser:
    from .features import add_features_command
    from .pose import add_pose_command
    from .weights import add_convert_command

    parser = argparse.ArgumentParser(
        prog="python -m a2h_core",
        description="Audio2Head: animate a portrait with a speech recording (talking head with head motion).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_generate_command(subparsers)
    add_features_command(subparsers)
    add_pose_prediction(add_pose_command(subparsers))
    add_convert_command(subparsers)
    return parser


def add_generate_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "generate", help="image + audio -> MP4 talking-head video with sound",
        description="Animate a portrait with speech: writes an H.264/AAC MP4 at 25 fps, sound trimmed to the video.")
    parser.add_argument("--image", required=True, type=Path, help="portrait image (png, jpg, webp, ...)")
    parser.add_argument("--audio", required=True, type=Path, help="speech (wav, flac, mp3, m4a, ogg, ...)")
    parser.add_argument("--weights", required=True,
                        help="audio2head.safetensors, the original audio2head.pth.tar, a folder holding one, or a "
                             "Hugging Face Hub repo id owner/name")
    parser.add_argument("--out", required=True, type=Path, help="the .mp4 file to write")
    parser.add_argument("--pose-curve", type=Path,
                        help="head-pose curve file (JSON, CSV or OpenFace CSV) to use instead of the predicted one")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="compute precision: fp32 (default), bf16 (CPU or GPU), fp16 (GPU)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="frames rendered per forward pass (default 4; raise it on a GPU)")
    parser.add_argument("--crop", metavar="X,Y,W,H",
                        help="face box in the image; the face is animated and pasted back into the full picture")
    parser.add_argument("--save-intermediates", type=Path, metavar="DIR",
                        help="write every stage's output (features, poses, pose boxes, keypoints, frames) to DIR")
    parser.set_defaults(func=run_generate_command)
    return parser


def add_pose_prediction(parser: argparse.ArgumentParser) -> None:
    """Let `pose` run the pipeline's pose stage: predict the curve from a portrait and speech, then edit and save it."""
    group = parser.add_argument_group(
        "prediction", "predict the starting curve with the head-pose predictor instead of reading one "
                      "(needs --image, --audio and --weights together)")
    group.add_argument("--image", type=Path, help="portrait image")
    group.add_argument("--audio", type=Path, help="speech")
    group.add_argument("--weights", help="weights: a .safetensors or .pth.tar file, a folder, or a Hub repo id")
    group.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    group.add_argument("--crop", metavar="X,Y,W,H", help="face box in the image, as for generate")
    parser.set_defaults(func=run_pose_stage)


def run_pose_stage(args: argparse.Namespace) -> int:
    from .features import extract_features
    from .image import prepare_source_image
    from .pose import run_pose_command
    from .weights import load_models
    from .wrapper import Audio2HeadWrapper

    prediction = (args.image, args.audio, args.weights)
    if not any(prediction):
        return run_pose_command(args)
    if not all(prediction):
        raise Audio2HeadError("pose: predicting a curve needs --image, --audio and --weights together")
    if args.input or args.from_keyframes:
        raise Audio2HeadError("pose: give either a curve to start from (--input, --from-keyframes) or "
                              "--image/--audio/--weights to predict one, not both")
    features = extract_features(args.audio)
    source, _ = prepare_source_image(args.image, args.crop)
    models = load_models(args.weights, device=args.device)
    curve = Audio2HeadWrapper(models, device=args.device).predict_poses(source, features)
    print(f"Predicted {len(curve)} poses for {features.num_frames} frames", file=sys.stderr)
    return run_pose_command(args, curve=curve)


class ProgressBar:
    """A one-line text progress bar with rate and ETA, drawn on stderr (no dependency)."""

    def __init__(self, label: str, stream=None, width: int = 30):
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        remaining = (total - done) / rate if rate > 0 else float("nan")
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} frames, {rate:.2f} frames/s, "
                          f"ETA {_clock(remaining)}   ")
        if done >= total:
            self.stream.write(f"\n{self.label}: {total} frames in {_clock(elapsed)}\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "--:--"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def run_generate_command(args: argparse.Namespace) -> int:
    from .features import extract_features
    from .pipeline import PipelineConfig, generate
    from .pose import load_pose_curve
    from .weights import load_models

    if args.out.suffix.lower() != ".mp4":
        raise Audio2HeadError(f"--out {str(args.out)!r} must end in .mp4")
    pose_curve = load_pose_curve(args.pose_curve) if args.pose_curve else None
    # Features first: their transient memory is freed before the networks are loaded.
    print(f"Extracting audio features from {args.audio}", file=sys.stderr)
    features = extract_features(args.audio)
    print(f"Loading weights from {args.weights}", file=sys.stderr)
    models = load_models(args.weights, device=args.device)
    config = PipelineConfig(device=args.device, dtype=args.dtype, batch_size=args.batch_size, crop=args.crop,
                            save_intermediates=args.save_intermediates)
    result = generate(args.image, args.audio, models, config, pose_curve=pose_curve, out_path=args.out,
                      progress=ProgressBar("Rendering"), log=lambda message: print(message, file=sys.stderr),
                      features=features)
    print(f"Wrote {result.out_path} ({result.num_frames} frames, {result.num_frames / 25:.2f} s)")
    if args.save_intermediates:
        print(f"Intermediates in {args.save_intermediates}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except Audio2HeadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written under the output name", file=sys.stderr)
        return EXIT_INTERRUPTED
