"""Lip-sync scores LSE-D and LSE-C (Prajwal et al., Wav2Lip, 2020) with SyncNet (`a2h_core.modules.syncnet`).

The protocol is syncnet_python's `SyncNetInstance.evaluate`, as Wav2Lip's `evaluation/scores_LSE` runs it:

1. Windows: for video frames i = 0 .. W - 1, with W = min(frames, audio frames) - 5 (the original's count, which
   leaves out the last full window), the lip window is frames i .. i + 4 and the audio window MFCC steps
   4i .. 4i + 19 (100 MFCC steps per second, 25 video frames per second).
2. Embeddings of both (SyncNet in eval mode).
3. Distances: d[i, j] = |lip_i - audio_(i + j - S) + 1e-6|_2 for offsets j = 0 .. 2S (S = 15 frames), the audio
   embeddings zero-padded past both ends (torch's `pairwise_distance`, as the original).
4. Mean over frames per offset: m[j]. LSE-D = min_j m[j]; LSE-C = median_j m[j] - LSE-D; the AV offset is S - argmin
   (positive: the video lags the audio). Over several clips both are averaged per clip, unweighted (as Wav2Lip does).

Inputs here (documented differences from running the original scripts on a video file):

- **Faces**: the clip's frames as they are, resized (bilinear, like OpenCV's default) from the model's S x S to
  224 x 224, RGB flipped to BGR, 0..255. They are already face-centred crops (the data's own crop), where syncnet_python
  runs its S3FD face tracker and crops box-relative (`crop_scale` 0.4) first, and the original decodes JPEG frames.
  Scores are comparable between runs of this command, not digit for digit with published tables.
- **Audio**: SyncNet's MFCC is python_speech_features' `mfcc` at its defaults on 16 kHz int16 samples; the clips'
  stored features hold exactly that MFCC (columns 0-12) of the peak-normalised signal in [-1, 1]. Scaling a signal by
  a only adds 2 ln a to c0 (the log frame energy) and leaves c1..c12 unchanged, so `syncnet_mfcc` adds
  2 ln 32767: the MFCC SyncNet would compute from the clip's audio with its mean removed and peak-normalised to
  16-bit full scale (without rounding to integers); the recording's own level would only shift c0.

The weights (`syncnet_v2.model`) cannot ship with this package; the user gives the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from a2h_core.config import FEATURE_ROWS_PER_FRAME
from a2h_core.errors import Audio2HeadError
from a2h_core.modules.syncnet import FACE_SIZE, MFCC_COEFFICIENTS, MFCC_STEPS, WINDOW_FRAMES, SyncNet
from a2h_core.training.pretrained import read_state_dict

SYNCNET_FILE = "syncnet_v2.model"  # SyncNet's weights, from joonson/syncnet_python (its download_model.sh)
SYNCNET_SOURCE = "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model"
MAX_OFFSET = 15  # frames searched either way (syncnet_python's and Wav2Lip's --vshift default)
INT16_FULL_SCALE = 32767.0  # the audio level SyncNet's MFCC is taken at (see the module doc)
WINDOW_BATCH = 20  # windows per forward pass (the original's --batch_size)


@dataclass(frozen=True)
class LipSyncScore:
    """One clip's lip-sync scores."""

    lse_d: float  # minimum over offsets of the frame-averaged embedding distance (lower is better)
    lse_c: float  # median minus minimum of the same curve (higher is more confident)
    offset: int  # the audio-video offset in frames at that minimum (0 when in sync)


def load_syncnet(path: str | Path) -> SyncNet:
    """SyncNet with the weights of `path` (syncnet_python's syncnet_v2.model layout), in eval mode, on the CPU."""
    path = Path(path)
    state = read_state_dict(path, "--syncnet-weights", f"SyncNet's {SYNCNET_FILE}, from {SYNCNET_SOURCE}")
    model = SyncNet()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first_line = str(exc).splitlines()[0]
        raise Audio2HeadError(f"--syncnet-weights {path} does not fit SyncNet ({first_line}): use "
                              f"{SYNCNET_FILE} from {SYNCNET_SOURCE}") from exc
    return model.eval().requires_grad_(False)


