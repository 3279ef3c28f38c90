"""Rotations of head poses: axis-angle vectors, rotation matrices, and yaw/pitch/roll for people.

**Yaw, pitch and roll** (degrees) are the intrinsic X-Y-Z Euler angles of a rotation,
``R = Rx(pitch) @ Ry(yaw) @ Rz(roll)`` with right-handed rotation matrices, which is also the convention of OpenFace
2.0's ``pose_Rx, pose_Ry, pose_Rz``. What a viewer sees, for a head facing the camera:

- yaw (about the camera's vertical y axis) > 0: the face turns toward the image's left (the subject's right);
- pitch (about the camera's horizontal x axis) > 0: the face tilts down;
- roll (about the viewing axis z) > 0: the head tilts clockwise in the image.

For the angles a head makes, ``ry`` is close to yaw, ``rx`` to pitch and ``rz`` to roll. Conversions both ways
round-trip to floating-point precision (|yaw| < 90 degrees).
"""
from __future__ import annotations

import numpy as np


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] from axis-angle vectors [..., 3] (Rodrigues' formula)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    theta = np.sqrt(np.sum(rotvec * rotvec, axis=-1))
    safe = np.where(theta > 0, theta, 1.0)
    axis = rotvec / safe[..., None]
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape((*axis.shape[:-1], 3, 3))
    cos, sin = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    return cos * np.eye(3) + (1 - cos) * axis[..., :, None] * axis[..., None, :] + sin * skew


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """Axis-angle vectors [..., 3] from rotation matrices [..., 3, 3] (through a unit quaternion, stable at 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Shepperd's method: start from the largest of w, x, y, z for accuracy.
    candidates = np.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    choice = np.argmax(candidates, -1)
    quat = np.empty((*m.shape[:-2], 4))  # w, x, y, z
    for case in range(4):
        sel = choice == case
        if not np.any(sel):
            continue
        r = m[sel]
        if case == 0:
            s = np.sqrt(1.0 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]) * 2
            q = [s / 4, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s]
        elif case == 1:
            s = np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2
            q = [(r[:, 2, 1] - r[:, 1, 2]) / s, s / 4, (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s]
        elif case == 2:
            s = np.sqrt(1.0 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2]) * 2
            q = [(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, s / 4, (r[:, 1, 2] + r[:, 2, 1]) / s]
        else:
            s = np.sqrt(1.0 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2]) * 2
            q = [(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 1, 2] + r[:, 2, 1]) / s, s / 4]
        quat[sel] = np.stack(q, -1)
    quat = np.where(quat[..., :1] < 0, -quat, quat)  # w >= 0: the rotation angle stays in [0, pi]
    w, v = quat[..., 0], quat[..., 1:]
    norm = np.sqrt(np.sum(v * v, axis=-1))
    angle = 2 * np.arctan2(norm, w)
    scale = np.where(norm > 1e-300, angle / np.where(norm > 1e-300, norm, 1.0), 2.0 / np.maximum(w, 1e-300))
    return v * scale[..., None]


def _axis_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    if axis == 0:
        rows = [one, zero, zero, zero, cos, -sin, zero, sin, cos]
    elif axis == 1:
        rows = [cos, zero, sin, zero, one, zero, -sin, zero, cos]
    else:
        rows = [cos, -sin, zero, sin, cos, zero, zero, zero, one]
    return np.stack(rows, -1).reshape((*np.shape(angle), 3, 3))


def ypr_to_matrix(yaw_pitch_roll_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] from yaw, pitch, roll in degrees [..., 3]: Rx(pitch) @ Ry(yaw) @ Rz(roll)."""
    angles = np.radians(np.asarray(yaw_pitch_roll_deg, dtype=np.float64))
    yaw, pitch, roll = angles[..., 0], angles[..., 1], angles[..., 2]
    return _axis_rotation(pitch, 0) @ _axis_rotation(yaw, 1) @ _axis_rotation(roll, 2)


def matrix_to_ypr(matrix: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees [..., 3] from rotation matrices (the inverse of `ypr_to_matrix`)."""
    m = np.asarray(matrix, dtype=np.float64)
    yaw = np.arcsin(np.clip(m[..., 0, 2], -1.0, 1.0))
    pitch = np.arctan2(-m[..., 1, 2], m[..., 2, 2])
    roll = np.arctan2(-m[..., 0, 1], m[..., 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], -1))


def poses_to_ypr(poses: np.ndarray) -> np.ndarray:
    """[..., 6] axis-angle poses -> [..., 6] yaw, pitch, roll (degrees), x, y, z."""
    poses = np.asarray(poses, dtype=np.float64)
    return np.concatenate([matrix_to_ypr(rotvec_to_matrix(poses[..., :3])), poses[..., 3:]], -1)


def ypr_to_poses(ypr: np.ndarray) -> np.ndarray:
    """[..., 6] yaw, pitch, roll (degrees), x, y, z -> [..., 6] axis-angle poses."""
    ypr = np.asarray(ypr, dtype=np.float64)
    return np.concatenate([matrix_to_rotvec(ypr_to_matrix(ypr[..., :3])), ypr[..., 3:]], -1)
