"""`python -m a2h_core personalize`: fine-tune the head-motion predictor on one short clip of a person."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from a2h_core.cli.progress import ProgressBar
from a2h_core.config import IMAGE_SIZE
from a2h_core.io.weights import load_models
from a2h_core.training.config import PRECISIONS
from a2h_core.training.personalize import PersonalizeConfig, person_clip_from_video, personalize


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `personalize`; its handler is stored as the parser default `func`."""
    defaults = PersonalizeConfig()
    parser = subparsers.add_parser(
        "personalize", help="fine-tune head motion on one short clip of a person (~12 s)",
        description="Fine-tune the head-motion predictor of --weights on one clip of the target person (about 300 "
                    "frames, 12 s): their speech and head-pose curve. The clip's last 20 %% is held out to report "
                    "HE and HS* before and after. Writes a complete weights file (the other networks are the "
                    "base model's).")
    parser.add_argument("--video", type=Path, required=True, help="the person's clip: a video with sound (face crop)")
    parser.add_argument("--weights", required=True, help="base weights (file, folder or Hub repo id)")
    parser.add_argument("--out", type=Path, required=True, help="the personalised .safetensors to write")
    parser.add_argument("--pose-curve", type=Path,
                        help="the clip's head-pose curve (default: <clip>.pose.json/.pose.csv/OpenFace .csv beside "
                             "it, else one fitted to the video with --face-detector)")
    parser.add_argument("--face-detector", default="auto",
                        help="fits the head poses when the clip has no curve: auto (default), yunet, mtcnn or a "
                             "weights file")
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"learning rate (default {defaults.lr})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"windows per step (default {defaults.batch_size})")
    parser.add_argument("--window", type=int, default=defaults.window,
                        help=f"frames per window (default {defaults.window})")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 (default), bf16 or fp16")
    parser.add_argument("--device", default="auto", help="auto (default: GPU when available), cpu or cuda")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE,
                        help=f"frame size the base model was trained at (default {IMAGE_SIZE})")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_models(args.weights, device="cpu")
    clip = person_clip_from_video(args.video, args.pose_curve, image_size=args.image_size,
                                  face_detector=args.face_detector)
    config = PersonalizeConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, window=args.window,
                               precision=args.precision, device=args.device)
    result = personalize(base, clip, config, out=args.out, progress=ProgressBar("personalize", unit="steps"),
                         base_name=str(args.weights))
    print(f"trained on {result.train_frames} frames, held out the last {result.holdout_frames}:")
    print(f"{'':<8}{'HE ↓':>8}{'correlation ↑':>15}{'HS* ↑':>8}")
    for name, metrics in (("before", result.before), ("after", result.after)):
        corr = "n/a" if math.isnan(metrics["correlation"]) else f"{metrics['correlation']:.3f}"
        print(f"{name:<8}{metrics['he']:>8.4f}{corr:>15}{metrics['hs_star']:>8.3f}")
    print(f"wrote {result.path}")
    return 0
