"""Building a training run from user-level choices: the model config by name or file, the starting weights, and
the data; shared by the `train`, `evaluate` and `personalize` commands and the ComfyUI node."""
from __future__ import annotations

import json
from pathlib import Path

from a2h_core.config import ModelConfig, PoseDiscriminatorConfig, model_config_from_dict
from a2h_core.errors import Audio2HeadError
from a2h_core.io.weights import load_models
from a2h_core.modules.models import Audio2HeadModels

CONFIG_CHOICES = "published, reduced, published-512, reduced-512 (any NAME-SIZE, SIZE a multiple of 64) or FILE.json"


def model_config(choice: str) -> ModelConfig:
    """"published", "reduced", either at another image size ("published-512", "reduced-128": `at_image_size`), or
    a JSON file holding a (partial) ModelConfig."""
    name, _, size = choice.partition("-")
    named = {"published": ModelConfig.published, "reduced": ModelConfig.reduced}
    if name in named and (not size or size.isdigit()):
        config = named[name]()
        if size:
            try:
                config = config.at_image_size(int(size))
            except ValueError as exc:
                raise Audio2HeadError(f"--config {choice!r}: {exc}") from None
        return config
    path = Path(choice)
    if not path.is_file():
        raise Audio2HeadError(f"--config {choice!r}: use {CONFIG_CHOICES}")
    try:
        return model_config_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise Audio2HeadError(f"--config {path}: not a valid model config ({exc})") from None


def discriminator_config(config: ModelConfig) -> PoseDiscriminatorConfig:
    """The discriminator width that goes with a model config: narrow for the reduced test widths."""
    reduced = config.pose_predictor == ModelConfig.reduced().pose_predictor
    return PoseDiscriminatorConfig.reduced() if reduced else PoseDiscriminatorConfig()


def initial_models(init: str | None, config: ModelConfig | None) -> tuple[Audio2HeadModels | None, ModelConfig]:
    """The --init weights (float32, CPU, gradients off) and the config to train; the config a file declares wins
    unless one was asked for, in which case they must agree."""
    if init is None:
        return None, config or ModelConfig.published()
    models = load_models(init, device="cpu", config=config)
    return models, models.config
