"""`python -m a2h_core generate`: a portrait and speech in, an MP4 talking-head video with sound out."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from a2h_core.audio.features import extract_features
from a2h_core.audio.intake import audio_file_info
from a2h_core.cli.crop import add_detector_options, add_framing_options
from a2h_core.cli.progress import ProgressBar
from a2h_core.config import MAX_BATCH_SIZE
from a2h_core.device import check_compute_dtype, parse_device
from a2h_core.inference.acceleration import COMPILE_MODES
from a2h_core.inference.pipeline import PipelineConfig, checked_config, generate, resolve_crop
from a2h_core.io.image import check_image_size, load_image, prepare_source_image
from a2h_core.io.weights import load_models
from a2h_core.paths import checked_output_file, checked_output_folder
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
                        help="compute precision: fp32 (default); bf16 on a GPU, or on a CPU with native bf16 "
                             "(AVX512-BF16 or AMX), refused on other CPUs; fp16 on a GPU only")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"frames rendered per forward pass, 1 to {MAX_BATCH_SIZE} (default: 4 on a CPU; on a "
                             "GPU as many as fit in the free memory)")
    parser.add_argument("--compile", default="off", choices=COMPILE_MODES,
                        help="torch.compile the generator: off (default), default, or max-autotune (CUDA graphs on a "
                             "GPU; the first frames wait minutes for the compiler); falls back to uncompiled where "
                             "it cannot compile")
    parser.add_argument("--crop", default="auto", metavar="auto|none|X,Y,W,H",
                        help="auto (default): find the face, animate the model's square crop around it and paste it "
                             "back into the full picture (full resolution, even sides); none: resize the whole image "
                             "to 256x256 as the original does; X,Y,W,H: your own box, pasted back likewise")
    add_detector_options(parser)
    add_framing_options(parser)
    parser.add_argument("--watermark", metavar="TEXT",
                        help="draw TEXT (e.g. 'AI-generated') in the bottom-left corner of every frame; the MP4 is "
                             "marked as synthetic in its metadata either way")
    parser.add_argument("--save-intermediates", type=Path, metavar="DIR",
                        help="write every stage's output (features, poses, pose boxes, keypoints, frames) to DIR")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    # Cheap checks first, in milliseconds to a second: settings, output paths, the image and its face, the curve.
    # Only then the slow stages (feature extraction, weight loading), so a mistake never waits behind minutes of work.
    config = PipelineConfig(device=args.device, dtype=args.dtype, batch_size=args.batch_size, compile=args.compile,
                            crop=args.crop,
                            face_detector=args.face_detector, face_index=args.face_index, crop_scale=args.crop_scale,
                            crop_offset=args.crop_offset, save_intermediates=args.save_intermediates,
                            watermark=args.watermark)
    config = checked_config(config)
    device = parse_device(args.device)
    check_compute_dtype(device, args.dtype, "--dtype")
    inputs = [path for path in (args.image, args.audio, args.pose_curve, args.weights) if path]
    out = checked_output_file(args.out, "--out", suffixes=(".mp4",), inputs=inputs)
    if args.save_intermediates:
        checked_output_folder(args.save_intermediates, "--save-intermediates")
    image = load_image(args.image)
    check_image_size(image.shape[1], image.shape[0])
    crop = resolve_crop(image, config, log=lambda message: print(message, file=sys.stderr),
                        what=repr(str(args.image)))
    prepare_source_image(image, crop)  # crop box and image size
    config = dataclasses.replace(config, crop=crop)  # the face is found once
    pose_curve = load_pose_curve(args.pose_curve) if args.pose_curve else None
    audio_file_info(args.audio)  # a missing or undecodable file fails before the long decoding
    # Features first: their transient memory is freed before the networks are loaded.
    print(f"Extracting audio features from {args.audio}", file=sys.stderr)
    features = extract_features(args.audio)
    print(f"Loading weights from {args.weights}", file=sys.stderr)
    models = load_models(args.weights, device=args.device)
    result = generate(image, args.audio, models, config, pose_curve=pose_curve, out_path=out,
                      progress=ProgressBar("Rendering"), log=lambda message: print(message, file=sys.stderr),
                      features=features)
    print(f"Wrote {result.out_path} ({result.num_frames} frames, {result.num_frames / 25:.2f} s)")
    if args.save_intermediates:
        print(f"Intermediates in {args.save_intermediates}")
    return 0
