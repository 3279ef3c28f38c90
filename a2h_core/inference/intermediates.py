"""`--save-intermediates`: every stage's output as .npy/.png files in a folder, for inspection and comparison.

Each file name is spelt once, in the constants below; `INTERMEDIATE_FILES` (name -> content) is what the README's
table documents.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import IMAGE_SIZE
from a2h_core.modules.keypoints import Keypoints
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
    """Writes each stage's output to a folder; the per-frame arrays are memory-mapped and filled as frames stream."""

    def __init__(self, folder: Path | str, num_frames: int, num_kp: int, image_size: int = IMAGE_SIZE):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.num_frames = num_frames
        self._arrays = {
            POSE_BOXES: self._open(POSE_BOXES, np.uint8, (num_frames, image_size, image_size)),
            DRIVING_KP_VALUE: self._open(DRIVING_KP_VALUE, np.float32, (num_frames, num_kp, 2)),
            DRIVING_KP_JACOBIAN: self._open(DRIVING_KP_JACOBIAN, np.float32, (num_frames, num_kp, 2, 2)),
            FRAMES: self._open(FRAMES, np.uint8, (num_frames, image_size, image_size, 3)),
        }
        self._next = {"driving": 0, "frames": 0}

    def _open(self, name: str, dtype, shape) -> np.ndarray:
        return np.lib.format.open_memmap(self.folder / name, mode="w+", dtype=dtype, shape=shape)

    def features(self, features: AudioFeatures) -> None:
        features.save(self.folder / FEATURES)

    def poses(self, poses: PoseCurve) -> None:
        np.save(self.folder / POSES, np.asarray(poses.values, dtype=np.float64))

    def source(self, source: torch.Tensor, kp_source: Keypoints) -> None:
        pixels = (source[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(self.folder / SOURCE)
        np.save(self.folder / SOURCE_KP_VALUE, kp_source.value.float().cpu().numpy())
        if kp_source.jacobian is not None:
            np.save(self.folder / SOURCE_KP_JACOBIAN, kp_source.jacobian.float().cpu().numpy())

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
        for array in self._arrays.values():
            array.flush()
        self._arrays.clear()
