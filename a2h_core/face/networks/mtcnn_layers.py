"""Layers shared by the MTCNN stages (Zhang et al. 2016): TensorFlow-style "same" max pooling.

The weights this project reads for MTCNN come from the `mtcnn` package on PyPI (MIT licence), whose networks are
Keras models: a max pooling with padding "same" pads only as much as needed, and puts the extra row and column
at the bottom and right. PyTorch's `ceil_mode` gives the same windows here; writing the padding out keeps the
equivalence visible.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def max_pool_same(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Max pooling with TensorFlow's "same" padding: output ceil(n / stride), padding at the end with -inf."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // stride)
        total = max((out - 1) * stride + size - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), size, stride)


def flatten_like_keras(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, W * H * C]: the order of the Keras models' Permute((2, 1, 3)) + Flatten."""
    return x.permute(0, 3, 2, 1).flatten(1)
