"""Command line: `python -m a2h_core COMMAND ...`, one module per command.

Each command module has `add_command(subparsers)`, which registers its options and stores its handler as the
parser default `func(args) -> exit code`. Library errors (`Audio2HeadError`) end as one line on stderr.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from a2h_core.cli import convert, crop, evaluate, features, generate, personalize, pose, prepare, train
from a2h_core.errors import Audio2HeadError

EXIT_USER_ERROR = 2  # bad input, missing weights, ...: the message says what to fix
EXIT_INTERRUPTED = 130  # Ctrl-C, the shell convention (128 + SIGINT)
COMMANDS = (generate, crop, features, pose, convert, prepare, train, evaluate, personalize)  # --help order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m a2h_core",
        description="Audio2Head: animate a portrait with a speech recording (talking head with head motion).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_command(subparsers)
    return parser


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
