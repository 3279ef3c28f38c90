"""Typed configs of training: the loop's settings (`TrainConfig`) and the head-motion predictor's (`PoseLossConfig`).

Defaults follow the paper (Sec. 4.2): Adam, learning rate 2e-4, weight decay 2e-6, batch 64; N_H windows of 256
frames (Sec. 3.2). Every field is an option of `python -m a2h_core train`; a run folder's `config.json` records them.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from a2h_core.config import PoseDiscriminatorConfig
from a2h_core.errors import Audio2HeadError

PRECISIONS = ("fp32", "bf16", "fp16")  # --precision: autocast dtype; fp16 adds a gradient scaler
LR_SCHEDULES = ("constant", "cosine")  # --lr-schedule
BATCH_NORM_MODES = ("auto", "batch", "frozen")  # see TrainConfig.batch_norm


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the shared training loop (`trainer.Trainer`), whatever network it trains."""

    steps: int = 100_000  # optimiser steps to reach (a resumed run continues up to this)
    batch_size: int = 64  # global batch: split evenly across the processes of a distributed run
    lr: float = 2e-4  # Adam learning rate (paper)
    weight_decay: float = 2e-6  # Adam weight decay (paper)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas (the paper gives none: PyTorch's defaults)
    lr_schedule: str = "constant"  # "constant", or "cosine" decay to 0 at `steps`
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


def config_from_dict(cls, document: dict, where: str):
    """A (nested) config dataclass from a JSON dict; unknown fields raise Audio2HeadError naming them."""
    if not isinstance(document, dict):
        raise Audio2HeadError(f"{where}: expected a JSON object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(document) - names)
    if unknown:
        raise Audio2HeadError(f"{where}: unknown field(s) {unknown}")
    values = {}
    for name, value in document.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = config_from_dict(hint, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)
