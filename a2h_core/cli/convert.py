"""`python -m a2h_core convert`: the authors' pickled checkpoint in, one verified safetensors file out."""
from __future__ import annotations

import argparse
from pathlib import Path

from a2h_core.io.weights import SUBMODELS, convert_checkpoint, converted_cache_path, load_models, read_metadata


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `convert` sub-command; its handler is stored as the parser default `func`."""
    parser = subparsers.add_parser(
        "convert", help="convert the original audio2head.pth.tar into one safetensors file",
        description="Convert the authors' Audio2Head checkpoint (a pickle, read with weights_only=True) into one "
                    "flat safetensors file, then strict-load the result into the networks to prove it works.")
    parser.add_argument("checkpoint", type=Path, help="the original checkpoint, e.g. checkpoints/audio2head.pth.tar")
    parser.add_argument("output", type=Path, nargs="?",
                        help="the .safetensors file to write (default: beside the checkpoint, same name)")
    parser.add_argument("--config", default=None,
                        help="the model the checkpoint holds: published (default; the released 256 model), or a "
                             "model trained elsewhere in the original's format, e.g. published-512 or FILE.json")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Convert, reload strictly, and say what was written."""
    output = args.output or converted_cache_path(args.checkpoint)
    config = None
    if args.config is not None:
        from a2h_core.training.setup import model_config

        config = model_config(args.config)
    written = convert_checkpoint(args.checkpoint, output, config=config)
    metadata = read_metadata(written)
    models = load_models(written)
    parameters = sum(p.numel() for p in models.parameters())
    print(f"Wrote {written} ({written.stat().st_size / 1e6:.1f} MB, {len(models.state_dict())} tensors) from "
          f"{args.checkpoint} (sha256 {metadata['source_sha256']}).")
    if metadata["ignored_entries"]:
        print(f"Left out the checkpoint's non-model entries: {metadata['ignored_entries'].replace(',', ', ')}.")
    print(f"Strict load into Audio2HeadModels ({metadata['config']} config) OK: "
          f"{', '.join(SUBMODELS)}; {parameters:,} parameters.")
    return 0
