"""Pretrained networks that training uses but never trains: the VGG of the perceptual losses, and torch's download
cache that it shares with the evaluation's optional metric networks (`training.metric_networks`).

**VGG.** `load_vgg` fills `modules.perceptual.VGGFeatures` with torchvision's ImageNet weights, fetched the way
torchvision fetches them (`torch.hub.load_state_dict_from_url`, the same URL and file name, hash-checked) into the
same cache, `$TORCH_HOME/hub/checkpoints/` (default `~/.cache/torch/hub/checkpoints/`), so a file torchvision
already downloaded is reused and torchvision itself is not needed. Offline, the error names the file to place
there; `--vgg-weights FILE` reads a local copy (torchvision's file, or any state dict with its `features.*` keys).
Narrowed test networks (`width_divisor` > 1) get seeded random weights: nothing pretrained fits them.
"""
from __future__ import annotations

from pathlib import Path

import torch

from a2h_core.config import PerceptualConfig
from a2h_core.errors import Audio2HeadError
from a2h_core.modules.perceptual import VGGFeatures

# torchvision's ImageNet weights (torchvision.models.VGG19_Weights.IMAGENET1K_V1, VGG16_Weights.IMAGENET1K_V1).
VGG_URLS = {
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def hub_checkpoints() -> Path:
    """torch's (and torchvision's) download cache of weight files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def load_vgg(config: PerceptualConfig, weights: str | Path | None = None, log=print) -> VGGFeatures:
    """The perceptual network, in eval mode with gradients off, on the CPU (the caller moves it).

    weights: a local file (`--vgg-weights`); None downloads torchvision's file into the torch hub cache once (or
    finds it there). Random weights, announced through `log`, for `width_divisor` > 1.
    """
    vgg = VGGFeatures(config)
    if config.width_divisor > 1:
        generator = torch.Generator().manual_seed(0)
        for parameter in vgg.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator) * (
                (2.0 / parameter[0].numel()) ** 0.5 if parameter.dim() > 1 else 0.0)
        log(f"perceptual loss: a {config.arch} narrowed {config.width_divisor}x with RANDOM weights (test/benchmark "
            "only: random features still measure reconstruction, but not as ImageNet's do)")
        return vgg.eval().requires_grad_(False)
    if weights is not None:
        state = read_state_dict(Path(weights), "--vgg-weights", f"torchvision's {config.arch} weights")
    else:
        url = VGG_URLS[config.arch]
        name = url.rsplit("/", 1)[1]
        try:
            state = torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True, progress=True)
        except Exception as exc:  # offline, proxy, truncated download
            raise Audio2HeadError(
                f"the perceptual loss needs {config.arch}'s ImageNet weights, {name}, and they could not be "
                f"downloaded from {url} ({type(exc).__name__}: {exc}). Place that file in {hub_checkpoints()} (the "
                f"torch/torchvision download cache; set TORCH_HOME to move it), or pass it with --vgg-weights FILE."
            ) from exc
    if not isinstance(state, dict):
        raise Audio2HeadError(f"the VGG weights file holds a {type(state).__name__}, not a state dict")
    wanted = vgg.state_dict()
    features = {k: v for k, v in state.items() if k in wanted}
    missing = sorted(set(wanted) - set(features))
    if missing:
        raise Audio2HeadError(f"the VGG weights lack {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}: "
                              f"use torchvision's {config.arch} ImageNet file ({VGG_URLS[config.arch]})")
    try:
        vgg.load_state_dict(features)
    except RuntimeError as exc:
        raise Audio2HeadError(f"the VGG weights do not fit {config.arch} ({exc})") from exc
    return vgg.eval().requires_grad_(False)


def read_state_dict(path: Path, option: str, expected: str) -> dict:
    """The state dict in the local file given as `option`, read with weights_only=True; a clear error names the
    option, the file and what was `expected` when it is missing, unreadable or not a state dict."""
    if not path.is_file():
        raise Audio2HeadError(f"{option} {path}: no such file (expected {expected})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Audio2HeadError(f"{option} {path} is not a readable PyTorch state dict ({exc})") from exc
    if not isinstance(state, dict):
        raise Audio2HeadError(f"{option} {path} holds a {type(state).__name__}, not a state dict ({expected})")
    return state
