"""`python -m a2h_core download`: the authors' checkpoint from their Google Drive link, converted and verified."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2h_core.cli.progress import ProgressBar
from a2h_core.io.download import DRIVE_DOWNLOAD_URL, TERMS_NOTE, download_checkpoint
from a2h_core.io.weights import ORIGINAL_FILENAME

MB = 1 << 20


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "download", help=f"fetch the authors' {ORIGINAL_FILENAME} (Google Drive), convert it and check it",
        description=f"Download the authors' checkpoint {ORIGINAL_FILENAME} from the Google Drive link their README "
                    "publishes (resuming an interrupted download), convert it to audio2head.safetensors (the pickle "
                    "is read with weights_only=True) and strict-load the result.")
    parser.add_argument("--to", type=Path, default=Path("checkpoints"), metavar="FOLDER",
                        help="folder to put the files in (default: checkpoints; for ComfyUI: ComfyUI/models/"
                             "audio2head)")
    parser.add_argument("--url", default=DRIVE_DOWNLOAD_URL,
                        help="where to download from (default: the authors' Google Drive file; any HTTP mirror of "
                             "the same file works)")
    parser.set_defaults(func=run)
    return parser


class _MegabyteBar:
    """Byte counts shown as MB on the text progress bar."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = ProgressBar("Downloading", unit="MB", initial=done // MB)
        if total:
            self.bar(done // MB, max(1, total // MB))


def run(args: argparse.Namespace) -> int:
    print(f"Note: {TERMS_NOTE}", file=sys.stderr)
    converted = download_checkpoint(args.to, url=args.url, progress=_MegabyteBar(),
                                    log=lambda message: print(message, file=sys.stderr))
    print(f"Wrote {converted} (strict load OK); use --weights {converted.parent} or put the folder's files into "
          "ComfyUI/models/audio2head/")
    return 0
