"""`python -m a2h_core personalize`: fine-tune the head-motion predictor on one short clip of a person."""
from __future__ import annotations

import argparse


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("personalize", help="fine-tune head motion on one short clip of a person")
    parser.set_defaults(func=lambda args: 2)
    return parser
