"""`python -m a2h_core features`: audio in, the [rows, 41] feature array out (.npy)."""
from __future__ import annotations

import argparse
from pathlib import Path

from a2h_core.audio.features import extract_features
from a2h_core.config import NUM_AUDIO_FEATURES
from a2h_core.errors import Audio2HeadError
from a2h_core.paths import checked_output_file


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `python -m a2h_core features --audio FILE --out FEATURES.npy`."""
    parser = subparsers.add_parser(
        "features", help="audio -> [rows, 41] feature array (.npy)",
        description="Compute Audio2Head's 41 audio features per 10 ms (13 MFCC, 26 log filter bank, F0, voiced "
                    "flag) and save them as a float64 .npy array; 4 rows make one 25 fps video frame.")
    parser.add_argument("--audio", required=True, type=Path, help="speech (wav, flac, mp3, m4a, ogg, ...)")
    parser.add_argument("--out", required=True, type=Path, help="the .npy file to write")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    out = args.out if args.out.suffix == ".npy" or args.out.is_dir() else args.out.with_name(args.out.name + ".npy")
    if out.is_dir():
        raise Audio2HeadError(f"--out {str(out)!r} is an existing folder: give a file name, e.g. "
                              f"{str(out / 'features.npy')!r}")
    checked_output_file(out, "--out", inputs=[args.audio])  # before the long decoding, not after it
    features = extract_features(args.audio)
    path = features.save(out)
    voiced = float(features.voiced.mean()) if len(features.values) else 0.0
    print(f"Wrote {path}: {len(features.values)} rows x {NUM_AUDIO_FEATURES} features, {features.num_frames} video "
          f"frames ({features.duration:.2f} s), {100 * voiced:.1f}% voiced")
    return 0
