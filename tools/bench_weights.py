"""Time and memory of weights I/O at the published shapes, on a random checkpoint (no download needed).

    python tools/bench_weights.py [--workdir DIR]

Prints the seconds for: writing the random original pickle, `convert_checkpoint`, `load_models` from the
safetensors file, `load_models` from the pickle (first call converts and caches, second reuses the cache), and the
process's peak resident memory.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

from a2h_core.config import ModelConfig
from a2h_core.io.weights import convert_checkpoint, load_models
from a2h_devkit.random_weights import random_state, save_original
from a2h_devkit.timing import timed


def report(label: str, action):
    """Runs action(), prints its seconds under `label`, returns its result."""
    result, seconds = timed(action)
    print(f"{label:<46} {seconds:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where to write the ~760 MB files (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        folder = Path(folder)
        state = random_state(ModelConfig.published(), seed=0)
        values = sum(tensor.numel() for tensor in state.values())
        original = report("write random original checkpoint",
                          lambda: save_original(state, folder / "audio2head.pth.tar"))
        state.clear()  # the tensors' memory back before the loads are measured
        print(f"original checkpoint size: {original.stat().st_size / 1e6:.1f} MB, {values:,} values")
        converted = report("convert_checkpoint",
                           lambda: convert_checkpoint(original, folder / "converted.safetensors"))
        report("load_models(safetensors), fp32", lambda: load_models(converted))
        report("load_models(safetensors), bf16", lambda: load_models(converted, dtype="bf16"))
        report("load_models(.pth.tar), first call: converts", lambda: load_models(original))
        report("load_models(.pth.tar), second call: cached", lambda: load_models(original))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
