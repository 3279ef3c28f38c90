"""The losses of the keypoint-based networks, as named functions: N_D and N_I (the First Order Motion Model recipe,
Siarohin et al. 2019, which the paper follows, Sec. 4.2) and N_M (paper Sec. 3.3, eqs. 5-7).

Images are [B, 3, H, W] in 0..1; keypoints [N, K, 2] in [-1, 1]; Jacobians [N, K, 2, 2]; heatmaps [N, K, h, w]
(spatial softmax, summing to 1). Every loss is a mean over the batch of per-sample terms, so a batch split across
processes gives the same gradient as one process. Computed in float32 whatever autocast does around them.

- FOMM's multi-scale perceptual loss (its eq. 10 and `GeneratorFullModel`): at every scale of an image pyramid,
  sum over VGG-19 layers i of weight_i * mean |VGG_i(generated) - VGG_i(real)|, the real features detached;
  vox-256: scales 1, 1/2, 1/4, 1/8 and weight 10 for each of relu1_1 ... relu5_1.
- FOMM's equivariance losses (its eqs. 11-12 in the `Transform` form): with a random transform T (`tps.RandomTPS`)
  and the keypoints p' and Jacobians J' detected on the transformed frame,
  value: mean |p - T(p')|;  Jacobian: mean |I - J^-1 (dT(p') J')|. vox-256 weights 10 each.
- Eq. 5 (N_M, stage 1): lambda_m L1(m-hat, m) + lambda_p L1(p-hat, p) + lambda_j L1(j-hat, j) against N_D on the real
  frames. The heatmap L1 is the L1 distance between the two distributions (sum over pixels, 0..2, mean over frames
  and keypoints: a per-pixel mean would be ~1/3000 of it and vanish beside the other terms); the keypoint and
  Jacobian L1s are means over entries (KE's units for keypoints). lambda_m starts at 1 and decays linearly to 0.
- Eq. 6: L_rec = sum over channels of L1 between the VGG-16 features of one layer (a mean here, see
  `perceptual_loss`), applied on an image pyramid and summed over its scales (L_rec^mul).
- Eq. 7 (stage 2): lambda'_p L1(p-hat, p) + lambda_rec L_rec^mul + lambda_eq^P L_eq^P + lambda_eq^J L_eq^J.
"""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.modules.blocks import AntiAliasDownsample
from a2h_core.modules.keypoints import Keypoints
from a2h_core.training.tps import RandomTPS


class ImagePyramid(nn.Module):
    """An image at several scales (1, 1/2, ...; 1/n each), anti-aliased as FOMM's `ImagePyramide`."""

    def __init__(self, scales: tuple[float, ...], channels: int = 3):
        super().__init__()
        self.scales = tuple(scales)
        self.downs = nn.ModuleList(AntiAliasDownsample.or_identity(channels, s) for s in self.scales)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [down(images) for down in self.downs]


def perceptual_loss(generated: list[torch.Tensor], real: list[torch.Tensor], weights: tuple[float, ...]
                    ) -> torch.Tensor:
    """sum_i weight_i * mean |generated_i - real_i| over feature maps (real detached): FOMM's term, and eq. 6 with
    its channel sum taken as a mean (a constant factor, the channel count, folded into lambda_rec)."""
    total = generated[0].new_zeros((), dtype=torch.float32)
    for fake, true, weight in zip(generated, real, weights):
        total = total + weight * (fake.float() - true.detach().float()).abs().mean()
    return total


def multiscale_perceptual_loss(vgg: nn.Module, pyramid: ImagePyramid, generated: torch.Tensor, real: torch.Tensor,
                               weights: tuple[float, ...]) -> torch.Tensor:
    """`perceptual_loss` summed over the scales of `pyramid` (FOMM's loss; eq. 6's L_rec^mul)."""
    total = generated.new_zeros((), dtype=torch.float32)
    with torch.no_grad():
        real_features = [vgg(level) for level in pyramid(real)]
    for level, true in zip(pyramid(generated), real_features):
        total = total + perceptual_loss(vgg(level), true, weights)
    return total