def syncnet_mfcc(features: np.ndarray) -> np.ndarray:
    """SyncNet's MFCC [13, rows] from the 41-column audio features [rows, 41] (see the module doc)."""
    mfcc = np.array(features[:, :MFCC_COEFFICIENTS], dtype=np.float64).T
    mfcc[0] += 2 * math.log(INT16_FULL_SCALE)
    return mfcc


def sync_distances(lip: torch.Tensor, audio: torch.Tensor, max_offset: int = MAX_OFFSET) -> torch.Tensor:
    """d [W, 2 * max_offset + 1]: lip embedding i against audio embedding i + j - max_offset (zeros outside)."""
    span = 2 * max_offset + 1
    padded = F.pad(audio, (0, 0, max_offset, max_offset))
    index = torch.arange(len(lip))[:, None] + torch.arange(span)[None, :]
    return F.pairwise_distance(lip[:, None, :].expand(-1, span, -1), padded[index])


def lip_sync_score(distances: torch.Tensor) -> LipSyncScore:
    """LSE-D, LSE-C and the offset from the distances [W, 2S + 1] (see the module doc)."""
    per_offset = distances.double().mean(0)
    minimum, index = per_offset.min(0)
    max_offset = (len(per_offset) - 1) // 2
    return LipSyncScore(lse_d=float(minimum), lse_c=float(per_offset.median() - minimum),
                        offset=max_offset - int(index))


class LipSyncMetric:
    """SyncNet's LSE-D / LSE-C of video frames against the clip's audio features."""

    def __init__(self, model: SyncNet, device: torch.device):
        self.model, self.device = model.to(device), device

    def windows(self, frames: np.ndarray, features: np.ndarray) -> int:
        """How many windows a clip of these frames and feature rows gives (at least 1 is needed)."""
        return min(len(frames), len(features) // FEATURE_ROWS_PER_FRAME) - WINDOW_FRAMES

    def __call__(self, frames: np.ndarray, features: np.ndarray) -> LipSyncScore:
        """frames [N, S, S, 3] uint8 RGB; features [rows, 41] (4 rows per frame)."""
        count = self.windows(frames, features)
        if count < 1:
            raise Audio2HeadError(f"lip sync needs at least {WINDOW_FRAMES + 1} frames; the clip has {len(frames)}")
        mfcc = torch.from_numpy(syncnet_mfcc(features)).float()
        lip, audio = [], []
        with torch.no_grad():
            for start in range(0, count, WINDOW_BATCH):
                stop = min(count, start + WINDOW_BATCH)
                faces = self._faces(frames[start:stop + WINDOW_FRAMES - 1])
                lip_windows = torch.stack([faces[:, i:i + WINDOW_FRAMES] for i in range(stop - start)])
                audio_windows = torch.stack([mfcc[None, :, FEATURE_ROWS_PER_FRAME * i:
                                                  FEATURE_ROWS_PER_FRAME * i + MFCC_STEPS] for i in range(start, stop)])
                lip.append(self.model.lip_embedding(lip_windows.to(self.device)).cpu())
                audio.append(self.model.audio_embedding(audio_windows.to(self.device)).cpu())
        return lip_sync_score(sync_distances(torch.cat(lip), torch.cat(audio)))

    @staticmethod
    def _faces(frames: np.ndarray) -> torch.Tensor:
        """[N, S, S, 3] uint8 RGB -> [3, N, 224, 224] float BGR 0..255, SyncNet's lip input."""
        faces = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        faces = F.interpolate(faces, size=(FACE_SIZE, FACE_SIZE), mode="bilinear", align_corners=False)
        return faces.flip(1).permute(1, 0, 2, 3)
