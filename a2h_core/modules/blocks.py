# Ports the First Order Motion Model architecture (github.com/AliaksandrSiarohin/first-order-model),
# Copyright (c) 2019-2023 Aliaksandr Siarohin, MIT licence; its notice is reproduced in LICENSE.
"""Building blocks shared by the Audio2Head networks (the FOMM family of encoders, decoders and hourglasses).

Every block works on 2-D feature maps `[N, C, H, W]` or, for the 3-D variants used by the motion field generator,
on `[N, C, T, H, W]`. Module attribute names follow the published checkpoint's state-dict keys.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2h_core.modules.keypoints import Keypoints

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def precise_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype for small exact helpers (grids, 2x2 inverses): at least float32, so fp16/bf16 callers stay exact."""
    return torch.float32 if dtype in _HALF_DTYPES else dtype


def make_coordinate_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """`[H, W, 2]` grid of (x, y) spanning [-1, 1] inclusive, on `like`'s device and dtype.

    The original pairs this grid with `grid_sample(align_corners=False)`; the pairing is kept on purpose (it is
    not an exact identity warp, and the published weights were trained with it).
    """
    dtype = precise_dtype(like.dtype)
    x = torch.arange(width, dtype=dtype, device=like.device)
    y = torch.arange(height, dtype=dtype, device=like.device)
    x = 2 * (x / (width - 1)) - 1
    y = 2 * (y / (height - 1)) - 1
    grid = torch.stack([x.view(1, -1).expand(height, width), y.view(-1, 1).expand(height, width)], dim=-1)
    return grid.to(like.dtype)


def heatmap_softmax(prediction: torch.Tensor, temperature: float) -> torch.Tensor:
    """Raw heatmap logits `[N, K, h, w]` -> spatial softmax at `temperature`, in at least float32 (the heatmaps m of
    the paper's eq. 5)."""
    n, k, h, w = prediction.shape
    work = precise_dtype(prediction.dtype)
    return F.softmax(prediction.to(work).reshape(n, k, h * w) / temperature, dim=2).view(n, k, h, w)


def keypoints_from_heatmaps(prediction: torch.Tensor, jacobian_map: torch.Tensor | None,
                            temperature: float, heatmap: torch.Tensor | None = None) -> Keypoints:
    """Keypoints from raw heatmap logits `[N, K, h, w]`.

    The logits become a spatial softmax at `temperature` (`heatmap_softmax`; pass it as `heatmap` when already
    computed); each keypoint is the heatmap-weighted mean of the coordinate grid, and its Jacobian the
    heatmap-weighted sum of `jacobian_map` (`[N, M*4, h, w]`, M = K maps or one shared map), read row-major as
    [[a, b], [c, d]]. Computed and returned in at least float32: in half precision the keypoints would move by up
    to a pixel.
    """
    n, k, h, w = prediction.shape
    if heatmap is None:
        heatmap = heatmap_softmax(prediction, temperature)
    work = heatmap.dtype
    grid = make_coordinate_grid(h, w, heatmap)
    value = (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))
    if jacobian_map is None:
        return Keypoints(value, None)
    jacobian_map = jacobian_map.to(work).reshape(n, -1, 4, h, w)
    jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(n, k, 4, h * w).sum(dim=-1)
    return Keypoints(value, jacobian.view(n, k, 2, 2))


