"""`python -m a2h_core prepare`: a folder of talking-head clips in, prepared training shards out."""
from __future__ import annotations

import argparse
from pathlib import Path

from a2h_core.cli.progress import ProgressBar
from a2h_core.config import IMAGE_SIZE
from a2h_core.training.prepare import PrepareConfig, prepare_dataset


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `prepare`; its handler is stored as the parser default `func`."""
    parser = subparsers.add_parser(
        "prepare", help="decode training clips once into shards (features, poses, frames)",
        description="Decode every video under CLIPS (recursively; with sound, and a head-pose curve beside it: "
                    "<clip>.pose.json, <clip>.pose.csv or an OpenFace 2.0 <clip>.csv, else one fitted to the video "
                    "with --face-detector) into training shards under --out. Clips in train/ and val/ folders keep "
                    "that split. Resumable: finished clips are skipped. Broken clips are reported and skipped.")
    parser.add_argument("clips", type=Path, help="folder of talking-head clips (face crops)")
    parser.add_argument("--out", type=Path, required=True, help="data folder to write (shards + manifest.json)")
    parser.add_argument("--workers", type=int, default=1, help="clips decoded in parallel (default 1)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of clips outside train/ and val/ folders used for validation (default 0.1)")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE, help=f"stored frame size (default {IMAGE_SIZE})")
    parser.add_argument("--min-frames", type=int, default=25, help="skip clips shorter than this (default 25 = 1 s)")
    parser.add_argument("--face-detector", default="auto",
                        help="fits head poses to clips without a curve file: auto (default), yunet, mtcnn, a "
                             "weights file, or none (such clips are then skipped)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    config = PrepareConfig(image_size=args.image_size, val_fraction=args.val_fraction, min_frames=args.min_frames,
                           workers=max(1, args.workers), face_detector=args.face_detector)
    results = prepare_dataset(args.clips, args.out, config, progress=ProgressBar("prepare", unit="clips"))
    counts = {status: sum(r.status == status for r in results) for status in ("prepared", "skipped-done", "failed")}
    frames = {split: sum(r.record.frames for r in results if r.record and r.record.split == split)
              for split in ("train", "val")}
    clips = {split: sum(1 for r in results if r.record and r.record.split == split) for split in ("train", "val")}
    print(f"{'split':<8}{'clips':>8}{'frames':>10}{'hours':>8}")
    for split in ("train", "val"):
        print(f"{split:<8}{clips[split]:>8}{frames[split]:>10}{frames[split] / 25 / 3600:>8.2f}")
    print(f"prepared {counts['prepared']}, already done {counts['skipped-done']}, failed {counts['failed']} "
          f"-> {args.out / 'manifest.json'}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        width = max(len(r.name) for r in failed)
        print("skipped clips:")
        for result in failed:
            print(f"  {result.name:<{width}}  {result.reason}")
    return 0 if counts["prepared"] + counts["skipped-done"] else 2
