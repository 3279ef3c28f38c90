"""The prepared training data: one safetensors shard per clip, and a manifest.

Layout of a data folder written by `python -m a2h_core prepare CLIPS --out DATA`::

    DATA/manifest.json                  # what is there (see below), rewritten at the end of every prepare run
    DATA/shards/train/<clip id>.safetensors
    DATA/shards/val/<clip id>.safetensors

A shard holds one clip at 25 fps, N frames, in tensors that are memory-mapped when read (a window of frames is read
without reading the rest):

- ``features`` [N, 4, 41] float32: the inference front end's audio features (`extract_features`), 4 rows per frame;
- ``poses`` [N, 6] float32: the head pose of every frame (rx, ry, rz radians axis-angle; tx, ty, tz);
- ``frames`` [N, S, S, 3] uint8 RGB: the face crops resized to S x S (`--image-size`, default 256);
- ``first_frame`` [S, S, 3] uint8: frame 0, the source image of a whole-clip sample.

Its metadata (strings) records ``format`` ("audio2head-training-shard"), ``version``, ``name`` (the clip's path
relative to the clips folder), ``split``, ``frames``, ``image_size``, ``source_sha256`` (of the video file),
``pose_source`` (the curve file) and ``source_fps``. `manifest.json` lists the same per clip (``name``, ``shard``,
``split``, ``frames``, ``source_sha256``, ``pose_source``, ``source_fps``) under ``"clips"``, and the clips that
were skipped with the reason under ``"skipped"``.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from a2h_core.config import FEATURE_ROWS_PER_FRAME, FPS, NUM_AUDIO_FEATURES
from a2h_core.errors import Audio2HeadError

SHARD_FORMAT = "audio2head-training-shard"  # metadata "format" of a shard
MANIFEST_FORMAT = "audio2head-training-data"  # "format" of manifest.json
FORMAT_VERSION = 1  # bump when the layout or meaning of a shard changes
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class ClipRecord:
    """One prepared clip, as listed in the manifest."""

    name: str  # the clip's path relative to the clips folder, e.g. "train/id001/abc.mp4"
    shard: str  # the shard's path relative to the data folder
    split: str  # "train" or "val"
    frames: int  # frames at 25 fps (= rows of features, poses and frames)
    source_sha256: str  # SHA-256 of the video file it was decoded from
    pose_source: str  # the curve file the poses came from (relative to the clips folder)
    source_fps: float  # the video's own frame rate before resampling to 25 fps


@dataclass
class ClipData:
    """A clip (or a window of it) in memory, as the data sets use it."""

    features: np.ndarray  # [n, 4, 41] float32
    poses: np.ndarray  # [n, 6] float32
    image: np.ndarray  # [S, S, 3] uint8: the frame the window starts at


def clip_id(name: str) -> str:
    """A file-name-safe id of a clip path: split folders dropped, separators as "__", the extension removed."""
    parts = [p for p in Path(name).with_suffix("").parts if p.lower() not in SPLITS]
    return "__".join(parts) or Path(name).stem


def shard_path(data: Path, split: str, name: str) -> Path:
    return Path(data) / "shards" / split / f"{clip_id(name)}.safetensors"


def write_shard(path: Path, features: np.ndarray, poses: np.ndarray, frames: np.ndarray,
                metadata: dict[str, str]) -> None:
    """Write a shard atomically (temporary name, then rename): a crash never leaves a finished-looking shard."""
    n = len(frames)
    if features.shape != (n, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES) or poses.shape != (n, 6):
        raise ValueError(f"shard arrays disagree: features {features.shape}, poses {poses.shape}, frames {n}")
    tensors = {
        "features": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
        "poses": torch.from_numpy(np.ascontiguousarray(poses, dtype=np.float32)),
        "frames": torch.from_numpy(np.ascontiguousarray(frames, dtype=np.uint8)),
        "first_frame": torch.from_numpy(np.ascontiguousarray(frames[0], dtype=np.uint8)),
    }
    meta = {"format": SHARD_FORMAT, "version": str(FORMAT_VERSION), "frames": str(n), **metadata}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        save_file(tensors, str(partial), metadata=meta)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def shard_metadata(path: Path) -> dict[str, str] | None:
    """A shard's metadata, or None when the file is absent, unreadable or not a current shard."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError):
        return None
    if metadata.get("format") != SHARD_FORMAT or metadata.get("version") != str(FORMAT_VERSION):
        return None
    return metadata


def read_window(path: Path, start: int, length: int, frames: int) -> ClipData:
    """Rows [start, start + length) of features, `length + 1` poses from `start` (clipped to the clip), and the frame
    at `start`, read through a memory map."""
    end = min(start + length, frames)
    try:
        with safe_open(str(path), framework="np") as handle:
            features = handle.get_slice("features")[start:end]
            poses = handle.get_slice("poses")[start:min(end + 1, frames)]
            image = handle.get_slice("frames")[start]
    except (SafetensorError, OSError) as exc:
        raise Audio2HeadError(f"cannot read the training shard {path} ({exc}): run prepare again") from exc
    return ClipData(features=np.asarray(features), poses=np.asarray(poses), image=np.asarray(image))


def read_frames(path: Path, start: int, count: int) -> np.ndarray:
    """Frames [start, start + count) of a shard [count, S, S, 3] uint8, read through a memory map."""
    try:
        with safe_open(str(path), framework="np") as handle:
            return np.asarray(handle.get_slice("frames")[start:start + count])
    except (SafetensorError, OSError) as exc:
        raise Audio2HeadError(f"cannot read the training shard {path} ({exc}): run prepare again") from exc


def write_manifest(data: Path, records: list[ClipRecord], skipped: list[dict], settings: dict) -> Path:
    """Write manifest.json atomically."""
    document = {
        "format": MANIFEST_FORMAT, "version": FORMAT_VERSION, "fps": FPS, **settings,
        "clips": [asdict(r) for r in sorted(records, key=lambda r: r.name)],
        "skipped": sorted(skipped, key=lambda s: s["name"]),
    }
    path = Path(data) / MANIFEST_NAME
    partial = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.partial")
    partial.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


@dataclass
class TrainingData:
    """A prepared data folder: its manifest and the clips of each split."""

    root: Path  # the data folder
    image_size: int  # side of the stored frames
    clips: list[ClipRecord]  # every prepared clip

    @classmethod
    def open(cls, root) -> TrainingData:
        root = Path(root)
        manifest = root / MANIFEST_NAME
        if not manifest.is_file():
            raise Audio2HeadError(f"{root} is not a prepared data folder (no {MANIFEST_NAME}): run "
                                  f"python -m a2h_core prepare CLIPS --out {root}")
        try:
            document = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise Audio2HeadError(f"{manifest} is unreadable ({exc}): run prepare again") from exc
        if document.get("format") != MANIFEST_FORMAT or document.get("version") != FORMAT_VERSION:
            raise Audio2HeadError(f"{manifest} is not a version-{FORMAT_VERSION} Audio2Head data manifest: run "
                                  "prepare again with this version")
        clips = [ClipRecord(**entry) for entry in document["clips"]]
        return cls(root=root, image_size=int(document["image_size"]), clips=clips)

    def split(self, split: str) -> list[ClipRecord]:
        """The clips of one split, in name order; an error naming the fix when there are none."""
        chosen = [c for c in self.clips if c.split == split]
        if not chosen:
            raise Audio2HeadError(f"{self.root} has no {split!r} clips: prepare more clips, put some in a {split}/ "
                                  "folder, or change --val-fraction")
        return chosen

    def path(self, record: ClipRecord) -> Path:
        return self.root / record.shard
