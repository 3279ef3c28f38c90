"""Personalised head motion: fine-tune the head-motion predictor N_H on one short clip of a person.

Following the idea of Yi et al. 2020 (arXiv 2002.10137: a general mapping fine-tuned on ~300 frames of the target
person), N_H of a base model is fine-tuned on one clip of about 12 s: the person's speech and head-pose curve. The
clip's last `holdout_fraction` (20 %) is held out: HE, correlation and HS* on it are measured before and after, so a
user sees whether the motion moved towards the person's. The result is a complete weights file: the fine-tuned N_H
with the base model's other three networks, loadable wherever weights are asked for.

The loop is the shared `Trainer` (a single process; the run folder is temporary), so the paper's losses, mixed
precision and frozen batch statistics apply as in `train pose`. A progress callback that raises (ComfyUI's Cancel)
stops between steps; the output is written only after the last step, under a temporary name then renamed.
"""
from __future__ import annotations

import dataclasses
import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from a2h_core.audio.features import extract_features
from a2h_core.config import FEATURE_ROWS_PER_FRAME, FPS, IMAGE_SIZE, NUM_AUDIO_FEATURES
from a2h_core.errors import Audio2HeadError
from a2h_core.io.image import resize_uint8
from a2h_core.io.weights import read_safetensors, save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve, load_pose_curve
from a2h_core.training.config import PoseLossConfig, TrainConfig
from a2h_core.training.datasets import MemoryClip
from a2h_core.training.pose_task import PoseTask, evaluate_predictor
from a2h_core.training.prepare import clip_curve, decode_frames
from a2h_core.training.setup import discriminator_config
from a2h_core.training.trainer import Trainer

MIN_FRAMES = 75  # shortest clip worth personalising on (3 s): the held-out part must still show motion


@dataclass(frozen=True)
class PersonalizeConfig:
    """Settings of a personalisation run."""

    steps: int = 300  # optimiser steps
    batch_size: int = 8  # windows per step, drawn from the clip's first 80 %
    window: int = 64  # frames per window (short: one 12 s clip holds few 256-frame windows)
    lr: float = 1e-4  # Adam learning rate (half the paper's: fine-tuning)
    weight_decay: float = 2e-6  # Adam weight decay (paper)
    gan_weight: float = 1.0  # LSGAN weight (eq. 4)
    ssim_weight: float = 1.0  # SSIM weight (eq. 3)
    holdout_fraction: float = 0.2  # the clip's last share, held out for the before/after numbers
    precision: str = "fp32"  # fp32, bf16 or fp16
    device: str = "auto"  # auto: the GPU when there is one, else the CPU
    seed: int = 0  # window positions and the discriminator's initialisation


@dataclass
class PersonalizeResult:
    """What personalisation did."""

    path: Path | None  # the weights file written (None when only the models were asked for)
    models: Audio2HeadModels  # the personalised networks (CPU, float32, eval mode)
    before: dict  # held-out metrics of the base model
    after: dict  # held-out metrics after fine-tuning
    train_frames: int  # frames trained on
    holdout_frames: int  # frames held out


