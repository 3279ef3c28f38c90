"""A heat map of the audio features, for the Audio Features node's preview."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from a2h_core.audio.features import AudioFeatures

PLOT_HEIGHT = 164  # 41 feature rows, 4 pixels each
PLOT_MAX_WIDTH = 1024  # long clips are squeezed to this many columns


def plot_features(features: AudioFeatures) -> torch.Tensor:
    """A heat map of the features as a ComfyUI IMAGE [1, 164, columns, 3]: rows are features (top: MFCC 0),
    columns are 10 ms steps (at most 1024), each feature scaled to 0..1 on a blue-to-yellow ramp."""
    values = np.asarray(features.values, dtype=np.float64).T  # [41, rows]
    low = values.min(axis=1, keepdims=True)
    span = values.max(axis=1, keepdims=True) - low
    scaled = np.where(span > 0, (values - low) / np.where(span > 0, span, 1), 0.0)
    plot = torch.from_numpy(scaled).float()[None, None]
    width = min(values.shape[1], PLOT_MAX_WIDTH)
    plot = F.interpolate(plot, size=(PLOT_HEIGHT, width), mode="nearest")[0, 0]
    # a blue-to-yellow ramp: easier to read than grey
    return torch.stack([plot, 0.3 + 0.5 * plot, 1.0 - plot], dim=-1)[None].clamp(0, 1)
