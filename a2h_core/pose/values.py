"""Validation of the numbers that make pose curves: poses, counts, rates, six-channel edit arguments.

Every constructor and edit of `PoseCurve` goes through these, so bad input gets one clear message wherever it
enters.
"""
from __future__ import annotations

import math

import numpy as np

from a2h_core.errors import Audio2HeadError


def validated_poses(values, what: str = "pose curve") -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Audio2HeadError(f"{what}: the values must be numbers, shaped [poses, 6] ({exc})") from None
    if array.ndim == 1 and array.size == 6:
        array = array[None]
    if array.ndim != 2 or array.shape[-1] != 6:
        raise Audio2HeadError(
            f"{what}: expected [poses, 6] values (rx, ry, rz, tx, ty, tz), got shape {array.shape}; every pose "
            "needs exactly six numbers")
    if len(array) == 0:
        raise Audio2HeadError(f"{what} is empty: it needs at least one pose")
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise Audio2HeadError(
            f"{what} holds NaN or Inf in {len(rows)} of {len(array)} poses (first at pose {rows[0]}); fix or remove "
            "those rows")
    return array


def validated_count(num_poses, what: str = "num_poses") -> int:
    try:
        whole = float(num_poses).is_integer()
    except (TypeError, ValueError, OverflowError):
        whole = False
    if isinstance(num_poses, bool) or not whole or int(num_poses) < 1:
        raise Audio2HeadError(f"{what} must be a whole number >= 1, got {num_poses!r}")
    return int(num_poses)


def validated_fps(fps) -> float:
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise Audio2HeadError(f"fps must be a number, got {fps!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise Audio2HeadError(f"fps must be a positive number, got {fps}")
    return fps


def six_numbers(value, what: str) -> np.ndarray:
    """A scalar or six numbers (yaw, pitch, roll, x, y, z) as a float64 [6] array."""
    array = np.array(value, dtype=np.float64).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, 6)
    if array.size != 6 or not np.all(np.isfinite(array)):
        raise Audio2HeadError(f"{what} must be one number or six finite numbers (yaw, pitch, roll, x, y, z), "
                              f"got {value!r}")
    return array