def person_clip(frames: np.ndarray, audio, curve: PoseCurve, name: str = "person", sample_rate: int | None = None,
                image_size: int = IMAGE_SIZE) -> MemoryClip:
    """A clip in memory from 25 fps RGB frames [N, H, W, 3] uint8, its audio (path, AUDIO dict or array with
    `sample_rate`) and its head-pose curve; the length is the shortest of frames, audio frames and poses."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise Audio2HeadError(f"the clip's frames must be [N, H, W, 3] uint8, got {frames.dtype} {frames.shape}")
    features = extract_features(audio, sample_rate)
    curve = curve if curve.fps == FPS else curve.resampled(FPS)
    count = min(len(frames), features.num_frames, len(curve))
    if abs(len(curve) - len(frames)) > 2:
        raise Audio2HeadError(f"the pose curve has {len(curve)} poses at 25 fps but the clip has {len(frames)} "
                              "frames: give the curve of this clip (one pose per frame)")
    if count < MIN_FRAMES:
        raise Audio2HeadError(f"the clip is {count} frames long; personalisation needs at least {MIN_FRAMES} "
                              f"({MIN_FRAMES / FPS:g} s, about 300 frames = 12 s recommended)")
    rows = np.asarray(features.values[: count * FEATURE_ROWS_PER_FRAME], dtype=np.float32)
    resized = np.stack([resize_uint8(f, image_size, image_size) for f in frames[:count]])
    return MemoryClip(name=name, features=rows.reshape(count, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES),
                      poses=curve.values[:count].astype(np.float32), frames_rgb=resized)


def person_clip_from_video(video: str | Path, pose_curve: str | Path | None = None, image_size: int = IMAGE_SIZE,
                           face_detector: str = "auto") -> MemoryClip:
    """A clip in memory from a video file with sound (any rate: resampled to 25 fps) and its curve: `pose_curve`,
    else the `<clip>.pose.json` / `.pose.csv` / OpenFace `.csv` beside it, else one fitted to the video's frames
    with `face_detector` (see `prepare.clip_curve`)."""
    video = Path(video)
    if not video.is_file():
        raise Audio2HeadError(f"--video {video} does not exist")
    frames, _ = decode_frames(video, image_size)
    curve = load_pose_curve(pose_curve) if pose_curve else clip_curve(video, frames, face_detector)[0]
    return person_clip(frames, video, curve, name=video.name, image_size=image_size)


def split_holdout(clip: MemoryClip, fraction: float) -> tuple[MemoryClip, MemoryClip]:
    """The clip's first part (for training) and its last `fraction` (held out, starting from its own frame)."""
    if not 0.05 <= fraction <= 0.5:
        raise Audio2HeadError(f"the held-out fraction must be within 0.05 .. 0.5, got {fraction}")
    cut = int(round(clip.frames * (1 - fraction)))
    first = MemoryClip(f"{clip.name} [0:{cut}]", clip.features[:cut], clip.poses[:cut], clip.frames_rgb[:cut])
    last = MemoryClip(f"{clip.name} [{cut}:]", clip.features[cut:], clip.poses[cut:], clip.frames_rgb[cut:])
    return first, last


def personalize(base: Audio2HeadModels, clip: MemoryClip, config: PersonalizeConfig = PersonalizeConfig(),
                out: str | Path | None = None, progress: Callable[[int, int, str], None] | None = None,
                base_name: str = "base model") -> PersonalizeResult:
    """Fine-tune `base`'s N_H on `clip` (see the module doc); write `out` when given. `base` is left unchanged."""
    base = _cpu_copy(base)
    train_part, held_out = split_holdout(clip, config.holdout_fraction)
    device = torch.device("cuda") if config.device == "auto" and torch.cuda.is_available() else \
        torch.device("cpu" if config.device == "auto" else config.device)
    before, _ = evaluate_predictor(base.audio2pose.to(device), [held_out], device)
    base.audio2pose.to("cpu")
    loss = PoseLossConfig(window=config.window, gan_weight=config.gan_weight, ssim_weight=config.ssim_weight,
                          discriminator=discriminator_config(base.config))
    train = TrainConfig(steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                        weight_decay=config.weight_decay, precision=config.precision, device=str(device),
                        seed=config.seed, batch_norm="frozen", val_every=config.steps,
                        checkpoint_every=config.steps, log_every=max(1, config.steps // 20), data_workers=0,
                        plot_clips=0)
    task = PoseTask(base.config, loss, [train_part], [held_out], init=base, init_source=base_name, plot_clips=0)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                tempfile.TemporaryDirectory(prefix="a2h-personalize-") as run_dir:
            summary = Trainer(task, train, run_dir, progress=progress,
                              run_config={"personalize": dataclasses.asdict(config)}).fit()
            tensors, _ = read_safetensors(summary.last_weights)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    base.load_state_dict(tensors, strict=True)
    base.eval().requires_grad_(False)
    after = summary.last_metrics
    result = PersonalizeResult(path=None, models=base, before=_scalars(before), after=_scalars(after),
                               train_frames=train_part.frames, holdout_frames=held_out.frames)
    if out is not None:
        metadata = {"personalized": json.dumps({"clip": clip.name, "base": base_name, "config":
                                                dataclasses.asdict(config), "holdout_before": result.before,
                                                "holdout_after": result.after, "train_frames": result.train_frames}),
                    "trained": "audio2pose", "other_networks": f"copied from {base_name}"}
        result.path = save_models(base, out, metadata)
    return result


def _cpu_copy(models: Audio2HeadModels) -> Audio2HeadModels:
    """A float32 CPU copy of the networks (the caller's stay where and as they are)."""
    with torch.device("meta"):
        copy = Audio2HeadModels(models.config)
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
             for k, v in models.state_dict().items()}
    copy.load_state_dict(state, strict=True, assign=True)
    return copy.eval()


def _scalars(metrics: dict) -> dict:
    return {k: float(metrics[k]) for k in ("he", "correlation", "hs_star")}