def equivariance_value_loss(kp: Keypoints, kp_transformed: Keypoints, transform: RandomTPS) -> torch.Tensor:
    """FOMM's keypoint equivariance: mean |p - T(p')| (p on the frame, p' on the transformed frame)."""
    return (kp.value.float() - transform.warp_coordinates(kp_transformed.value.float())).abs().mean()


def equivariance_jacobian_loss(kp: Keypoints, kp_transformed: Keypoints, transform: RandomTPS) -> torch.Tensor:
    """FOMM's Jacobian equivariance: mean |I - J^-1 (dT(p') J')|."""
    transformed = transform.jacobian(kp_transformed.value.float()) @ kp_transformed.jacobian.float()
    product = torch.inverse(kp.jacobian.float()) @ transformed
    eye = torch.eye(2, dtype=product.dtype, device=product.device)
    return (eye - product).abs().mean()


def lsgan_generator_terms(fake_scores: torch.Tensor, fake_features: list[torch.Tensor],
                          real_features: list[torch.Tensor], feature_weights: tuple[float, ...]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """FOMM's optional GAN terms for the generator: mean (1 - D(fake))^2 and the feature-matching loss
    sum_i weight_i * mean |D_i(fake) - D_i(real)| (real detached)."""
    gan = ((1 - fake_scores.float()) ** 2).mean()
    matching = fake_scores.new_zeros((), dtype=torch.float32)
    for fake, real, weight in zip(fake_features, real_features, feature_weights):
        matching = matching + weight * (fake.float() - real.detach().float()).abs().mean()
    return gan, matching


def heatmap_l1(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 5's L1(m-hat, m): the L1 distance between heatmaps as distributions (sum over pixels), mean over N, K."""
    return (predicted.float() - target.float()).abs().sum(dim=(-2, -1)).mean()


def keypoint_l1(predicted: Keypoints, target: Keypoints) -> tuple[torch.Tensor, torch.Tensor | None]:
    """L1(p-hat, p) and L1(j-hat, j): mean absolute differences of positions and of Jacobians (None without)."""
    value = (predicted.value.float() - target.value.float()).abs().mean()
    if predicted.jacobian is None or target.jacobian is None:
        return value, None
    return value, (predicted.jacobian.float() - target.jacobian.float()).abs().mean()


def heatmap_weight(step: int, initial: float, decay_steps: int) -> float:
    """Eq. 5's lambda_m at a training step: `initial`, decaying linearly to 0 over `decay_steps` (0: constant)."""
    if decay_steps <= 0:
        return initial
    return initial * max(0.0, 1.0 - step / decay_steps)


def motion_stage1_loss(heatmaps: torch.Tensor, target_heatmaps: torch.Tensor, kp: Keypoints, target: Keypoints,
                       lambda_m: float, lambda_p: float = 10.0, lambda_j: float = 10.0) -> dict[str, torch.Tensor]:
    """Eq. 5: lambda_m L1(m-hat, m) + lambda_p L1(p-hat, p) + lambda_j L1(j-hat, j) (means over the T frames)."""
    value, jacobian = keypoint_l1(kp, target)
    terms = {"heatmap": heatmap_l1(heatmaps, target_heatmaps), "keypoints": value}
    loss = lambda_m * terms["heatmap"] + lambda_p * value
    if jacobian is not None:
        terms["jacobians"] = jacobian
        loss = loss + lambda_j * jacobian
    terms["loss"] = loss
    return terms


def motion_stage2_loss(keypoints: torch.Tensor, reconstruction: torch.Tensor, equivariance_value: torch.Tensor,
                       equivariance_jacobian: torch.Tensor | None, lambda_p: float = 100.0,
                       lambda_rec: float = 10.0, lambda_eq_p: float = 10.0, lambda_eq_j: float = 10.0
                       ) -> torch.Tensor:
    """Eq. 7: lambda'_p L1(p-hat, p) + lambda_rec L_rec^mul + lambda_eq^P L_eq^P + lambda_eq^J L_eq^J."""
    loss = lambda_p * keypoints + lambda_rec * reconstruction + lambda_eq_p * equivariance_value
    if equivariance_jacobian is not None:
        loss = loss + lambda_eq_j * equivariance_jacobian
    return loss
