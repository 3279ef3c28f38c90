"""Poses and the pose-box reference: random poses about the middle of the training range, and the original's
drawing of the pose box (inference.py `draw_annotation_box`) re-stated with OpenCV calls, which our renderer
(a2h_core.pose.render) reproduces pixel for pixel."""
from __future__ import annotations

import numpy as np

from a2h_core.config import POSE_MAX, POSE_MIN
from a2h_core.pose.render import BOX_POINTS_3D

# The original's camera: focal length 233.333 px, principal point at the centre of the 256 x 256 image.
CAMERA_MATRIX = np.array([[233.333, 0, 128], [0, 233.333, 128], [0, 0, 1]], dtype=np.float64)


def random_poses(count: int, seed: int, spread: float = 1.0, dtype=np.float32) -> np.ndarray:
    """[count, 6] poses drawn uniformly about the middle of the training range (POSE_MIN..POSE_MAX) scaled by
    `spread` (1: the range itself; above 1, boxes leave the image or reach behind the camera). float32 by default,
    like the pose predictor's output."""
    rng = np.random.default_rng(seed)
    middle, half = (POSE_MIN + POSE_MAX) / 2.0, (POSE_MAX - POSE_MIN) / 2.0
    return (middle + spread * half * (2 * rng.random((count, 6)) - 1)).astype(dtype)


def opencv_pose_box(pose: np.ndarray) -> np.ndarray:
    """The original's pose box of one pose [rx, ry, rz, tx, ty, tz]: project, truncate to int32, then polylines and
    three lines, 2 px anti-aliased, on float64 zeros [256, 256] (0..255)."""
    import cv2

    projected, _ = cv2.projectPoints(BOX_POINTS_3D, np.array(pose[:3]), np.array(pose[3:]), CAMERA_MATRIX,
                                     np.zeros((4, 1)))
    points = np.int32(projected.reshape(-1, 2))
    image = np.zeros((256, 256))
    cv2.polylines(image, [points], True, (255, 255, 255), 2, cv2.LINE_AA)
    for a, b in ((1, 6), (2, 7), (3, 8)):
        cv2.line(image, tuple(int(v) for v in points[a]), tuple(int(v) for v in points[b]), (255, 255, 255), 2,
                 cv2.LINE_AA)
    return image


def opencv_pose_boxes(poses: np.ndarray) -> np.ndarray:
    """`opencv_pose_box` of every pose, as the original's loop stacks them: [N, 256, 256] float32."""
    return np.array([opencv_pose_box(pose) for pose in poses], dtype=np.float32)
