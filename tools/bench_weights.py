"""Time and memory of weights I/O at the published shapes, on a random checkpoint (no download needed).

    python tools/bench_weights.py [--workdir DIR]

Prints the seconds for: writing the random original pickle, `convert_checkpoint`, `load_models` from the
safetensors file, `load_models` from the pickle (first call converts and caches, second reuses the cache), and the
process's peak resident memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2h_core.config import ModelConfig  # noqa: E402
from a2h_core.modules.models import Audio2HeadModels  # noqa: E402
from a2h_core.io.weights import SUBMODELS, convert_checkpoint, load_models  # noqa: E402


def timed(label: str, action):
    start = time.perf_counter()
    result = action()
    print(f"{label:<46} {time.perf_counter() - start:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where to write the ~760 MB files (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        folder = Path(folder)
        with torch.device("meta"):
            layout = Audio2HeadModels(ModelConfig.published()).state_dict()
        nested = {name: {key[len(name) + 1:]: torch.randn(spec.shape) if spec.is_floating_point()
                         else torch.zeros(spec.shape, dtype=spec.dtype)
                         for key, spec in layout.items() if key.startswith(name + ".")} for name in SUBMODELS}
        original = folder / "audio2head.pth.tar"
        timed("write random original checkpoint", lambda: torch.save(nested, original))
        del nested
        print(f"original checkpoint size: {original.stat().st_size / 1e6:.1f} MB, "
              f"{sum(spec.numel() for spec in layout.values()):,} values")
        converted = timed("convert_checkpoint", lambda: convert_checkpoint(original, folder / "converted.safetensors"))
        timed("load_models(safetensors), fp32", lambda: load_models(converted))
        timed("load_models(safetensors), bf16", lambda: load_models(converted, dtype="bf16"))
        timed("load_models(.pth.tar), first call: converts", lambda: load_models(original))
        timed("load_models(.pth.tar), second call: cached", lambda: load_models(original))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
