"""Training the keypoint detector N_D and the occlusion-aware generator N_I (paper Sec. 4.2: the First Order Motion
Model recipe, Siarohin et al. 2019) on the shared loop.

One step, per pair of frames of the same clip (a source and a driving frame): N_D detects keypoints and Jacobians
on the source, the driving frame and a randomly thin-plate-spline-warped copy of the driving frame (one batched
pass); N_I warps the source to the driving keypoints and renders it. The loss (FOMM's vox-256 weights, in
`KeypointLossConfig`) is the multi-scale VGG-19 perceptual loss between the rendering and the driving frame plus
the equivariance losses on keypoints and Jacobians under the random transform (`keypoint_losses`), and, when
`gan_weight` > 0, FOMM's optional LSGAN and feature-matching terms with a frame discriminator (its own optimiser).
N_D and N_I share one Adam (FOMM gives each its own with the same settings: the same updates).

Validation renders, for each held-out clip, frames spread over the clip from its first frame (the video-driven
reconstruction of FOMM's evaluation) and reports the perceptual loss, L1, PSNR and SSIM; the perceptual loss picks
best.safetensors. The exported weights file is complete: the trained N_D and N_I with N_H and N_M of `--init` (or
freshly initialised).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.io.weights import save_models
from a2h_core.modules.image_discriminator import FrameDiscriminator
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.previews.frame_strip import frame_strip
from a2h_core.training.config import KeypointLossConfig
from a2h_core.training.datasets import ClipSource, FramePairs
from a2h_core.training.keypoint_losses import (
    ImagePyramid,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    lsgan_generator_terms,
    multiscale_perceptual_loss,
)
from a2h_core.training.losses import lsgan_discriminator_loss
from a2h_core.training.pretrained import load_vgg
from a2h_core.training.tps import RandomTPS, noise_size
from a2h_core.training.trainer import TrainingTask, ValidationResult, safe_name, unwrap
from a2h_core.training.video_metrics import psnr_per_frame, ssim_per_frame

VAL_FRAMES = 8  # driving frames per validation clip, spread over the clip


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in 0..1 -> [N, H, W, 3] uint8 (truncated, as the inference path converts frames)."""
    return (images.detach().float().clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class KeypointTask(TrainingTask):
    """N_D and N_I (and the optional frame discriminator) on the shared loop."""

    name = "keypoints"

    def __init__(self, model_config: ModelConfig, loss: KeypointLossConfig, train_clips: list[ClipSource],
                 val_clips: list[ClipSource], init: Audio2HeadModels | None = None, init_source: str | None = None,
                 vgg_weights: str | None = None, plot_clips: int = 3, log=print):
        loss.check()
        self.model_config, self.loss = model_config, loss
        self.train_clips, self.val_clips = train_clips, val_clips
        self.init, self.init_source, self.plot_clips = init, init_source, plot_clips
        self.vgg = load_vgg(loss.perceptual, vgg_weights, log=log)  # fixed: never in networks(), never trained
        self.pyramid = ImagePyramid(loss.scales, model_config.num_channels)
        self._networks: dict[str, nn.Module] | None = None
        self._base: Audio2HeadModels | None = None

    # -------------------------------------------------------------------------------------------- networks
    def networks(self) -> dict[str, nn.Module]:
        if self._networks is None:
            self._base = self.init if self.init is not None else Audio2HeadModels(self.model_config)
            self._networks = {
                "kp_detector": copy.deepcopy(self._base.kp_detector).float().requires_grad_(True),
                "generator": copy.deepcopy(self._base.generator).float().requires_grad_(True),
            }
            if self.loss.gan_weight > 0:
                self._networks["discriminator"] = FrameDiscriminator(self.loss.discriminator,
                                                                     self.model_config.num_channels)
        return self._networks

    def optimizers(self) -> dict[str, list[str]]:
        groups = {"generator": ["kp_detector", "generator"]}
        if self.loss.gan_weight > 0:
            groups["discriminator"] = ["discriminator"]
        return groups

    def batch_norm_default(self) -> str:
        return "frozen" if self.init is not None else "batch"

    def train_dataset(self, seed: int, min_length: int) -> FramePairs:
        return FramePairs(self.train_clips, seed=seed, min_length=min_length, repeats=self.loss.repeats,
                          noise_size=noise_size(self.loss.points_tps), augmentation=self.loss.augmentation)

    def _fixed_to(self, device: torch.device) -> None:
        """The fixed helper networks (VGG, pyramid kernels) on the training device (moved once)."""
        if next(self.vgg.parameters()).device != device:
            self.vgg.to(device)
            self.pyramid.to(device)

    # -------------------------------------------------------------------------------------------- one step
    def training_step(self, networks, batch, update, autocast) -> dict[str, float]:
        source, driving = batch["source"], batch["driving"]
        self._fixed_to(source.device)
        loss_cfg = self.loss
        batch_size = len(source)
        equivariance = loss_cfg.equivariance_value + loss_cfg.equivariance_jacobian > 0
        transform = None
        frames = [source, driving]
        if equivariance:
            transform = RandomTPS(batch_size, loss_cfg.sigma_affine, loss_cfg.sigma_tps, loss_cfg.points_tps,
                                  device=source.device, noise=batch["noise"])
            frames.append(transform.warp_frames(driving))
        with autocast():
            # One pass per kind of frame, as FOMM: in training mode each gets its own batch-norm statistics.
            kp_source, kp_driving, *kp_transformed = (networks["kp_detector"](images) for images in frames)
            generated = networks["generator"](source, None, kp_source, kp_driving)["prediction"]
        generated = generated.float()
        perceptual = multiscale_perceptual_loss(self.vgg, self.pyramid, generated, driving,
                                                loss_cfg.perceptual_weights)
        values = {"perceptual": float(perceptual.detach())}
        loss = perceptual
        if transform is not None:
            kp_transformed = kp_transformed[0]
            eq_value = equivariance_value_loss(kp_driving, kp_transformed, transform)
            values["equivariance_value"] = float(eq_value.detach())
            loss = loss + loss_cfg.equivariance_value * eq_value
            if kp_driving.jacobian is not None and loss_cfg.equivariance_jacobian > 0:
                eq_jacobian = equivariance_jacobian_loss(kp_driving, kp_transformed, transform)
                values["equivariance_jacobian"] = float(eq_jacobian.detach())
                loss = loss + loss_cfg.equivariance_jacobian * eq_jacobian
        fake = None
        if loss_cfg.gan_weight > 0:
            discriminator = unwrap(networks["discriminator"])  # held: the generator's step must not train it
            discriminator.requires_grad_(False)
            with autocast():
                fake_scores, fake_features = discriminator(generated)
                with torch.no_grad():
                    _, real_features = discriminator(driving)
            discriminator.requires_grad_(True)
            gan, matching = lsgan_generator_terms(fake_scores, fake_features, real_features,
                                                  loss_cfg.feature_matching)
            values["gan_g"], values["feature_matching"] = float(gan.detach()), float(matching.detach())
            loss = loss + loss_cfg.gan_weight * gan + matching
            fake = generated.detach()
        update("generator", loss)
        values["loss"] = float(loss.detach())
        values["l1"] = float((generated.detach() - driving).abs().mean())
        if fake is not None:
            with autocast():
                scores, _ = networks["discriminator"](torch.cat([driving, fake]))
            real_scores, fake_scores = scores.float().split(batch_size)
            d_loss = lsgan_discriminator_loss(real_scores, fake_scores)
            update("discriminator", d_loss)
            values["gan_d"] = float(d_loss.detach())
        return values

    # -------------------------------------------------------------------------------------------- validation
    def reconstruct(self, networks, clip: ClipSource, device: torch.device, autocast,
                    count: int = VAL_FRAMES) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """The clip's first frame animated to `count` frames spread over the clip: (real, generated) uint8 frames
        and the perceptual loss."""
        kp_detector, generator = unwrap(networks["kp_detector"]), unwrap(networks["generator"])
        indices = np.unique(np.linspace(0, clip.frames - 1, min(count, clip.frames)).round().astype(int))
        real = np.stack([clip.frames_range(int(i), 1)[0] for i in indices])
        images = torch.from_numpy(real).permute(0, 3, 1, 2).float().to(device) / 255.0
        with autocast():
            kp_source = kp_detector(images[:1])
            kp_driving = kp_detector(images)
            generated = generator(images[:1], None, kp_source, kp_driving)["prediction"].float()
        perceptual = multiscale_perceptual_loss(self.vgg, self.pyramid, generated, images,
                                                self.loss.perceptual_weights)
        return real, to_uint8(generated), perceptual

    def validate(self, networks, device, autocast) -> ValidationResult:
        self._fixed_to(device)
        per_clip, images = [], {}
        for index, clip in enumerate(self.val_clips):
            real, generated, perceptual = self.reconstruct(networks, clip, device, autocast)
            per_clip.append({"perceptual": float(perceptual),
                             "l1": float(np.abs(real.astype(np.float64) - generated).mean() / 255.0),
                             "psnr": float(np.mean(np.minimum(psnr_per_frame(generated, real), 100.0))),
                             "ssim": float(np.mean(ssim_per_frame(generated, real)))})
            if index < self.plot_clips:
                images[safe_name(clip.name)] = frame_strip({"real": real, "generated": generated})
        metrics = {key: float(np.mean([c[key] for c in per_clip])) for key in per_clip[0]}
        metrics["clips"] = len(per_clip)
        return ValidationResult(metrics=metrics, score=metrics["perceptual"], images=images)

    # -------------------------------------------------------------------------------------------- export
    def trained_models(self, networks) -> Audio2HeadModels:
        """The complete networks: the trained N_D and N_I in the base model (--init, or freshly initialised)."""
        base = self._base
        for name in ("kp_detector", "generator"):
            trained = unwrap(networks[name]).state_dict()
            getattr(base, name).load_state_dict({k: v.detach().to("cpu") for k, v in trained.items()})
        return base

    def export(self, networks, path, summary):
        metadata = {**summary, "trained": "kp_detector,generator",
                    "other_networks": f"copied from {self.init_source}" if self.init_source else "freshly initialised"}
        return save_models(self.trained_models(networks), path, metadata)
