"""The head-motion predictor's losses, numbered as in the paper (Wang et al., IJCAI 2021, Sec. 3.2).

Pose sequences are [B, 6, L] in the predictor's normalised range [-1, 1] (`normalize_poses`), with an optional
mask [B, L] (1 on real frames, 0 on the padding of clips shorter than the window). Losses are averaged per sample,
then over the batch, so a distributed batch split across processes gives the same gradient as one process.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POSE_DYNAMIC_RANGE = 2.0  # the normalised poses span [-1, 1]
SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004: C1 = (K1 L)^2, C2 = (K2 L)^2


def gaussian_window(size: int, sigma: float, device=None) -> torch.Tensor:
    """A normalised 1-D Gaussian [size] (float32)."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    window = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return window / window.sum()


def ssim_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
              window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Eq. 3: 1 - SSIM of the predicted and true pose sequences taken as 6 x L images.

    The eq. 3 term (2 mu mu^ + C1)(2 cov + C2) / ((mu^2 + mu^^2 + C1)(sigma^2 + sigma^^2 + C2)) is evaluated in a
    Gaussian window along time around every frame and averaged over frames and pose dimensions: the mean SSIM of
    Wang et al. 2004, the paper's reference. The window runs along time only, separately per dimension: the six rows
    are different quantities (rotations, translations), so mixing neighbouring rows would mean nothing. C1 and C2
    use the dynamic range 2 of [-1, 1]. Padded frames are left out of the local statistics and of the average.
    predicted, target [B, 6, L]; mask [B, L] or None. Returns a scalar.
    """
    predicted, target = predicted.float(), target.float()
    batch, dims, length = predicted.shape
    if mask is None:
        mask = torch.ones(batch, length, device=predicted.device)
    m = mask.float().unsqueeze(1).expand(batch, dims, length).reshape(batch * dims, 1, length)
    x = predicted.reshape(batch * dims, 1, length)
    y = target.reshape(batch * dims, 1, length)
    kernel = gaussian_window(window, sigma, predicted.device).view(1, 1, -1)

    def local(values: torch.Tensor) -> torch.Tensor:
        return F.conv1d(values, kernel, padding=window // 2)

    weight = local(m).clamp_min(1e-6)
    mu_x, mu_y = local(m * x) / weight, local(m * y) / weight
    var_x = (local(m * x * x) / weight - mu_x ** 2).clamp_min(0)
    var_y = (local(m * y * y) / weight - mu_y ** 2).clamp_min(0)
    cov = local(m * x * y) / weight - mu_x * mu_y
    c1, c2 = (SSIM_K1 * POSE_DYNAMIC_RANGE) ** 2, (SSIM_K2 * POSE_DYNAMIC_RANGE) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    per_sample = (ssim_map * m).reshape(batch, -1).sum(1) / m.reshape(batch, -1).sum(1).clamp_min(1)
    return 1 - per_sample.mean()


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 4, the predictor's side of min_N_H max_D, least-squares GAN (Mao et al. 2017): mean (D(fake) - 1)^2."""
    return _per_sample_mean((fake_scores.float() - 1) ** 2)


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 4, the discriminator's side: (mean (D(real) - 1)^2 + mean D(fake)^2) / 2."""
    return 0.5 * (_per_sample_mean((real_scores.float() - 1) ** 2) + _per_sample_mean(fake_scores.float() ** 2))


def pose_predictor_loss(ssim: torch.Tensor, adversarial: torch.Tensor, ssim_weight: float = 1.0,
                        gan_weight: float = 1.0) -> torch.Tensor:
    """Eq. 4: L_N_H = L_GAN + L_SSIM (each with a weight, 1 in the paper)."""
    return ssim_weight * ssim + gan_weight * adversarial


def _per_sample_mean(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).mean(1).mean()


def masked_for_discriminator(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The predicted sequence with padded frames replaced by the true (held) ones, so padding looks the same to the
    discriminator in real and fake sequences and carries no signal."""
    if mask is None:
        return predicted
    keep = mask.to(predicted.dtype).unsqueeze(1)
    return predicted * keep + target * (1 - keep)

