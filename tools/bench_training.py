"""Training speed and peak memory of every trainer on synthetic data: N_H (SSIM + LSGAN step), N_D + N_I (FOMM's
reconstruction step), N_M stage 1 (eq. 5) and stage 2 (eq. 7), each one Adam step as the trainer takes it.

    python tools/bench_training.py                       # CPU: reduced and published N_H, batch 8, window 64
    python tools/bench_training.py --task all --batch-size 4   # every trainer, reduced and published, one process each
    python tools/bench_training.py --task keypoints --device cuda --precision bf16 --config published

Each step is the real one: the task's `training_step` (e.g. `PoseTask`: N_H forward, eq. 3 + eq. 4, N_H update,
discriminator update; `KeypointTask`: N_D on source, driving and transformed frames, N_I, VGG-19 pyramid,
equivariance; `MotionTask`: frozen N_D targets on the window's T frames, N_M, and in stage 2 N_I rendering
`--render-frames` frames, VGG-16 pyramid and the transformed second N_M pass) through the trainer's
`optimiser_update`, under the chosen autocast precision. The VGGs have random weights here (speed is the same).
`--task all` runs each (task, config) in its own process, so each peak memory is its own. Inputs are windows of a
synthetic talking-head clip (a2h_devkit.synthetic_clips) at the model's 256 px. Prints the device name, then per config:
steps per second, frames (samples x window) per second and peak memory: CUDA's max allocated memory on a GPU, the
process's peak resident memory on the CPU (which includes Python and torch themselves).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2h_core.audio.features import extract_features
from a2h_core.config import ModelConfig, PerceptualConfig
from a2h_core.device import parse_device, parse_dtype
from a2h_core.io.image import resize_uint8
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.perceptual import VGGFeatures
from a2h_core.training.config import KeypointLossConfig, MotionLossConfig, PoseLossConfig
from a2h_core.training.datasets import FramePairs, MemoryClip, MotionWindows, PoseWindows
from a2h_core.training.keypoint_task import KeypointTask
from a2h_core.training.motion_task import MotionTask
from a2h_core.training.pose_task import PoseTask
from a2h_core.training.setup import discriminator_config
from a2h_core.training.tps import noise_size
from a2h_core.training.trainer import optimiser_update
from a2h_devkit.synthetic_clips import SAMPLE_RATE, synthetic_clip

TASKS = ("pose", "keypoints", "motion1", "motion2")


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


def frame_batch(task_name: str, config: ModelConfig, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of the keypoints or motion trainer at the model's image size, from a synthetic clip."""
    size = config.image_size
    seq_len = config.motion_field.seq_len
    clip = synthetic_clip(max(4.0, (seq_len + 2) / 25 + 0.5), seed=0, size=size)
    features = extract_features(clip.audio, SAMPLE_RATE)
    count = min(len(clip.frames), features.num_frames)
    rows = np.asarray(features.values[: count * 4], np.float32).reshape(count, 4, 41)
    memory = MemoryClip("bench", rows, clip.poses.values[:count].astype(np.float32), clip.frames[:count])
    noise = noise_size(5)
    dataset = (FramePairs([memory], min_length=batch, noise_size=noise) if task_name == "keypoints"
               else MotionWindows([memory], seq_len, min_length=batch, noise_size=noise))
    samples = [dataset[i % len(dataset)] for i in range(batch)]
    return {key: torch.stack([s[key] for s in samples]).to(device) for key in samples[0]}


def build_task(task_name: str, config: ModelConfig, args):
    """The task with random-weight VGGs of the full (published) or 8x narrowed (reduced) width."""
    reduced = config.pose_predictor == ModelConfig.reduced().pose_predictor
    if task_name == "pose":
        return PoseTask(config, PoseLossConfig(window=args.window, discriminator=discriminator_config(config)),
                        [], [])
    divisor = 8 if reduced else 1
    quiet = lambda message: None  # noqa: E731
    if task_name == "keypoints":
        loss = KeypointLossConfig(perceptual=PerceptualConfig(width_divisor=8))
        task = KeypointTask(config, loss, [], [], log=quiet)
        task.vgg = VGGFeatures(dataclasses.replace(loss.perceptual, width_divisor=divisor)).eval()
    else:
        stage = int(task_name[-1])
        base = MotionLossConfig().perceptual
        loss = MotionLossConfig(stage=stage, render_frames=args.render_frames,
                                perceptual=dataclasses.replace(base, width_divisor=8))
        task = MotionTask(config, loss, [], [], init=Audio2HeadModels(config), log=quiet)
        if task.vgg is not None:
            task.vgg = VGGFeatures(dataclasses.replace(base, width_divisor=divisor)).eval()
    if task.vgg is not None:
        task.vgg.requires_grad_(False)
    return task


def measure(name: str, config: ModelConfig, args, device: torch.device, task_name: str = "pose") -> None:
    torch.manual_seed(0)
    task = build_task(task_name, config, args)
    networks = {k: v.to(device).train() for k, v in task.networks().items()}
    optimizers = {name: torch.optim.Adam([p for n in members for p in networks[n].parameters()], lr=2e-4,
                                         weight_decay=2e-6) for name, members in task.optimizers().items()}
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
    update = optimiser_update(optimizers, scaler)
    autocast = contextlib.nullcontext if args.precision == "fp32" else \
        (lambda: torch.autocast(device.type, dtype=parse_dtype(args.precision)))
    if task_name == "pose":
        batch = {k: v.to(device) for k, v in synthetic_batch(args.window, args.batch_size, args.image_size).items()}
        frames = args.batch_size * args.window
    else:
        batch = frame_batch(task_name, config, args.batch_size, device)
        frames = args.batch_size * (1 if task_name == "keypoints" else config.motion_field.seq_len)

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
    parameters = sum(p.numel() for net in networks.values() for p in net.parameters())
    print(f"{task_name:<10} {name:<10} {parameters / 1e6:8.2f} M  {1 / seconds:9.3f} steps/s  {seconds:8.3f} s/step  "
          f"{frames / seconds:10.1f} frames/s  peak {peak}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=256, help="source image side (default 256, the model's)")
    parser.add_argument("--config", choices=("both", "reduced", "published"), default="both")
    parser.add_argument("--quiet-header", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    parser.add_argument("--task", choices=(*TASKS, "all"), default="pose",
                        help="pose (N_H, default), keypoints (N_D + N_I), motion1 / motion2 (N_M stages), or all")
    parser.add_argument("--render-frames", type=int, default=8, help="motion2: frames rendered per window")
    args = parser.parse_args()
    device = parse_device(args.device)
    if not args.quiet_header:
        print(f"device: {device_name(device)}; torch {torch.__version__}; precision {args.precision}, batch "
              f"{args.batch_size}; pose: window {args.window}, image {args.image_size} px; keypoints/motion at the "
              "model's image size (256), motion windows of seq_len (64) frames")
        print(f"{'task':<10} {'config':<10} {'trained params':>10}", flush=True)
    if args.task == "all":  # one process per measurement: each peak memory is its own
        import subprocess

        configs = ("reduced", "published") if args.config == "both" else (args.config,)
        rest = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                if k not in ("task", "config", "quiet_header")]
        for task_name in TASKS:
            for config in configs:
                subprocess.run([sys.executable, __file__, *rest, "--task", task_name, "--config", config,
                                "--quiet-header"], check=False)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config in ("both", "reduced"):
        measure("reduced", ModelConfig.reduced(), args, device, args.task)
    if args.config in ("both", "published"):
        measure("published", ModelConfig.published(), args, device, args.task)


if __name__ == "__main__":
    main()
