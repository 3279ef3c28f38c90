"""`python -m a2h_core generate`: a portrait and speech in, an MP4 talking-head video with sound out."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2h_core.audio.features import extract_features
from a2h_core.cli.crop import add_detector_options, add_framing_options
from a2h_core.cli.progress import ProgressBar
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.io.weights import load_models
from a2h_core.pose import load_pose_curve


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    parser.add_argument("--crop", default="auto", metavar="auto|none|X,Y,W,H",
                        help="auto (default): find the face, animate the model's square crop around it and paste it "
                             "back into the full picture (full resolution, even sides); none: resize the whole image "
                             "to 256x256 as the original does; X,Y,W,H: your own box, pasted back likewise")
    add_detector_options(parser)
    add_framing_options(parser)
    parser.add_argument("--save-intermediates", type=Path, metavar="DIR",
                        help="write every stage's output (features, poses, pose boxes, keypoints, frames) to DIR")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".mp4":
        raise Audio2HeadError(f"--out {str(args.out)!r} must end in .mp4")
    pose_curve = load_pose_curve(args.pose_curve) if args.pose_curve else None
    # Features first: their transient memory is freed before the networks are loaded.
    print(f"Extracting audio features from {args.audio}", file=sys.stderr)
    features = extract_features(args.audio)
    print(f"Loading weights from {args.weights}", file=sys.stderr)
    models = load_models(args.weights, device=args.device)
    config = PipelineConfig(device=args.device, dtype=args.dtype, batch_size=args.batch_size, crop=args.crop,
                            face_detector=args.face_detector, face_index=args.face_index, crop_scale=args.crop_scale,
                            crop_offset=args.crop_offset, save_intermediates=args.save_intermediates)
    result = generate(args.image, args.audio, models, config, pose_curve=pose_curve, out_path=args.out,
                      progress=ProgressBar("Rendering"), log=lambda message: print(message, file=sys.stderr),
                      features=features)
    print(f"Wrote {result.out_path} ({result.num_frames} frames, {result.num_frames / 25:.2f} s)")
    if args.save_intermediates:
        print(f"Intermediates in {args.save_intermediates}")
    return 0
