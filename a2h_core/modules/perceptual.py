"""VGG perceptual features: the feature extractor of the perceptual losses (training only).

FOMM compares VGG-19 features of generated and real frames (relu1_1 ... relu5_1, `PerceptualConfig` defaults); the
paper's eq. 6 compares the channels of one VGG-16 layer. This module is torchvision's `vgg19().features` /
`vgg16().features` (same layer order and state-dict keys `features.<index>.weight|bias`, so torchvision's ImageNet
file loads into it unchanged), cut after the deepest layer asked for, with ImageNet's input normalisation built in.
`width_divisor` > 1 narrows every convolution for CPU tests (random weights: nothing pretrained fits them).

Input: images [B, 3, H, W] in 0..1. Output: the listed layers' activations, in `PerceptualConfig.layers` order.
Weights are loaded by `a2h_core.training.pretrained.load_vgg`; the module holds no gradients of its own in use.
"""
from __future__ import annotations

import torch
from torch import nn

from a2h_core.config import VGG_CHANNELS, VGG_LAYER_INDEX, PerceptualConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    """images [B, 3, H, W] in 0..1 -> list of feature maps at `config.layers`."""

    def __init__(self, config: PerceptualConfig):
        super().__init__()
        config.check()
        self.config = config
        index = VGG_LAYER_INDEX[config.arch]
        self.taps = [index[name] for name in config.layers]
        last = max(self.taps)
        layers: list[nn.Module] = []
        channels = 3
        for width in VGG_CHANNELS[config.arch]:
            if len(layers) > last:
                break
            if width == 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out = width // config.width_divisor
                layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = out
        self.features = nn.Sequential(*layers[: last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        out = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        found = {}
        for i, layer in enumerate(self.features):
            out = layer(out)
            if i in self.taps:
                found[i] = out
        return [found[i] for i in self.taps]
