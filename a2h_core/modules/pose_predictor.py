"""Head-pose predictor (`audio2pose`): image and audio ResNet-34 encoders feeding an autoregressive 2-layer LSTM.

The first pose comes from the source image alone; every later step feeds the LSTM the frame's audio embedding
concatenated with the previous step's output, so a clip of T frames gives T+1 poses in [-1, 1] per dimension.
`denormalize_poses` maps them to axis-angle rotation (radians) and translation with the training range
`config.POSE_MIN`/`POSE_MAX`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from a2h_core.config import FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES, POSE_MAX, POSE_MIN, ModelConfig
from a2h_core.modules.resnet import ResNet34Encoder

AUDIO_EMBEDDING_CHUNK = 64  # frames whose audio is embedded per pass: a long clip reaches a cancel point every
# fraction of a second on a CPU at the published widths (a shorter clip is embedded in one pass, as before)


def _pose_range(poses):
    """POSE_MIN and POSE_MAX as the type of `poses` (numpy array or tensor on its device and dtype)."""
    if isinstance(poses, torch.Tensor):
        return (torch.as_tensor(POSE_MIN, dtype=poses.dtype, device=poses.device),
                torch.as_tensor(POSE_MAX, dtype=poses.dtype, device=poses.device))
    return POSE_MIN, POSE_MAX


def denormalize_poses(norm):
    """Network output in [-1, 1] -> poses (rx, ry, rz in rad, tx, ty, tz), as the original: (n+1)/2*(max-min)+min."""
    low, high = _pose_range(norm)
    return (norm + 1) / 2 * (high - low) + low


def normalize_poses(poses):
    """Inverse of `denormalize_poses`: poses -> the network's [-1, 1] range."""
    low, high = _pose_range(poses)
    return (poses - low) / (high - low) * 2 - 1


class HeadPosePredictor(nn.Module):
    """Predicts a normalised head pose per video frame from the source image and the audio features."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.pose_predictor
        if cfg.lstm_hidden != cfg.embedding_dim:
            raise ValueError("pose predictor: lstm_hidden must equal embedding_dim (the output is fed back)")
        self.embedding_dim = cfg.embedding_dim
        self.em_audio = ResNet34Encoder(cfg.embedding_dim, in_channels=1, width=cfg.resnet_width)
        self.em_img = ResNet34Encoder(cfg.embedding_dim, in_channels=config.num_channels, width=cfg.resnet_width)
        self.lstm = nn.LSTM(2 * cfg.embedding_dim, cfg.lstm_hidden, num_layers=cfg.lstm_layers, batch_first=True)
        self.output = nn.Linear(cfg.lstm_hidden, cfg.pose_dim)

    def forward(self, source_image: torch.Tensor, audio: torch.Tensor,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """source_image [B, 3, 256, 256] in 0..1, audio [B, T, 4, 41] -> normalised poses [B, T+1, 6].

        progress(done, total), if given, is called with (0, T) after the image embedding and each chunk of audio
        embeddings, and with (t, T) after LSTM step t: a long clip runs for minutes on a CPU, and an exception raised
        there stops it.
        """
        batch, frames = audio.shape[:2]
        previous = self.em_img(source_image)  # [B, E]; the image embedding stands in for the "previous output"
        if progress is not None:
            progress(0, frames)
        # The frames' audio embeddings in a few passes; only the LSTM recursion is sequential.
        flat_audio = audio.reshape(batch * frames, 1, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES)
        chunks = []
        for first in range(0, len(flat_audio), AUDIO_EMBEDDING_CHUNK):
            chunks.append(self.em_audio(flat_audio[first:first + AUDIO_EMBEDDING_CHUNK]))
            if progress is not None:
                progress(0, frames)
        audio_embedding = torch.cat(chunks).reshape(batch, frames, self.embedding_dim)
        poses = [self.output(previous)]
        state = None  # zero initial state
        for t in range(frames):
            step_input = torch.cat([audio_embedding[:, t], previous], dim=1).unsqueeze(1)
            hidden, state = self.lstm(step_input, state)
            previous = hidden[:, 0]
            poses.append(self.output(previous))
            if progress is not None:
                progress(t + 1, frames)
        return torch.stack(poses, dim=1)
