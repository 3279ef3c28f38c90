"""Batch norm folded into the convolution before it: an inference-time view of trained networks.

In eval mode a batch norm after a convolution is an affine map per channel, so it can be merged into that
convolution's weights and bias, saving one pass over every feature map. The networks themselves stay as they are
(unfused, trainable, with the published state-dict layout): `fold_batch_norm` returns a *view* that shares every
tensor it does not change, so only the folded convolutions cost new memory (a few percent of the weights).

Folded pairs, in the FOMM blocks: conv -> norm in `SameBlock2d`, `DownBlock2d`, `UpBlock2d`, `DownBlock3d`,
`UpBlock3d`; conv1 -> norm2 inside `ResBlock`; and a convolution (or transposed convolution) directly followed by a
batch norm in an `nn.Sequential`. Norms that follow a residual sum or come first in a block (ResBlock's norm1, the
3-D blocks' norm_res / norm2) have no convolution right before them and stay.
"""
from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from a2h_core.modules.blocks import DownBlock2d, DownBlock3d, ResBlock, SameBlock2d, UpBlock2d, UpBlock3d

_CONVOLUTIONS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)
_BLOCK_PAIRS = {  # block type -> (convolution, the batch norm applied to its output) attribute names
    SameBlock2d: ("conv", "norm"),
    DownBlock2d: ("conv", "norm"),
    UpBlock2d: ("conv", "norm"),
    DownBlock3d: ("conv", "norm"),
    UpBlock3d: ("conv", "norm"),
    ResBlock: ("conv1", "norm2"),
}


def fold_batch_norm(network: nn.Module) -> nn.Module:
    """An eval-mode view of `network` with every convolution -> batch norm pair merged into one convolution.

    The view computes what `network.eval()` computes (up to float rounding). Its unfolded parameters and buffers
    are `network`'s own tensors, so it goes stale when the network's weights change: build it again then (see
    `weights_version`). `network` itself is not modified.
    """
    if network.training:
        raise ValueError("fold_batch_norm needs a network in eval mode: a training batch norm uses batch statistics")
    view = _shallow_copy(network)
    for module in list(view.modules()):
        pair = _BLOCK_PAIRS.get(type(module))
        if pair is not None:
            _fold(module, *pair)
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in itertools.pairwise(names):
                if isinstance(module._modules[first], _CONVOLUTIONS) and isinstance(module._modules[second], _NORMS):
                    _fold(module, first, second)
    return view


def weights_version(network: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of `network` is replaced or modified in place (optimizer steps,
    load_state_dict, `.to()`): the key under which a folded view stays valid.

    Tensors made under `torch.inference_mode` (ComfyUI runs nodes, model loading included, that way) have no version
    counter; for them only a replacement shows.
    """
    return tuple((id(tensor), _version_counter(tensor), tensor.device, tensor.dtype, tensor.data_ptr())
                 for tensor in (*network.parameters(), *network.buffers()))


def _version_counter(tensor) -> int | None:
    try:
        return tensor._version
    except RuntimeError:  # an inference tensor, or a parameter whose data came from one (is_inference() may be False)
        return None


def _fold(module: nn.Module, conv_name: str, norm_name: str) -> None:
    conv, norm = module._modules[conv_name], module._modules[norm_name]
    transposed = isinstance(conv, (nn.ConvTranspose2d, nn.ConvTranspose3d))
    with torch.no_grad():  # inference tensors (weights loaded under torch.inference_mode) refuse autograd
        module._modules[conv_name] = fuse_conv_bn_eval(conv, norm, transpose=transposed)
    module._modules[norm_name] = nn.Identity()


def _shallow_copy(module: nn.Module) -> nn.Module:
    """A copy of the module tree whose modules are new objects and whose tensors are the original's."""
    clone = copy.copy(module)
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    clone._modules = {name: None if child is None else _shallow_copy(child) for name, child in module._modules.items()}
    return clone
