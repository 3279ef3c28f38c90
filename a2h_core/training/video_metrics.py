"""Video metrics of the talking-head evaluation (paper Sec. 5.1, Table 1-2): PSNR, SSIM, KE, LPIPS, FID.

Frames are [N, H, W, 3] uint8 RGB (real and generated, same size); keypoints [N, K, 2] in [-1, 1].

- **PSNR**: 10 log10(255^2 / MSE) per frame over all pixels and channels; a clip's PSNR is the mean over frames
  (a frame identical to the truth counts +inf and is reported as such).
- **SSIM**: Wang et al. 2004 with an 11-tap Gaussian window (sigma 1.5), K1 0.01, K2 0.03, data range 255,
  population (not sample) covariances, per channel, averaged over the pixels at least 5 from the border and the
  channels: scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=-1)`, which the tests compare with.
- **KE** (Table 2): the L1 distance between generated and real keypoints, taken as the mean absolute difference
  over frames, keypoints and both coordinates, in normalised image units ([-1, 1] spans the image). The paper does
  not give its averaging; ours is stated here, so its numbers are not comparable to the paper's 0.0143/0.0630.
- **LPIPS** (Zhang et al. 2018) through the `lpips` package (AlexNet, its default), when installed.
- **FID** (Heusel et al. 2017): the Fréchet distance of Gaussians fitted to Inception-v3 pool features of all real
  and all generated frames (`feature_frechet_distance`); the features come from `pytorch_fid` with its Inception
  weights, when available. Our distance matches pytorch-fid's `calculate_frechet_distance` (tested) but computes
  the matrix square root's trace by symmetric eigendecompositions, or from the samples when they are fewer than the
  2048 dimensions.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # scikit-image: truncate 3.5 -> radius int(3.5 * 1.5 + 0.5) = 5, 11 taps
SSIM_K1, SSIM_K2 = 0.01, 0.03
DATA_RANGE = 255.0


def psnr_per_frame(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """PSNR of every frame [N] (dB; +inf where identical)."""
    difference = generated.astype(np.float64) - real.astype(np.float64)
    mse = (difference ** 2).reshape(len(generated), -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(DATA_RANGE ** 2 / mse)


def ssim_per_frame(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """SSIM of every frame [N] (see the module doc), computed in float64 with torch."""
    x = torch.from_numpy(np.ascontiguousarray(generated)).permute(0, 3, 1, 2).double()
    y = torch.from_numpy(np.ascontiguousarray(real)).permute(0, 3, 1, 2).double()
    n, c, h, w = x.shape
    taps = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    gauss = torch.exp(-(taps ** 2) / (2 * SSIM_SIGMA ** 2))
    gauss = gauss / gauss.sum()
    x, y = x.reshape(n * c, 1, h, w), y.reshape(n * c, 1, h, w)

    def blur(image: torch.Tensor) -> torch.Tensor:  # valid convolution: the border skimage crops is never used
        return F.conv2d(F.conv2d(image, gauss.view(1, 1, -1, 1)), gauss.view(1, 1, 1, -1))

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim.reshape(n, c, -1).mean(2).mean(1).numpy()


def keypoint_error(generated: np.ndarray | torch.Tensor, real: np.ndarray | torch.Tensor) -> float:
    """KE: mean |generated - real| over frames, keypoints and coordinates (normalised units)."""
    generated = np.asarray(generated.detach().cpu() if isinstance(generated, torch.Tensor) else generated, np.float64)
    real = np.asarray(real.detach().cpu() if isinstance(real, torch.Tensor) else real, np.float64)
    if generated.shape != real.shape:
        raise ValueError(f"keypoints {generated.shape} and {real.shape} differ")
    return float(np.abs(generated - real).mean())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet distance of two Gaussians (FID's formula).

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are those of the symmetric
    S1^(1/2) S2 S1^(1/2): two symmetric eigendecompositions instead of pytorch-fid's general matrix square root
    (the same number, faster, and no imaginary round-off to discard). Eigenvalues that round-off makes slightly
    negative count as 0."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples) of features [N, D], as FID fits them."""
    features = np.asarray(features, np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def feature_frechet_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """FID's Fréchet distance of Gaussians fitted to features [N, D] (rows are samples, unbiased covariances).

    With fewer samples than dimensions (a short evaluation, D = 2048) the covariances have rank < N, and
    tr((S1 S2)^(1/2)) equals the sum of the singular values of X1 X2^T / sqrt((N1 - 1)(N2 - 1)), X the centred
    features: an N1 x N2 problem instead of a D x D one, with the same value as `frechet_distance`."""
    generated, real = np.asarray(generated, np.float64), np.asarray(real, np.float64)
    if max(len(generated), len(real)) >= generated.shape[1]:
        return frechet_distance(*gaussian_statistics(generated), *gaussian_statistics(real))
    centred_g, centred_r = generated - generated.mean(0), real - real.mean(0)
    scale_g, scale_r = len(generated) - 1, len(real) - 1
    trace_root = np.linalg.svd(centred_g @ centred_r.T, compute_uv=False).sum() / np.sqrt(scale_g * scale_r)
    diff = generated.mean(0) - real.mean(0)
    return float(diff @ diff + (centred_g ** 2).sum() / scale_g + (centred_r ** 2).sum() / scale_r - 2 * trace_root)


def summarize_clips(per_clip: list[dict], keys: tuple[str, ...]) -> dict:
    """Frame-weighted means of `keys` over clips (each with "frames"); non-finite values are left out."""
    summary = {"clips": len(per_clip), "frames": int(sum(c["frames"] for c in per_clip))}
    for key in keys:
        values = [(c[key], c["frames"]) for c in per_clip if key in c and c[key] is not None
                  and math.isfinite(c[key])]
        summary[key] = (sum(v * f for v, f in values) / sum(f for _, f in values)) if values else None
    return summary
