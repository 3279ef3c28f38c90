"""`--save-intermediates`: every stage's output as .npy/.png files in a folder, for inspection and comparison.

Each file name is spelt once, in the constants below; `INTERMEDIATE_FILES` (name -> content) is what the README's
table documents.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import IMAGE_SIZE
from a2h_core.modules.keypoints import Keypoints
from a2h_core.paths import atomic_output, checked_output_folder, remove_quietly, temporary_name
from a2h_core.pose.curve import PoseCurve

FEATURES = "features.npy"
POSES = "poses.npy"
SOURCE = "source.png"
SOURCE_KP_VALUE = "source_kp_value.npy"
SOURCE_KP_JACOBIAN = "source_kp_jacobian.npy"
POSE_BOXES = "pose_boxes.npy"
DRIVING_KP_VALUE = "driving_kp_value.npy"
DRIVING_KP_JACOBIAN = "driving_kp_jacobian.npy"
FRAMES = "frames.npy"

INTERMEDIATE_FILES = {  # file name -> content
    FEATURES: "[rows, 41] float64 audio features (13 MFCC, 26 log filter bank, F0, voiced flag), 100 rows/s",
    POSES: "[N, 6] float64 pose curve used (rx, ry, rz radians, tx, ty, tz); predicted: N = frames + 1",
    SOURCE: "256x256 (the model's image size) RGB network input (after crop and resize)",
    SOURCE_KP_VALUE: "[1, 10, 2] float32 source keypoints, x then y in [-1, 1]",
    SOURCE_KP_JACOBIAN: "[1, 10, 2, 2] float32 source Jacobians",
    POSE_BOXES: "[frames, 256, 256] uint8 pose-box images (0/255) of the video frames",
    DRIVING_KP_VALUE: "[frames, 10, 2] float32 driving keypoints, x then y in [-1, 1]",
    DRIVING_KP_JACOBIAN: "[frames, 10, 2, 2] float32 driving Jacobians",
    FRAMES: "[frames, 256, 256, 3] uint8 RGB generated frames (before paste-back)",
}


class IntermediateWriter:
    """Writes each stage's output to a folder; the per-frame arrays are memory-mapped and filled as frames stream.

    Every file is written under a hidden temporary name. The small files are renamed as soon as they are complete;
    the per-frame arrays only by `close()`, after the last frame. `abort()` (an error or Ctrl-C during rendering)
    deletes the unfinished arrays, so nothing that looks complete is left holding zeros after the last frame.
    """

    def __init__(self, folder: Path | str, num_frames: int, num_kp: int, image_size: int = IMAGE_SIZE):
        self.folder = checked_output_folder(folder, "intermediates folder")
        self.num_frames = num_frames
        self._temp: dict[str, Path] = {}  # final name -> temporary file of the arrays being filled
        self._arrays: dict[str, np.ndarray] = {}
        try:
            for name, dtype, shape in (
                    (POSE_BOXES, np.uint8, (num_frames, image_size, image_size)),
                    (DRIVING_KP_VALUE, np.float32, (num_frames, num_kp, 2)),
                    (DRIVING_KP_JACOBIAN, np.float32, (num_frames, num_kp, 2, 2)),
                    (FRAMES, np.uint8, (num_frames, image_size, image_size, 3))):
                self._temp[name] = temporary_name(self.folder / name)
                self._arrays[name] = np.lib.format.open_memmap(self._temp[name], mode="w+", dtype=dtype, shape=shape)
        except BaseException:
            self.abort()
            raise
        self._next = {"driving": 0, "frames": 0}

    def _save_array(self, name: str, array: np.ndarray) -> None:
        with atomic_output(self.folder / name, "intermediate file") as temp, open(temp, "wb") as handle:
            np.save(handle, array)

    def features(self, features: AudioFeatures) -> None:
        self._save_array(FEATURES, features.values)

    def poses(self, poses: PoseCurve) -> None:
        self._save_array(POSES, np.asarray(poses.values, dtype=np.float64))

    def source(self, source: torch.Tensor, kp_source: Keypoints) -> None:
        pixels = (source[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().astype(np.uint8)
        with atomic_output(self.folder / SOURCE, "intermediate file") as temp:
            Image.fromarray(pixels).save(temp, format="PNG")
        self._save_array(SOURCE_KP_VALUE, kp_source.value.float().cpu().numpy())
        if kp_source.jacobian is not None:
            self._save_array(SOURCE_KP_JACOBIAN, kp_source.jacobian.float().cpu().numpy())

    def pose_boxes(self, first_frame: int, boxes: torch.Tensor) -> None:
        self._arrays[POSE_BOXES][first_frame:first_frame + len(boxes)] = boxes.numpy()

    def driving(self, keypoints: Keypoints) -> None:
        start = self._next["driving"]
        self._arrays[DRIVING_KP_VALUE][start:start + len(keypoints)] = keypoints.value.cpu().numpy()
        if keypoints.jacobian is not None:
            self._arrays[DRIVING_KP_JACOBIAN][start:start + len(keypoints)] = keypoints.jacobian.cpu().numpy()
        self._next["driving"] = start + len(keypoints)

    def frames(self, frames: np.ndarray) -> None:
        start = self._next["frames"]
        self._arrays[FRAMES][start:start + len(frames)] = frames
        self._next["frames"] = start + len(frames)

    def close(self) -> None:
        """Flush the per-frame arrays and give them their final names (call after the last frame)."""
        for name in list(self._temp):
            _release(self._arrays.pop(name), flush=True)
            os.replace(self._temp.pop(name), self.folder / name)

    def abort(self) -> None:
        """Delete the unfinished per-frame arrays (rendering stopped early)."""
        for name in list(self._temp):
            _release(self._arrays.pop(name, None), flush=False)
            remove_quietly(self._temp.pop(name))


def _release(array: np.memmap | None, flush: bool) -> None:
    """Write a memory-mapped array out (optionally) and unmap it, so that its file can be renamed or deleted."""
    if array is None:
        return
    if flush:
        array.flush()
    mapping = getattr(array, "_mmap", None)
    if mapping is not None:
        with contextlib.suppress(BufferError, ValueError):  # a live view keeps it until the last reference goes
            mapping.close()
