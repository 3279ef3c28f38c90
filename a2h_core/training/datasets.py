"""Training samples for the head-motion predictor: windows of T frames of audio with the T + 1 true poses.

At inference N_H sees the source image and T frames of audio and gives T + 1 poses: pose 0 from the image alone,
pose i after i frames of audio (frame i of the video uses pose i). A training window starting at frame k therefore
holds: the frame k image (the source), audio frames k .. k + T - 1 and the true poses of frames k .. k + T.

**Short clips are used whole and padded, never dropped**: a clip of n <= T frames gives audio frames 0 .. n - 2 and
poses 0 .. n - 1 (the whole clip); the audio is zero-padded to T frames and the poses hold their last value, and the
mask (1 on real poses) keeps the padding out of the losses and the discriminator's signal.

Window positions are a pure function of (seed, epoch, sample index), so a run resumed at any step sees exactly
the windows an uninterrupted run sees, whatever the number of data-loader workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from a2h_core.config import FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES
from a2h_core.errors import Audio2HeadError
from a2h_core.modules.pose_predictor import normalize_poses
from a2h_core.training.augmentation import augment_frames
from a2h_core.training.config import AugmentationConfig
from a2h_core.training.shards import ClipData, TrainingData, read_frames, read_window


class ClipSource:
    """One clip a data set can read windows from."""

    name: str
    frames: int

    def window(self, start: int, length: int) -> ClipData:
        """Audio frames [start, start + length), poses [start, start + length], the image at `start` (clipped)."""
        raise NotImplementedError

    def frames_range(self, start: int, count: int) -> np.ndarray:
        """Video frames [start, start + count) as [count, S, S, 3] uint8."""
        raise NotImplementedError


@dataclass
class ShardClip(ClipSource):
    """A clip in a prepared shard (memory-mapped)."""

    name: str  # the clip's name in the manifest
    path: Path  # its shard
    frames: int  # its frame count

    def window(self, start: int, length: int) -> ClipData:
        return read_window(self.path, start, length, self.frames)

    def frames_range(self, start: int, count: int) -> np.ndarray:
        return read_frames(self.path, start, count)


@dataclass
class MemoryClip(ClipSource):
    """A clip held in memory (personalisation's one clip, its held-out part)."""

    name: str  # for messages and plots
    features: np.ndarray  # [n, 4, 41] float32
    poses: np.ndarray  # [n, 6] physical poses
    frames_rgb: np.ndarray  # [n, S, S, 3] uint8, or [1, S, S, 3]: only the first frame known

    @property
    def frames(self) -> int:
        return len(self.poses)

    def window(self, start: int, length: int) -> ClipData:
        end = min(start + length, self.frames)
        image = self.frames_rgb[min(start, len(self.frames_rgb) - 1)]
        return ClipData(features=self.features[start:end], poses=self.poses[start:min(end + 1, self.frames)],
                        image=image)

    def frames_range(self, start: int, count: int) -> np.ndarray:
        if len(self.frames_rgb) < start + count:
            raise ValueError(f"{self.name}: only {len(self.frames_rgb)} frames are held in memory")
        return self.frames_rgb[start:start + count]


def shard_clips(data: TrainingData, split: str, limit: int | None = None) -> list[ShardClip]:
    """The clips of one split of a prepared data folder (the first `limit` by name)."""
    records = data.split(split)[:limit]
    return [ShardClip(r.name, data.path(r), r.frames) for r in records]


def window_sample(clip: ClipSource, start: int, window: int) -> dict[str, torch.Tensor]:
    """One padded training sample (see the module doc): image [3, S, S] in 0..1, audio [T, 4, 41], poses [T + 1, 6]
    normalised, mask [T + 1]."""
    length = min(window, clip.frames - 1 - start)  # audio frames: one pose more than audio frames is needed
    data = clip.window(start, length)
    audio = np.zeros((window, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES), dtype=np.float32)
    audio[:length] = data.features[:length]
    poses = np.empty((window + 1, 6), dtype=np.float32)
    poses[: length + 1] = data.poses[: length + 1]
    poses[length + 1:] = data.poses[length]
    mask = np.zeros(window + 1, dtype=np.float32)
    mask[: length + 1] = 1
    image = torch.from_numpy(np.ascontiguousarray(data.image)).permute(2, 0, 1).float() / 255.0
    return {"image": image, "audio": torch.from_numpy(audio),
            "poses": normalize_poses(torch.from_numpy(poses)), "mask": torch.from_numpy(mask)}


class ClipSamples(Dataset):
    """Samples drawn from clips, each a pure function of (seed, epoch, index): every clip gives
    max(1, frames // `span`) (or `per_clip`) samples per epoch, and the list is repeated up to `min_length` samples,
    so a batch can be filled from few clips. Subclasses draw a sample from `_draw(index)`'s clip and random
    generator."""

    def __init__(self, clips: list[ClipSource], span: int, seed: int = 0, min_length: int = 1,
                 per_clip: int | None = None):
        """per_clip: a fixed number of samples per clip and epoch instead of max(1, frames // span)."""
        if not clips:
            raise ValueError("no clips")
        self.clips, self.seed, self.epoch = clips, seed, 0
        items = [i for i, clip in enumerate(clips) for _ in range(per_clip or max(1, clip.frames // span))]
        self.items = items * -(-max(min_length, 1) // len(items))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _draw(self, index: int) -> tuple[ClipSource, np.random.Generator]:
        return self.clips[self.items[index]], np.random.default_rng([self.seed, self.epoch, index])


class PoseWindows(ClipSamples):
    """Random windows of `window` frames of the clips (see `ClipSamples` for how many)."""

    def __init__(self, clips: list[ClipSource], window: int, seed: int = 0, min_length: int = 1):
        super().__init__(clips, window, seed, min_length)
        self.window = window

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, rng = self._draw(index)
        free = clip.frames - 1 - self.window  # a window needs window + 1 poses
        start = int(rng.integers(0, free + 1)) if free > 0 else 0
        return window_sample(clip, start, self.window)


def _image_tensor(frame: np.ndarray) -> torch.Tensor:
    """[S, S, 3] uint8 -> [3, S, S] float32 in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255.0


def check_image_size(clips: list[ClipSource], image_size: int) -> None:
    """Raise Audio2HeadError unless the clips' frames are `image_size` pixels square (the model's input)."""
    for clip in clips[:1]:
        side = clip.frames_range(0, 1).shape[1]
        if side != image_size:
            raise Audio2HeadError(f"the prepared frames are {side} px and the model's image size is {image_size}: "
                                  f"prepare the clips again with --image-size {image_size}, or choose a model "
                                  f"config of {side} px")


class FramePairs(ClipSamples):
    """Source and driving frames of the same clip, for N_D + N_I (FOMM's self-supervised reconstruction): each clip
    gives `repeats` pairs per epoch (FOMM's num_repeats), both frames drawn uniformly from the clip and augmented
    together (`augmentation.augment_frames`; None: not augmented); positions and augmentation are a pure function of
    (seed, epoch, index). Samples: source, driving [3, S, S] float32 in 0..1, and `noise` [noise_size] standard
    normal draws for the sample's random equivariance transform (drawn with the sample, so a batch split across
    processes or a resumed run sees the same transforms)."""

    def __init__(self, clips: list[ClipSource], seed: int = 0, min_length: int = 1, repeats: int = 75,
                 noise_size: int = 0, augmentation: AugmentationConfig | None = None):
        super().__init__(clips, 1, seed, min_length, per_clip=repeats)
        self.noise_size = noise_size
        self.augmentation = augmentation if augmentation is not None and augmentation.enabled else None

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, rng = self._draw(index)
        frames = [clip.frames_range(int(i), 1)[0] for i in rng.integers(0, clip.frames, 2)]
        noise = torch.from_numpy(rng.standard_normal(self.noise_size).astype(np.float32))
        if self.augmentation is not None:
            frames = augment_frames(frames, self.augmentation, rng)
        return {"source": _image_tensor(frames[0]), "driving": _image_tensor(frames[1]), "noise": noise}


def motion_window_sample(clip: ClipSource, start: int, length: int, reference: int) -> dict[str, torch.Tensor]:
    """One N_M training window: audio [T, 4, 41], true poses [T, 6] (physical), real frames [T, S, S, 3] uint8 of
    frames start .. start + T - 1 (frame t is driven by audio frame t and pose t, as at inference), and the
    reference image [3, S, S] in 0..1 (frame `reference` of the same clip)."""
    data = clip.window(start, length)
    return {"audio": torch.from_numpy(np.ascontiguousarray(data.features[:length], dtype=np.float32)),
            "poses": torch.from_numpy(np.ascontiguousarray(data.poses[:length], dtype=np.float32)),
            "frames": torch.from_numpy(np.ascontiguousarray(clip.frames_range(start, length))),
            "reference": _image_tensor(clip.frames_range(reference, 1)[0])}


class MotionWindows(ClipSamples):
    """Windows of T frames for N_M (see `motion_window_sample`): each clip of at least T frames gives
    max(1, frames // T) windows per epoch at random starts, with a reference frame drawn anywhere in the clip (at
    inference one source image drives windows far from it); clips shorter than T are left out. Positions, the
    equivariance transform's `noise` and the `order` in which stage 2 picks frames to render are a pure function of
    (seed, epoch, index)."""

    def __init__(self, clips: list[ClipSource], length: int, seed: int = 0, min_length: int = 1,
                 noise_size: int = 0):
        usable = [clip for clip in clips if clip.frames >= length]
        if not usable:
            raise Audio2HeadError(f"no clip has the {length} frames of one motion window ({len(clips)} clips, the "
                                  f"longest {max((c.frames for c in clips), default=0)} frames): use longer clips "
                                  "or a model config with a shorter motion_field.seq_len")
        super().__init__(usable, length, seed, min_length)
        self.length, self.noise_size = length, noise_size
        self.skipped = len(clips) - len(usable)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, rng = self._draw(index)
        start = int(rng.integers(0, clip.frames - self.length + 1))
        sample = motion_window_sample(clip, start, self.length, int(rng.integers(0, clip.frames)))
        sample["noise"] = torch.from_numpy(rng.standard_normal(self.noise_size).astype(np.float32))
        sample["order"] = torch.from_numpy(rng.permutation(self.length))  # stage 2 renders the first frames of it
        return sample
