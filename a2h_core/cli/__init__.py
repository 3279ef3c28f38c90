"""Command line: `python -m a2h_core COMMAND ...`, one module per command.

Each command module has `add_command(subparsers)`, which registers its options and stores its handler as the
parser default `func(args) -> exit code`. Library errors (`Audio2HeadError`) end as one line on stderr.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings

from a2h_core.cli import batch, convert, crop, download, evaluate, features, generate, personalize, pose, prepare, train
from a2h_core.errors import Audio2HeadError

EXIT_USER_ERROR = 2  # bad input, missing weights, ...: the message says what to fix
EXIT_INTERRUPTED = 130  # Ctrl-C, the shell convention (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + 15)
# --help order
COMMANDS = (generate, batch, crop, features, pose, convert, download, prepare, train, evaluate, personalize)


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it unwinds exactly like Ctrl-C (temporary files removed)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    # `kill -TERM` is handled like Ctrl-C: the exception unwinds through the writers, which delete their temporary
    # files, so nothing is left under the output name or beside it.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.func(args)
    except Audio2HeadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Terminated:
        print("\nterminated: nothing was written under the output name", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written under the output name", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