def matmul_2x2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a @ b` for `a` [..., 2, 2] and `b` [..., 2, n] (broadcast), written out element-wise so that autocast
    cannot lower it to half precision (the warp coordinates need float32)."""
    return a[..., :, 0:1] * b[..., 0:1, :] + a[..., :, 1:2] * b[..., 1:2, :]


def init_identity_jacobian(conv: nn.Conv2d) -> None:
    """Start a Jacobian head at the identity (zero weights, bias [1, 0, 0, 1] per map), as FOMM does."""
    nn.init.zeros_(conv.weight)
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(conv.out_channels // 4))


class AntiAliasDownsample(nn.Module):
    """Band-limited downsampling by `scale` (1/integer): a Gaussian blur, then every (1/scale)-th pixel.

    The Gaussian has sigma = (1/scale - 1)/2 and size 2*round(4*sigma)+1 (13x13, sigma 1.5 for scale 0.25), zero
    padding keeps the size, and sampling starts at pixel 0 - what the original's blur followed by nearest
    interpolation computes, done here as one strided depth-wise convolution so the dropped pixels are never blurred.
    The kernel is the checkpoint buffer `weight` `[C, 1, k, k]`.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        stride = round(1 / scale)
        if stride < 2 or abs(stride * scale - 1) > 1e-9:
            raise ValueError(f"AntiAliasDownsample needs scale = 1/n for an integer n >= 2, got {scale}")
        self.stride = stride
        self.groups = channels
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.padding = size // 2
        coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        gauss = torch.exp(-coords**2 / (2 * sigma**2))
        kernel = gauss.view(-1, 1) * gauss.view(1, -1)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())

    @classmethod
    def or_identity(cls, channels: int, scale: float) -> nn.Module:
        """The downsampler, or a no-op (without a kernel buffer, as in the checkpoint) when scale is 1."""
        return nn.Identity() if scale == 1 else cls(channels, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding, groups=self.groups)


def _conv(dims: int, *args, **kwargs) -> nn.Module:
    return (nn.Conv2d if dims == 2 else nn.Conv3d)(*args, **kwargs)


def _norm(dims: int, features: int) -> nn.Module:
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(features, affine=True)


class ResBlock(nn.Module):
    """Pre-activation residual block (BN, ReLU, conv, BN, ReLU, conv, + input); keeps size and channels."""

    def __init__(self, features: int, kernel_size=3, padding=1, dims: int = 2):
        super().__init__()
        self.conv1 = _conv(dims, features, features, kernel_size=kernel_size, padding=padding)
        self.conv2 = _conv(dims, features, features, kernel_size=kernel_size, padding=padding)
        self.norm1 = _norm(dims, features)
        self.norm2 = _norm(dims, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class SameBlock2d(nn.Module):
    """Conv, BN, ReLU at the same resolution."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """Conv, BN, ReLU, 2x2 average pooling."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock2d(nn.Module):
    """Nearest 2x upsampling, conv, BN, ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))))


class DownBlock3d(nn.Module):
    """Residual block, BN, ReLU, conv, BN, ReLU, 2x2x2 average pooling (time and space)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.res = ResBlock(in_features, dims=3)
        self.norm_res = nn.BatchNorm3d(in_features, affine=True)
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm_res(self.res(x)))
        out = F.relu(self.norm(self.conv(out)))
        if out.dtype in _HALF_DTYPES:  # CPU has no fp16/bf16 avg_pool3d kernel; pool in float32
            return F.avg_pool3d(out.float(), kernel_size=2).to(out.dtype)
        return F.avg_pool3d(out, kernel_size=2)


class UpBlock3d(nn.Module):
    """Nearest 2x upsampling (time and space), conv, BN, ReLU, residual block, BN, ReLU."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)
        self.res = ResBlock(out_features, dims=3)
        self.norm2 = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))))
        return F.relu(self.norm2(self.res(out)))


def _level_features(block_expansion: int, max_features: int, level: int) -> int:
    """Channels of hourglass level `level` (1 = after the first down block)."""
    return min(max_features, block_expansion * 2**level)


class HourglassEncoder(nn.Module):
    """`num_blocks` down blocks; returns the input and every level's output (the decoder's skips)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int, dims: int):
        super().__init__()
        down = DownBlock2d if dims == 2 else DownBlock3d
        self.down_blocks = nn.ModuleList(
            down(in_features if i == 0 else _level_features(block_expansion, max_features, i),
                 _level_features(block_expansion, max_features, i + 1))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    """Up blocks from the lowest level back to the input resolution, concatenating each level's skip.

    The 3-D decoder first passes each skip through a residual block, BN and ReLU (`res_blocks`).
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int, dims: int):
        super().__init__()
        up_blocks, res_blocks = [], []
        for i in reversed(range(num_blocks)):
            level_in = _level_features(block_expansion, max_features, i + 1) * (1 if i == num_blocks - 1 else 2)
            level_out = _level_features(block_expansion, max_features, i)
            if dims == 2:
                up_blocks.append(UpBlock2d(level_in, level_out))
            else:
                up_blocks.append(UpBlock3d(level_in, level_out))
                skip_features = level_out if i > 0 else in_features
                res_blocks.append(nn.Sequential(
                    ResBlock(skip_features, dims=3), nn.BatchNorm3d(skip_features), nn.ReLU()))
        self.up_blocks = nn.ModuleList(up_blocks)
        self.res_blocks = nn.ModuleList(res_blocks) if dims == 3 else None
        self.out_filters = block_expansion + in_features

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        out = skips[-1]
        for i, block in enumerate(self.up_blocks):
            skip = skips[-2 - i]
            if self.res_blocks is not None:
                skip = self.res_blocks[i](skip)
            out = torch.cat([block(out), skip], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net style hourglass; the output has `out_filters` = block_expansion + in_features channels.

    `dims=2` is FOMM's image hourglass; `dims=3` is the motion field generator's spatio-temporal one, which pools
    time as well as space (the window length must be divisible by 2**num_blocks).
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int, dims: int = 2):
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features, dims)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features, dims)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
