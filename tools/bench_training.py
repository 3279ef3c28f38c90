"""Training speed and peak memory of the head-motion predictor N_H (SSIM + LSGAN step, Adam), on synthetic data.

    python tools/bench_training.py                       # CPU: reduced and published N_H, batch 8, window 64
    python tools/bench_training.py --device cuda --precision bf16 --batch-size 64 --window 256 --config published

Each step is the real one: `PoseTask.training_step` (N_H forward, eq. 3 + eq. 4, N_H update, discriminator update)
through the trainer's `optimiser_update`, under the chosen autocast precision. Inputs are windows of a synthetic
talking-head clip (a2h_devkit.synthetic_clips) at the model's 256 px. Prints the device name, then per config:
steps per second, frames (samples x window) per second and peak memory: CUDA's max allocated memory on a GPU, the
process's peak resident memory on the CPU (which includes Python and torch themselves).
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2h_core.audio.features import extract_features
from a2h_core.config import ModelConfig
from a2h_core.device import parse_device, parse_dtype
from a2h_core.io.image import resize_uint8
from a2h_core.training.config import PoseLossConfig
from a2h_core.training.datasets import MemoryClip, PoseWindows
from a2h_core.training.pose_task import PoseTask
from a2h_core.training.setup import discriminator_config
from a2h_core.training.trainer import optimiser_update
from a2h_devkit.synthetic_clips import SAMPLE_RATE, synthetic_clip


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return f"{platform.processor() or 'CPU'} ({torch.get_num_threads()} threads)"


def synthetic_batch(window: int, batch: int, size: int) -> dict[str, torch.Tensor]:
    seconds = max(4.0, (window + 2) / 25 + 0.5)
    clip = synthetic_clip(seconds, seed=0, size=64)
    features = extract_features(clip.audio, SAMPLE_RATE)
    count = min(len(clip.frames), features.num_frames)
    rows = np.asarray(features.values[: count * 4], np.float32).reshape(count, 4, 41)
    frames = np.stack([resize_uint8(f, size, size) for f in clip.frames[:count]])
    memory = MemoryClip("bench", rows, clip.poses.values[:count].astype(np.float32), frames)
    windows = PoseWindows([memory], window, min_length=batch)
    samples = [windows[i % len(windows)] for i in range(batch)]
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def measure(name: str, config: ModelConfig, args, device: torch.device) -> None:
    torch.manual_seed(0)
    loss = PoseLossConfig(window=args.window, discriminator=discriminator_config(config))
    task = PoseTask(config, loss, [], [])
    networks = {k: v.to(device).train() for k, v in task.networks().items()}
    optimizers = {name: torch.optim.Adam([p for n in members for p in networks[n].parameters()], lr=2e-4,
                                         weight_decay=2e-6) for name, members in task.optimizers().items()}
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
    update = optimiser_update(optimizers, scaler)
    autocast = contextlib.nullcontext if args.precision == "fp32" else \
        (lambda: torch.autocast(device.type, dtype=parse_dtype(args.precision)))
    batch = {k: v.to(device) for k, v in synthetic_batch(args.window, args.batch_size, args.image_size).items()}

    def step():
        task.training_step(networks, batch, update, autocast)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - started) / args.steps
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (CUDA max allocated)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process peak RSS)"
    parameters = sum(p.numel() for p in networks["predictor"].parameters())
    print(f"{name:<10} {parameters / 1e6:7.2f} M  {1 / seconds:9.3f} steps/s  {seconds:8.3f} s/step  "
          f"{args.batch_size * args.window / seconds:10.0f} frames/s  peak {peak}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=256, help="source image side (default 256, the model's)")
    parser.add_argument("--config", choices=("both", "reduced", "published"), default="both")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = parse_device(args.device)
    print(f"device: {device_name(device)}; torch {torch.__version__}; precision {args.precision}, batch "
          f"{args.batch_size}, window {args.window}, image {args.image_size} px; N_H + discriminator, one step = "
          "N_H update + discriminator update")
    print(f"{'config':<10} {'N_H params':>9}")
    if args.config in ("both", "reduced"):
        measure("reduced", ModelConfig.reduced(), args, device)
    if args.config in ("both", "published"):
        measure("published", ModelConfig.published(), args, device)


if __name__ == "__main__":
    main()
