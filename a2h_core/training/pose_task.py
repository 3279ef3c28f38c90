"""Training the head-motion predictor N_H (paper Sec. 3.2) on the shared loop.

N_H (`HeadPosePredictor`) sees the window's first frame and T frames of audio and outputs T + 1 normalised poses;
the loss is eq. 4: the SSIM loss of eq. 3 on the 6 x (T + 1) pose sequence plus the LSGAN loss of a 1-D PatchGAN
(`PoseSequenceDiscriminator`) on it. Poses are normalised to [-1, 1] with `normalize_poses`, the exact inverse of
the inference de-normalisation. One step updates N_H (its gradient passes through the discriminator, whose weights
are held), then the discriminator on the true sequences and the detached predictions, concatenated in one pass.

The exported weights file is complete: the trained N_H with the other three networks of `--init` (or freshly
initialised when training from scratch), so it loads wherever weights are asked for.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.io.weights import save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.pose_discriminator import PoseSequenceDiscriminator
from a2h_core.modules.pose_predictor import HeadPosePredictor, denormalize_poses
from a2h_core.previews.pose_comparison import plot_pose_comparison
from a2h_core.training.config import PoseLossConfig
from a2h_core.training.datasets import ClipSource, PoseWindows, window_sample
from a2h_core.training.losses import (
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    masked_for_discriminator,
    pose_predictor_loss,
    ssim_loss,
)
from a2h_core.training.metrics import clip_metrics, summarize
from a2h_core.training.trainer import TrainingTask, ValidationResult, safe_name, unwrap

VAL_MAX_FRAMES = 1000  # validation predicts at most this many frames of a clip (40 s)


def predict_clip(predictor: HeadPosePredictor, clip: ClipSource, device: torch.device,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 start: int = 0, max_frames: int = VAL_MAX_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """N_H on a clip from frame `start`, as at inference (the frame's image, the audio after it): predicted and true
    physical poses [L, 6] with L = min(frames - start, max_frames)."""
    length = min(clip.frames - start, max_frames)
    sample = window_sample(clip, start, length - 1)
    with torch.no_grad(), autocast():
        normalised = predictor(sample["image"][None].to(device), sample["audio"][None].to(device))
    predicted = denormalize_poses(normalised[0].float().cpu().numpy())
    true = denormalize_poses(sample["poses"].numpy())
    return predicted, true


def evaluate_predictor(predictor: HeadPosePredictor, clips: list[ClipSource], device: torch.device,
                       autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                       max_frames: int = VAL_MAX_FRAMES) -> tuple[dict, list[tuple[np.ndarray, np.ndarray]]]:
    """The metrics of `metrics.summarize` over `clips`, and each clip's (predicted, true) poses."""
    was_training = predictor.training
    predictor.eval()
    pairs, per_clip = [], []
    try:
        for clip in clips:
            predicted, true = predict_clip(predictor, clip, device, autocast, max_frames=max_frames)
            pairs.append((predicted, true))
            per_clip.append({**clip_metrics(predicted, true), "frames": len(true)})
    finally:
        predictor.train(was_training)
    return summarize(per_clip), pairs


def evaluate_constant(pose: np.ndarray, clips: list[ClipSource], max_frames: int = VAL_MAX_FRAMES) -> dict:
    """The metrics of a constant pose (e.g. the training set's mean pose) on `clips`: the baseline to beat."""
    per_clip = []
    for clip in clips:
        true = clip.window(0, min(clip.frames, max_frames)).poses[:max_frames].astype(np.float64)
        per_clip.append({**clip_metrics(np.repeat(pose[None], len(true), 0), true), "frames": len(true)})
    return summarize(per_clip)


def mean_pose(clips: list[ClipSource]) -> np.ndarray:
    """The mean pose over every frame of `clips` [6] (the constant baseline)."""
    total, count = np.zeros(6), 0
    for clip in clips:
        poses = clip.window(0, clip.frames).poses.astype(np.float64)
        total += poses.sum(0)
        count += len(poses)
    return total / max(count, 1)


class PoseTask(TrainingTask):
    """N_H and its discriminator on the shared loop."""

    name = "pose"

    def __init__(self, model_config: ModelConfig, loss: PoseLossConfig, train_clips: list[ClipSource],
                 val_clips: list[ClipSource], init: Audio2HeadModels | None = None, plot_clips: int = 3,
                 init_source: str | None = None):
        loss.check()
        self.model_config, self.loss = model_config, loss
        self.train_clips, self.val_clips = train_clips, val_clips
        self.init, self.init_source = init, init_source
        self.plot_clips = plot_clips
        self._networks: dict[str, nn.Module] | None = None
        self._base: Audio2HeadModels | None = None

    # -------------------------------------------------------------------------------------------- networks
    def networks(self) -> dict[str, nn.Module]:
        if self._networks is None:
            if self.init is not None:
                self._base = self.init
            else:
                self._base = Audio2HeadModels(self.model_config)  # seeded by the trainer: same on every process
            predictor = copy.deepcopy(self._base.audio2pose).float().requires_grad_(True)
            self._networks = {"predictor": predictor}
            if self.loss.gan_weight > 0:
                self._networks["discriminator"] = PoseSequenceDiscriminator(self.loss.discriminator)
        return self._networks

    def optimizers(self) -> dict[str, list[str]]:
        groups = {"predictor": ["predictor"]}
        if self.loss.gan_weight > 0:
            groups["discriminator"] = ["discriminator"]
        return groups

    def batch_norm_default(self) -> str:
        return "frozen" if self.init is not None else "batch"

    def train_dataset(self, seed: int, min_length: int) -> PoseWindows:
        return PoseWindows(self.train_clips, self.loss.window, seed=seed, min_length=min_length)

    # -------------------------------------------------------------------------------------------- one step
    def training_step(self, networks, batch, update, autocast) -> dict[str, float]:
        predictor = networks["predictor"]
        with autocast():
            predicted = predictor(batch["image"], batch["audio"])  # [B, T + 1, 6]
        predicted = predicted.float().transpose(1, 2)  # [B, 6, T + 1]
        true, mask = batch["poses"].transpose(1, 2), batch["mask"]
        ssim = ssim_loss(predicted, true, mask, self.loss.ssim_window, self.loss.ssim_sigma)
        values = {"ssim": float(ssim.detach())}
        adversarial = torch.zeros((), device=ssim.device)
        fake = None
        if self.loss.gan_weight > 0:
            discriminator = unwrap(networks["discriminator"])  # held: the predictor's step must not train it
            discriminator.requires_grad_(False)
            fake = masked_for_discriminator(predicted, true, mask)
            with autocast():
                adversarial = lsgan_generator_loss(discriminator(fake))
            discriminator.requires_grad_(True)
            values["gan_g"] = float(adversarial.detach())
        loss = pose_predictor_loss(ssim, adversarial, self.loss.ssim_weight, self.loss.gan_weight)
        update("predictor", loss)
        values["loss"] = float(loss.detach())
        if fake is not None:
            with autocast():
                scores = networks["discriminator"](torch.cat([true, fake.detach()]))
            real_scores, fake_scores = scores.split(len(true))
            d_loss = lsgan_discriminator_loss(real_scores, fake_scores)
            update("discriminator", d_loss)
            values["gan_d"] = float(d_loss.detach())
        return values

    # -------------------------------------------------------------------------------------------- validation
    def validate(self, networks, device, autocast) -> ValidationResult:
        predictor = unwrap(networks["predictor"])
        summary, pairs = evaluate_predictor(predictor, self.val_clips, device, autocast)
        images = {}
        for clip, (predicted, true) in list(zip(self.val_clips, pairs))[: self.plot_clips]:
            images[safe_name(clip.name)] = plot_pose_comparison(predicted, true, title=clip.name)
        metrics = {k: v for k, v in summary.items() if k != "per_dim"}
        metrics["per_dim"] = summary["per_dim"]
        return ValidationResult(metrics=metrics, score=summary["he"], images=images)

    # -------------------------------------------------------------------------------------------- export
    def trained_models(self, networks) -> Audio2HeadModels:
        """The complete networks: the trained N_H in the base model (--init, or freshly initialised)."""
        base = self._base
        trained = unwrap(networks["predictor"]).state_dict()
        base.audio2pose.load_state_dict({k: v.detach().to("cpu") for k, v in trained.items()})
        return base

    def export(self, networks, path, summary) -> object:
        models = self.trained_models(networks)
        metadata = {**summary, "trained": "audio2pose",
                    "other_networks": f"copied from {self.init_source}" if self.init_source else "freshly initialised"}
        return save_models(models, path, metadata)
