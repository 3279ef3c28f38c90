"""RANDOM weights in the layouts of the evaluation's pretrained files, which cannot be downloaded in tests: they check
loading and plumbing, never the published numbers.

- `random_alexnet_file`: torchvision's AlexNet (`alexnet-owt-7be5be79.pth`, LPIPS's trunk); needs torchvision.
- `random_fid_inception_file`: pytorch-fid's FID Inception (`pt_inception-2015-12-05-6726825d.pth`): torchvision's
  Inception3 with 1008 classes and no auxiliary head (pytorch-fid's FID blocks change only the forward pass), with
  He-scaled convolutions so the 2048 pool features do not vanish through 90 layers; needs torchvision.
- `random_syncnet_file`: syncnet_python's `syncnet_v2.model`: SyncNet's key names, written by torch's legacy
  serializer without BatchNorm's `num_batches_tracked` (which the torch of 2017 did not write).
"""
from __future__ import annotations

from pathlib import Path

import torch

from a2h_core.modules.syncnet import SyncNet


def random_alexnet_file(path: Path, seed: int = 0) -> Path:
    import torchvision

    torch.manual_seed(seed)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


def random_fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(seed)
    network = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    state = network.state_dict()
    for key, value in state.items():
        if key.endswith("conv.weight"):
            value.normal_(0, (2.0 / value[0].numel()) ** 0.5)
    return state


def random_fid_inception_file(path: Path, seed: int = 0) -> Path:
    torch.save(random_fid_inception_state(seed), path)
    return path


def random_syncnet_file(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    state = {key: value.clone() for key, value in SyncNet().state_dict().items()
             if not key.endswith("num_batches_tracked")}
    for key, value in state.items():
        if key.endswith("running_var"):  # not all ones: the batch norms must not be near-identities
            value.uniform_(0.5, 1.5)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path
