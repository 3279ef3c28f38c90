"""Typed configs of training: the loop's settings (`TrainConfig`), the head-motion predictor's (`PoseLossConfig`),
the keypoint detector and generator's (`KeypointLossConfig`, FOMM's vox-256 recipe) and the motion field
generator's two stages (`MotionLossConfig`, paper eqs. 5-7).

Defaults follow the paper (Sec. 4.2): Adam, learning rate 2e-4, weight decay 2e-6, batch 64; N_H windows of 256
frames (Sec. 3.2). N_D + N_I follow FOMM's vox-256 recipe instead, as the paper says it does (`recipe_defaults`).
Every field is an option of `python -m a2h_core train`; a run folder's `config.json` records them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from a2h_core.config import ImageDiscriminatorConfig, PerceptualConfig, PoseDiscriminatorConfig
from a2h_core.config import config_from_dict as core_config_from_dict
from a2h_core.errors import Audio2HeadError

PRECISIONS = ("fp32", "bf16", "fp16")  # --precision: autocast dtype; fp16 adds a gradient scaler
LR_SCHEDULES = ("constant", "cosine", "multistep")  # --lr-schedule
BATCH_NORM_MODES = ("auto", "batch", "frozen")  # see TrainConfig.batch_norm


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the shared training loop (`trainer.Trainer`), whatever network it trains."""

    steps: int = 100_000  # optimiser steps to reach (a resumed run continues up to this)
    batch_size: int = 64  # global batch: split evenly across the processes of a distributed run
    lr: float = 2e-4  # Adam learning rate (paper)
    weight_decay: float = 2e-6  # Adam weight decay (paper)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas (the paper gives none: PyTorch's defaults)
    lr_schedule: str = "constant"  # "constant"; "cosine" decay to 0 at `steps`; "multistep": times `lr_gamma` at
    #                                each of `lr_milestones` (FOMM's MultiStepLR)
    lr_milestones: tuple[float, ...] = (60.0, 90.0)  # "multistep": epochs after which the rate is multiplied by
    #                                                  `lr_gamma` (FOMM's epoch_milestones; an epoch is one pass over
    #                                                  the training samples, logged as batches_per_epoch)
    lr_gamma: float = 0.1  # "multistep": the factor at each milestone (FOMM's)
    precision: str = "fp32"  # "fp32", "bf16" or "fp16" (autocast; fp16 with a gradient scaler)
    grad_clip: float = 0.0  # clip each optimiser's gradient norm to this; 0: off
    seed: int = 0  # seeds initialisation, the data order and the window positions
    device: str = "auto"  # "auto" (the local CUDA GPU of this process when there is one, else CPU), "cpu", "cuda"
    batch_norm: str = "auto"  # "batch": batch statistics (SyncBatchNorm across GPUs); "frozen": running statistics,
    #                           affine parameters still learn; "auto": frozen when starting from weights, else batch
    log_every: int = 10  # steps between JSONL log lines (losses averaged over the processes)
    val_every: int = 1000  # steps between validations (metrics, plots, last/best weights); also at the end
    checkpoint_every: int = 1000  # steps between saves of the training state for --resume; also at the end
    data_workers: int = 2  # DataLoader worker processes per training process (0: load in the main process)
    val_max_clips: int = 64  # validation uses the first this many clips of the split (by name)
    plot_clips: int = 3  # validation clips drawn as predicted-vs-true PNGs

    def check(self) -> None:
        """Raise Audio2HeadError naming a bad value and its allowed range."""
        if self.precision not in PRECISIONS:
            raise Audio2HeadError(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise Audio2HeadError(f"--lr-schedule {self.lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
        if self.batch_norm not in BATCH_NORM_MODES:
            raise Audio2HeadError(f"--batch-norm {self.batch_norm!r}: use one of {', '.join(BATCH_NORM_MODES)}")
        for name in ("steps", "batch_size", "log_every", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise Audio2HeadError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise Audio2HeadError(f"--lr must be positive, got {self.lr}")
        if not 0 < self.lr_gamma <= 1 or any(m <= 0 for m in self.lr_milestones):
            raise Audio2HeadError("--lr-gamma must be in (0, 1] and --lr-milestones positive epochs, got "
                                  f"{self.lr_gamma} and {list(self.lr_milestones)}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise Audio2HeadError(f"--betas takes two numbers in [0, 1), got {list(self.betas)}")


def recipe_defaults(network: str) -> dict:
    """TrainConfig values that differ from the defaults for one network: N_D + N_I follow FOMM's vox-256 recipe (Adam
    betas (0.5, 0.999) without weight decay; the rate x0.1 after epochs 60 and 90 of 100) with the paper's batch of
    28 for them; N_M trains in batches of 4 (paper Sec. 4.2)."""
    if network == "keypoints":
        return {"batch_size": 28, "betas": (0.5, 0.999), "weight_decay": 0.0,
                "lr_schedule": "multistep"}  # milestones: the defaults
    if network == "motion":
        return {"batch_size": 4}
    return {}


@dataclass(frozen=True)
class PoseLossConfig:
    """The head-motion predictor N_H's training (paper Sec. 3.2: eq. 3 SSIM + eq. 4 LSGAN)."""

    window: int = 256  # frames of audio per training sample (T); the predictor outputs T + 1 poses
    ssim_weight: float = 1.0  # weight of the SSIM loss (eq. 3)
    gan_weight: float = 1.0  # weight of the LSGAN generator loss (eq. 4); 0 trains with SSIM alone
    ssim_window: int = 11  # frames in the SSIM's Gaussian window along time
    ssim_sigma: float = 1.5  # standard deviation of that window, in frames (Wang et al. 2004)
    discriminator: PoseDiscriminatorConfig = field(default_factory=PoseDiscriminatorConfig)  # the 1-D PatchGAN

    def check(self) -> None:
        if self.window < 32:
            raise Audio2HeadError(f"--window must be at least 32 frames (the discriminator's receptive field), got "
                                  f"{self.window}")
        if self.ssim_weight < 0 or self.gan_weight < 0 or self.ssim_weight + self.gan_weight == 0:
            raise Audio2HeadError("the loss weights must be >= 0 and not both 0")


@dataclass(frozen=True)
class AugmentationConfig:
    """Frame augmentation of N_D + N_I's pairs (FOMM's vox-256 `augmentation_params`), the same draw for the source
    and the driving frame: a time flip (source and driving swapped), else a horizontal flip, each with probability
    1/2 (FOMM's RandomFlip skips the horizontal flip when it flips time); then colour jitter with factors uniform in
    [1 - x, 1 + x] (hue: a shift uniform in +-hue of the full circle), applied in a random order."""

    horizontal_flip: bool = True  # mirror both frames left-right
    time_flip: bool = True  # swap source and driving
    brightness: float = 0.1  # jitter of brightness (0: off)
    contrast: float = 0.1  # jitter of contrast (0: off)
    saturation: float = 0.1  # jitter of saturation (0: off)
    hue: float = 0.1  # jitter of hue, a fraction of the colour circle, at most 0.5 (0: off)

    def check(self) -> None:
        if min(self.brightness, self.contrast, self.saturation, self.hue) < 0 or self.hue > 0.5:
            raise Audio2HeadError("augmentation jitter amounts must be >= 0 (hue at most 0.5)")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return (self.horizontal_flip or self.time_flip
                or max(self.brightness, self.contrast, self.saturation, self.hue) > 0)


NO_AUGMENTATION = AugmentationConfig(False, False, 0.0, 0.0, 0.0, 0.0)  # --no-augmentation


@dataclass(frozen=True)
class KeypointLossConfig:
    """N_D + N_I training: FOMM's self-supervised reconstruction with its vox-256 loss weights."""

    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)  # image pyramid of the perceptual loss
    perceptual_weights: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)  # per VGG-19 layer (relu1_1 .. relu5_1)
    equivariance_value: float = 10.0  # weight of the keypoint equivariance loss
    equivariance_jacobian: float = 10.0  # weight of the Jacobian equivariance loss (ignored without Jacobians)
    sigma_affine: float = 0.05  # std of the random affine part of the equivariance transform
    sigma_tps: float = 0.005  # std of the random thin-plate-spline weights
    points_tps: int = 5  # the thin-plate spline's control points per side (5 x 5)
    gan_weight: float = 0.0  # FOMM's generator_gan: the optional LSGAN term; 0 (vox-256) trains no discriminator
    feature_matching: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0)  # per discriminator block, with the GAN only
    repeats: int = 75  # (source, driving) pairs drawn from each clip per epoch (FOMM's num_repeats)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)  # FOMM's vox-256 augmentation
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)  # VGG-19, FOMM's layers
    discriminator: ImageDiscriminatorConfig = field(default_factory=ImageDiscriminatorConfig)  # with the GAN only

    def check(self) -> None:
        self.perceptual.check()
        self.augmentation.check()
        if self.repeats < 1:
            raise Audio2HeadError(f"--repeats must be at least 1, got {self.repeats}")
        if len(self.perceptual_weights) != len(self.perceptual.layers):
            raise Audio2HeadError(f"{len(self.perceptual_weights)} perceptual weights for "
                                  f"{len(self.perceptual.layers)} VGG layers")
        for scale in self.scales:
            if not 0 < scale <= 1 or abs(round(1 / scale) * scale - 1) > 1e-9:
                raise Audio2HeadError(f"pyramid scale {scale}: use 1 / n (1, 0.5, 0.25, ...)")
        if min(self.equivariance_value, self.equivariance_jacobian, self.gan_weight) < 0:
            raise Audio2HeadError("loss weights must be >= 0")


