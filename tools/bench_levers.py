"""The CPU speed levers one at a time, on the published-width networks with random weights.

    python tools/bench_levers.py [--levers layout,fold,fold-motion,batch,threads,aligned,windows,compile,encoder]
                                 [--frames 16] [--rounds 3] [--batch-size 4]

Each lever's variants are timed in interleaved rounds (A B A B ...) and the fastest round of each is kept, so a
machine shared with other work still gives comparable figures. Printed per variant: wall seconds and CPU seconds
(all threads) per generator frame (per motion-field window for `aligned` / `windows`), and the gain over the
lever's first variant. The CPU's instruction set is printed first: figures from different CPUs do not compare.

Levers:
- layout:  the generator's tensors NCHW vs channels-last (batch norm unfolded, as before folding existed);
- fold:    channels-last generator with batch norm unfolded vs folded into the convolutions (fold_batch_norm);
- fold-motion: the same for the motion field generator (3-D hourglass), per window;
- batch:   generator frames per pass, 1 / 2 / 4 / 8 / 16 (folded, channels-last);
- threads: torch threads, 1 vs all cores;
- aligned: the motion field generator with its weights as safetensors loads them vs copied to fresh (aligned) memory;
- windows: motion-field windows per pass, 1 vs 2;
- compile: torch.compile of the generator (inductor), with its compile time; skipped without a C++ compiler;
- encoder: H.264 encoding of rendered frames inline vs on a background thread overlapping the generator.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

from a2h_core.config import ModelConfig
from a2h_core.inference.acceleration import BackgroundConsumer, compile_unavailable, compiled
from a2h_core.io.video import VideoWriter
from a2h_core.io.weights import load_models
from a2h_core.modules.folding import fold_batch_norm
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.random_weights import random_state, randomize_batch_norm
from a2h_devkit.system import cpu_description


def published_models(seed: int) -> Audio2HeadModels:
    """Published widths, random weights with non-trivial batch norm, eval mode."""
    models = Audio2HeadModels(ModelConfig.published())
    models.load_state_dict(random_state(ModelConfig.published(), seed))
    randomize_batch_norm(models, torch.Generator().manual_seed(seed))
    return models.eval().requires_grad_(False)


def driving_batch(kp_source: Keypoints, frames: int, seed: int) -> Keypoints:
    generator = torch.Generator().manual_seed(seed)
    value = kp_source.value + 0.05 * torch.randn(frames, *kp_source.value.shape[1:], generator=generator)
    jacobian = kp_source.jacobian + 0.05 * torch.randn(frames, *kp_source.jacobian.shape[1:], generator=generator)
    return Keypoints(value, jacobian)


def measure(run, rounds: int, variants: dict, units: int) -> dict[str, tuple[float, float]]:
    """Fastest (wall, CPU) seconds per unit of each variant over interleaved rounds; run(variant) does the work."""
    best = {name: (float("inf"), float("inf")) for name in variants}
    for name in variants:  # warm-up: first-call allocations, oneDNN primitive creation
        run(variants[name])
    for _ in range(rounds):
        for name, variant in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run(variant)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall / units), min(best[name][1], cpu / units))
    return best


def report(lever: str, best: dict[str, tuple[float, float]], unit: str) -> None:
    first = next(iter(best.values()))
    print(f"\n{lever}: s/{unit} (fastest of the rounds)")
    print(f"  {'variant':<44} {'wall':>8} {'CPU':>8} {'gain (wall)':>12} {'gain (CPU)':>11}")
    for name, (wall, cpu) in best.items():
        print(f"  {name:<44} {wall:8.3f} {cpu:8.3f} {first[0] / wall:11.2f}x {first[1] / cpu:10.2f}x", flush=True)


class GeneratorRun:
    """Renders `frames` driving frames with one generator variant, `batch` frames per pass."""

    def __init__(self, models: Audio2HeadModels, frames: int, seed: int):
        torch.manual_seed(seed)
        self.source = torch.rand(1, 3, 256, 256)
        with torch.inference_mode():
            self.kp_source = models.kp_detector(self.source)
        self.driving = driving_batch(self.kp_source, frames, seed)

    def __call__(self, variant) -> None:
        generator, channels_last, batch = variant
        source = self.source.contiguous(memory_format=torch.channels_last) if channels_last else self.source
        with torch.inference_mode():
            features = generator.encode_source(source)
            for start in range(0, len(self.driving), batch):
                generator(source, features, self.kp_source, self.driving[start:start + batch])


def generator_variant(models: Audio2HeadModels, fold: bool, channels_last: bool) -> torch.nn.Module:
    generator = copy.deepcopy(models.generator)
    generator = fold_batch_norm(generator) if fold else generator
    return generator.to(memory_format=torch.channels_last) if channels_last else generator


def window_inputs(models: Audio2HeadModels, windows: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    seq_len = models.config.motion_field.seq_len
    audio = torch.randn(windows, seq_len, 4, 41, generator=generator)
    boxes = (torch.rand(windows, seq_len, 256, 256, generator=generator) > 0.99).float() * 255
    return audio, boxes, torch.rand(1, 3, 256, 256, generator=generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levers", default="layout,fold,fold-motion,batch,threads,aligned,windows,compile,encoder")
    parser.add_argument("--frames", type=int, default=16, help="generator frames per measurement (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=4, help="generator batch of the other levers (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    levers = args.levers.split(",")
    print(cpu_description())
    print(f"{torch.get_num_threads()} torch threads; {args.frames} frames per measurement; {args.rounds} rounds",
          flush=True)
    models = published_models(args.seed)
    frames = GeneratorRun(models, args.frames, args.seed)
    batch = args.batch_size

    if "layout" in levers:
        variants = {"NCHW (unfolded)": (generator_variant(models, False, False), False, batch),
                    "channels-last (unfolded)": (generator_variant(models, False, True), True, batch)}
        report("layout", measure(frames, args.rounds, variants, args.frames), "frame")
    if "fold" in levers:
        variants = {"unfolded batch norm (channels-last)": (generator_variant(models, False, True), True, batch),
                    "folded batch norm (channels-last)": (generator_variant(models, True, True), True, batch)}
        report("fold", measure(frames, args.rounds, variants, args.frames), "frame")
    best = generator_variant(models, True, True)
    if "batch" in levers:
        variants = {f"batch {size}": (best, True, size) for size in (1, 2, 4, 8, 16) if size <= args.frames}
        report("batch", measure(frames, args.rounds, variants, args.frames), "frame")
    if "threads" in levers:
        cores = torch.get_num_threads()

        def with_threads(count):
            torch.set_num_threads(count)
            try:
                frames((best, True, batch))
            finally:
                torch.set_num_threads(cores)

        report("threads", measure(with_threads, args.rounds, {"1 thread": 1, f"{cores} threads": cores},
                                  args.frames), "frame")
    if any(lever in levers for lever in ("aligned", "windows", "fold-motion")):
        with tempfile.TemporaryDirectory() as folder:
            from safetensors.torch import save_file

            path = Path(folder) / "random.safetensors"
            save_file({key: value.contiguous() for key, value in models.state_dict().items()}, str(path),
                      metadata={"format": "audio2head", "format_version": "1"})
            loaded = load_models(path).audio2kp
        unaligned = sum(p.data_ptr() % 64 != 0 for p in loaded.parameters())
        print(f"\nmotion field weights as loaded from safetensors: {unaligned} of "
              f"{len(list(loaded.parameters()))} tensors not 64-byte aligned")
        audio, boxes, source = window_inputs(models, 2, args.seed)

        def windows_run(variant):
            network, count = variant
            with torch.inference_mode():
                for start in range(0, 2, count):
                    network(audio[start:start + count], boxes[start:start + count], source)

        if "aligned" in levers:
            aligned = copy.deepcopy(loaded)  # deepcopy allocates every tensor afresh
            variants = {"as loaded (safetensors)": (loaded, 1), "copied (aligned)": (aligned, 1)}
            report("aligned", measure(windows_run, args.rounds, variants, 2), "window")
        if "fold-motion" in levers:
            variants = {"unfolded batch norm": (loaded, 1), "folded batch norm": (fold_batch_norm(loaded), 1)}
            report("fold-motion", measure(windows_run, args.rounds, variants, 2), "window")
        if "windows" in levers:
            network = fold_batch_norm(loaded)
            report("windows", measure(windows_run, args.rounds, {"1 window per pass": (network, 1),
                                                                  "2 windows per pass": (network, 2)}, 2), "window")
        del loaded
    if "compile" in levers:
        reason = compile_unavailable()
        if reason is not None:
            print(f"\ncompile: skipped ({reason})")
        else:
            network = compiled(generator_variant(models, True, True), "default")
            start = time.perf_counter()
            frames((network, True, batch))
            print(f"\ncompile: first call (compiling) {time.perf_counter() - start:.1f} s", flush=True)
            variants = {"eager (folded, channels-last)": (best, True, batch), "torch.compile": (network, True, batch)}
            report("compile", measure(frames, args.rounds, variants, args.frames), "frame")
    if "encoder" in levers:
        def render_and_encode(background: bool) -> None:
            source = frames.source.contiguous(memory_format=torch.channels_last)
            with tempfile.TemporaryDirectory() as folder, \
                    VideoWriter(Path(folder) / "bench.mp4", 256, 256) as writer, torch.inference_mode():
                sink = BackgroundConsumer(writer.write) if background else None
                features = best.encode_source(source)
                for start in range(0, args.frames, batch):
                    prediction = best(source, features, frames.kp_source,
                                      frames.driving[start:start + batch])["prediction"]
                    rendered = (prediction * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
                    (sink.put if sink else writer.write)(rendered)  # encoded inline, or while the next batch renders
                if sink:
                    sink.close()

        report("encoder", measure(render_and_encode, args.rounds, {"inline": False, "background thread": True},
                                  args.frames), "frame")

if __name__ == "__main__":
    main()
