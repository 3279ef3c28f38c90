"""Random weights for tests and tools: state dicts with the networks' exact layout, the authors' pickle layout,
reduced-width safetensors files the loader accepts, and random batch norm / Jacobian heads (so that no layer is an
identity or a constant)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.io.weights import SUBMODELS
from a2h_core.modules.models import Audio2HeadModels

# Metadata of a file the converter writes for the reduced test widths: the loader builds the reduced networks for it.
REDUCED_METADATA = {"format": "audio2head", "format_version": "1", "config": "reduced"}


def random_state(config: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with the networks' exact names, shapes and dtypes (taken on the meta device: nothing is
    allocated but the result), filled with random values."""
    with torch.device("meta"):
        layout = Audio2HeadModels(config).state_dict()
    generator = torch.Generator().manual_seed(seed)
    return {key: (torch.randn(spec.shape, generator=generator) * 0.05 if spec.is_floating_point()
                  else torch.randint(0, 1000, spec.shape, generator=generator, dtype=spec.dtype))
            for key, spec in layout.items()}


def save_original(state: dict[str, torch.Tensor], path: Path, **extra) -> Path:
    """Save like the authors did: one pickle, a dict of the four state dicts (plus any extra entries)."""
    nested = {name: {key[len(name) + 1:]: value for key, value in state.items() if key.startswith(name + ".")}
              for name in SUBMODELS}
    torch.save({**nested, **extra}, path)
    return path


def write_reduced_weights(path: Path, seed: int = 0) -> Path:
    """Reduced-width networks as built with `torch.manual_seed(seed)` (PyTorch's own initialisation), saved in the
    pack's safetensors layout and marked "reduced" for the loader; returns the path."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    state = {key: value.contiguous() for key, value in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()}
    save_file(state, str(path), metadata=REDUCED_METADATA)
    return path


def randomize_batch_norm(module: nn.Module, generator: torch.Generator) -> None:
    """Random affine parameters and running statistics in every batch norm of `module`, so that none is an
    identity: weight in [0.5, 1.5), bias and mean ~ N(0, 0.1²), variance in [0.5, 1.5)."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                n = layer.num_features
                layer.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                layer.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


def randomize_jacobian_head(module: nn.Module, generator: torch.Generator, std: float) -> None:
    """Random N(0, std²) weights for the module's Jacobian head (`module.jacobian`, zero-initialised in the original,
    which makes every Jacobian the identity); modules without one are left alone."""
    head = getattr(module, "jacobian", None)
    if isinstance(head, nn.Module):
        with torch.no_grad():
            head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * std)