@dataclass(frozen=True)
class MotionLossConfig:
    """N_M training with N_D and N_I frozen (paper Sec. 3.3): stage 1 is eq. 5, stage 2 eq. 7."""

    stage: int = 1  # 1: imitate N_D's heatmaps, keypoints and Jacobians; 2: render through N_I and fine-tune
    heatmap_weight: float = 1.0  # eq. 5's lambda_m at step 0
    heatmap_decay_steps: int = 10_000  # lambda_m decays linearly to 0 over this many steps (0: never decays)
    keypoint_weight: float = 10.0  # eq. 5's lambda_p
    jacobian_weight: float = 10.0  # eq. 5's lambda_j
    stage2_keypoint_weight: float = 100.0  # eq. 7's lambda'_p
    reconstruction_weight: float = 10.0  # eq. 7's lambda_rec
    equivariance_value: float = 10.0  # eq. 7's lambda_eq^P
    equivariance_jacobian: float = 10.0  # eq. 7's lambda_eq^J
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)  # eq. 6's image pyramid
    render_frames: int = 8  # stage 2: frames of each window rendered through N_I per step (memory), at random
    sigma_affine: float = 0.05  # equivariance transform, as for N_D (FOMM's values)
    sigma_tps: float = 0.005  # thin-plate-spline weight std
    points_tps: int = 5  # control points per side
    perceptual: PerceptualConfig = field(  # eq. 6's "specific VGG-16 layer" (the paper does not say which)
        default_factory=lambda: PerceptualConfig(arch="vgg16", layers=("relu3_3",)))

    def check(self) -> None:
        if self.stage not in (1, 2):
            raise Audio2HeadError(f"--stage {self.stage}: use 1 or 2")
        if self.render_frames < 1:
            raise Audio2HeadError(f"--render-frames must be at least 1, got {self.render_frames}")
        self.perceptual.check()


def config_from_dict(cls, document: dict, where: str):
    """A (nested) config dataclass from a JSON dict (`a2h_core.config.config_from_dict`), with its refusal of unknown
    fields or a non-object as an Audio2HeadError, the command line's one-line error."""
    try:
        return core_config_from_dict(cls, document, where)
    except ValueError as exc:
        raise Audio2HeadError(str(exc)) from None
