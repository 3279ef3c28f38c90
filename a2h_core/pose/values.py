"""Validation of the numbers that make pose curves: poses, counts, rates, six-channel edit arguments, smoothing.

Every constructor and edit of `PoseCurve` goes through these, so bad input gets one clear message wherever it
enters. Sizes are checked against the limits of `a2h_core.config` (24 h of poses, 1..1000 poses per second, ...)
before anything is allocated. Messages never quote text taken from a file: `describe` shows numbers, and only the
type of anything else.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from a2h_core.config import (
    FPS,
    MAX_POSE_FPS,
    MAX_POSE_VALUE,
    MAX_POSES,
    MAX_SMOOTH_SIGMA,
    MIN_POSE_FPS,
)
from a2h_core.errors import Audio2HeadError

LIMIT_NOTE = f"{MAX_POSES:,} poses (24 h at {FPS} fps)"  # how messages name the length limit


def describe(value) -> str:
    """A number as written; anything else only by its type, so that file contents never reach a message."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Number):
        text = repr(value)
        return text if len(text) <= 40 else f"{float(value):.6g}"
    return f"a {type(value).__name__}"


def validated_poses(values, what: str = "pose curve") -> np.ndarray:
    try:
        length = len(values)
    except TypeError:
        length = None
    if length is not None and length > MAX_POSES:
        raise Audio2HeadError(f"{what} holds {length:,} poses, more than the limit of {LIMIT_NOTE}; shorten it")
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise Audio2HeadError(f"{what}: the values must be numbers, shaped [poses, 6]") from None
    if array.ndim == 1 and array.size == 6:
        array = array[None]
    if array.ndim != 2 or array.shape[-1] != 6:
        raise Audio2HeadError(
            f"{what}: expected [poses, 6] values (rx, ry, rz, tx, ty, tz), got shape {array.shape}; every pose "
            "needs exactly six numbers")
    if len(array) == 0:
        raise Audio2HeadError(f"{what} is empty: it needs at least one pose")
    if len(array) > MAX_POSES:
        raise Audio2HeadError(f"{what} holds {len(array):,} poses, more than the limit of {LIMIT_NOTE}; shorten it")
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise Audio2HeadError(
            f"{what} holds NaN or Inf in {len(rows)} of {len(array)} poses (first at pose {rows[0]}); fix or remove "
            "those rows")
    huge = np.abs(array) > MAX_POSE_VALUE
    if huge.any():
        row, column = (int(i) for i in np.argwhere(huge)[0])
        raise Audio2HeadError(
            f"{what} holds a value of {array[row, column]:.3g} (pose {row}, column {column + 1} of 6), beyond the "
            f"limit of +-{MAX_POSE_VALUE:g}: poses are radians and camera units, trained within +-400; check the "
            "file's columns and units")
    return array


def validated_count(num_poses, what: str = "num_poses", maximum: int = MAX_POSES) -> int:
    """A whole number of poses or frames, 1 .. `maximum` (default: the 24 h limit)."""
    try:
        whole = float(num_poses).is_integer()
    except (TypeError, ValueError, OverflowError):
        whole = False
    if isinstance(num_poses, bool) or not whole or int(num_poses) < 1:
        raise Audio2HeadError(f"{what} must be a whole number >= 1, got {describe(num_poses)}")
    if int(num_poses) > maximum:
        reason = f"24 h at {FPS} fps" if maximum == MAX_POSES else "see the README, Limits"
        raise Audio2HeadError(f"{what} is {int(num_poses):,}, more than the limit of {maximum:,} ({reason})")
    return int(num_poses)


def validated_fps(fps, what: str = "fps") -> float:
    """A pose rate within MIN_POSE_FPS .. MAX_POSE_FPS poses per second."""
    if isinstance(fps, bool):
        fps = None
    try:
        value = float(fps)
    except (TypeError, ValueError, OverflowError):
        raise Audio2HeadError(f"{what} must be a number, got {describe(fps)}") from None
    if not math.isfinite(value) or not MIN_POSE_FPS <= value <= MAX_POSE_FPS:
        raise Audio2HeadError(f"{what} must be between {MIN_POSE_FPS:g} and {MAX_POSE_FPS:g} poses per second, got "
                              f"{value:g} (the model works at {FPS})")
    return value


def validated_sigma(sigma) -> float:
    """A Gaussian smoothing width in poses, 0 .. MAX_SMOOTH_SIGMA."""
    try:
        value = float(sigma)
    except (TypeError, ValueError, OverflowError):
        raise Audio2HeadError(f"smoothing sigma must be a number of poses, got {describe(sigma)}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_SMOOTH_SIGMA:
        raise Audio2HeadError(f"smoothing sigma must be between 0 and {MAX_SMOOTH_SIGMA:g} poses, got {value:g}")
    return value


def six_numbers(value, what: str) -> np.ndarray:
    """A scalar or six numbers (yaw, pitch, roll, x, y, z) as a float64 [6] array."""
    try:
        array = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        array = np.zeros(0)
    if array.size == 1:
        array = np.repeat(array, 6)
    if array.size != 6 or not np.all(np.isfinite(array)) or np.any(np.abs(array) > MAX_POSE_VALUE):
        raise Audio2HeadError(f"{what} must be one number or six finite numbers (yaw, pitch, roll, x, y, z) within "
                              f"+-{MAX_POSE_VALUE:g}, got {value!r}")
    return array
