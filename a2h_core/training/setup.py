"""Building a training run from user-level choices: the model config by name or file, the starting weights, and
the data; shared by the `train`, `evaluate` and `personalize` commands and the ComfyUI node."""
from __future__ import annotations

import json
from pathlib import Path

from a2h_core.config import ModelConfig, PoseDiscriminatorConfig, model_config_from_dict
from a2h_core.errors import Audio2HeadError
from a2h_core.io.weights import load_models
from a2h_core.modules.models import Audio2HeadModels


def model_config(choice: str) -> ModelConfig:
    """"published", "reduced" or a JSON file holding a (partial) ModelConfig."""
    if choice == "published":
        return ModelConfig.published()
    if choice == "reduced":
        return ModelConfig.reduced()
    path = Path(choice)
    if not path.is_file():
        raise Audio2HeadError(f"--config {choice!r}: use published, reduced or the path of a JSON model config")
    try:
        return model_config_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise Audio2HeadError(f"--config {path}: not a valid model config ({exc})") from None


def discriminator_config(config: ModelConfig) -> PoseDiscriminatorConfig:
    """The discriminator width that goes with a model config: narrow for the reduced test widths."""
    return PoseDiscriminatorConfig.reduced() if config == ModelConfig.reduced() else PoseDiscriminatorConfig()


def initial_models(init: str | None, config: ModelConfig | None) -> tuple[Audio2HeadModels | None, ModelConfig]:
    """The --init weights (float32, CPU, gradients off) and the config to train; the config a file declares wins
    unless one was asked for, in which case they must agree."""
    if init is None:
        return None, config or ModelConfig.published()
    models = load_models(init, device="cpu", config=config)
    return models, models.config
