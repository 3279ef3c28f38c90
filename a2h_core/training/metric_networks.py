"""The optional metric networks of `evaluate video`: LPIPS through the `lpips` package and FID's Inception-v3
through the `pytorch-fid` package (`pip install lpips pytorch-fid`, or `pip install -e .[metrics]`; both need
torchvision, which must match the installed torch: ComfyUI ships a matching one).

Each is built from the package's own classes. Its pretrained weights come by the package's own mechanism, torch's
download cache (`$TORCH_HOME/hub/checkpoints/`, default `~/.cache/torch/hub/checkpoints/`: a file already there is
used without any download), or from a local file:

- LPIPS (AlexNet trunk, the package's default): the trunk is torchvision's ImageNet AlexNet,
  `alexnet-owt-7be5be79.pth`; its linear layers ship inside the lpips wheel. `--lpips-backbone-weights FILE` reads a
  local copy of the AlexNet file.
- FID: pytorch-fid's port of the TensorFlow FID Inception, `pt_inception-2015-12-05-6726825d.pth`.
  `--inception-weights FILE` reads a local copy.

A package that is not installed, or a download that fails, makes the metric skipped with the reason (the file, where
it comes from, the folder to put it in). A local file that is missing or does not fit is an error.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from a2h_core.errors import Audio2HeadError
from a2h_core.training.pretrained import hub_checkpoints, read_state_dict

METRICS_INSTALL = "pip install lpips pytorch-fid (or pip install -e .[metrics])"
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"  # torchvision's AlexNet ImageNet file
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")  # pytorch-fid's FID Inception (TensorFlow FID port)


def _file_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _offline_reason(what: str, url: str, option: str, exc: Exception) -> str:
    return (f"{what} could not be loaded ({type(exc).__name__}: {exc}): place {_file_name(url)} (from {url}) in "
            f"{hub_checkpoints()} (torch's download cache; TORCH_HOME moves it), or pass it with {option} FILE")


def _lpips_model(lpips, **options):
    """`lpips.LPIPS` with AlexNet, without the deprecation warnings torchvision raises at lpips's `pretrained=`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(pretrained|weight enum).*", category=UserWarning)
        return lpips.LPIPS(net="alex", verbose=False, **options)


class LpipsMetric:
    """LPIPS (Zhang et al. 2018, v0.1, AlexNet trunk) through `lpips.LPIPS`, or the reason it is unavailable."""

    def __init__(self, device: torch.device, backbone_weights: str | Path | None = None):
        self.model, self.reason, self.device = None, None, device
        try:
            import lpips
        except ImportError as exc:  # lpips itself, or the torchvision it imports
            self.reason = f"lpips cannot be imported ({exc}): {METRICS_INSTALL}"
            return
        if backbone_weights is not None:
            state = read_state_dict(Path(backbone_weights), "--lpips-backbone-weights",
                                     f"torchvision's AlexNet ImageNet weights, {_file_name(ALEXNET_URL)}")
            model = _lpips_model(lpips, pnet_rand=True)  # the trunk is built without weights, then filled
            # lpips splits torchvision's `features` into slices keeping the layer indices: slice2.3.weight is
            # features.3.weight.
            wanted = {key: "features." + key.split(".", 1)[1] for key in model.net.state_dict()}
            missing = sorted(source for source in wanted.values() if source not in state)
            if missing:
                raise Audio2HeadError(f"--lpips-backbone-weights {backbone_weights} lacks {', '.join(missing[:3])}: "
                                      f"use torchvision's AlexNet file {_file_name(ALEXNET_URL)} ({ALEXNET_URL})")
            try:
                model.net.load_state_dict({key: state[source] for key, source in wanted.items()})
            except RuntimeError as exc:
                raise Audio2HeadError(f"--lpips-backbone-weights {backbone_weights} does not fit AlexNet "
                                      f"({str(exc).splitlines()[0]})") from exc
        else:
            try:
                model = _lpips_model(lpips)
            except Exception as exc:  # offline: torchvision cannot fetch the AlexNet file
                self.reason = _offline_reason("LPIPS's AlexNet weights", ALEXNET_URL, "--lpips-backbone-weights",
                                              exc)
                return
        self.model = model.to(device).eval()

    def __call__(self, generated: np.ndarray, real: np.ndarray, batch: int = 16) -> np.ndarray:
        """LPIPS of every frame [N] between uint8 frames [N, H, W, 3] (scaled to [-1, 1], as lpips expects)."""
        values = []
        for start in range(0, len(real), batch):
            a = torch.from_numpy(generated[start:start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            b = torch.from_numpy(real[start:start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            with torch.no_grad():
                values.append(self.model(a.to(self.device), b.to(self.device)).flatten().cpu())
        return torch.cat(values).double().numpy()


class InceptionFeatures:
    """FID's Inception-v3 pool features (2048) through `pytorch_fid.inception.InceptionV3`, or the reason they are
    unavailable."""

    def __init__(self, device: torch.device, weights: str | Path | None = None):
        self.model, self.reason, self.device = None, None, device
        try:
            from pytorch_fid import inception
        except ImportError as exc:  # pytorch-fid itself, or the torchvision it imports
            self.reason = f"pytorch-fid cannot be imported ({exc}): {METRICS_INSTALL}"
            return
        block = inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        if weights is not None:
            state = read_state_dict(Path(weights), "--inception-weights",
                                     f"pytorch-fid's {_file_name(FID_WEIGHTS_URL)}")
            # pytorch-fid has no local-file option: its loader is swapped for this file while the network is built.
            try:
                with mock.patch.object(inception, "load_state_dict_from_url", return_value=state):
                    model = inception.InceptionV3([block])
            except RuntimeError as exc:
                raise Audio2HeadError(f"--inception-weights {weights} does not fit FID's Inception "
                                      f"({str(exc).splitlines()[0]}): use {FID_WEIGHTS_URL}") from exc
        else:
            try:
                model = inception.InceptionV3([block])
            except Exception as exc:  # offline: the weights cannot be fetched
                self.reason = _offline_reason("FID's Inception weights", FID_WEIGHTS_URL, "--inception-weights", exc)
                return
        self.model = model.to(device).eval()

    def __call__(self, frames: np.ndarray, batch: int = 16) -> np.ndarray:
        """Features [N, 2048] of uint8 frames [N, H, W, 3] (0..1 in; the package resizes to 299 and normalises)."""
        out = []
        for start in range(0, len(frames), batch):
            images = torch.from_numpy(frames[start:start + batch]).permute(0, 3, 1, 2).float() / 255.0
            with torch.no_grad():
                out.append(self.model(images.to(self.device))[0].flatten(1).cpu().double().numpy())
        return np.concatenate(out)
