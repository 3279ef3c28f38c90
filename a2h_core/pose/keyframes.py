"""Pose curves through keyframes: the keyframe JSON documents of `pose --from-keyframes` and the Pose Keyframes node.

A keyframe document::

    {"fps": 25, "interpolation": "smooth", "num_frames": 100, "relative": false,
     "keyframes": [{"frame": 0, "yaw": 0}, {"time": 1.5, "yaw": 15, "pitch": -5}, ...]}

Each key has ``frame`` (pose index) or ``time`` (seconds) and any of yaw, pitch, roll (degrees), x, y, z.
"""
from __future__ import annotations

import math

import numpy as np

from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.pose.curve import DEFAULT_POSE, DEFAULT_YPR, YPR_COLUMNS, PoseCurve
from a2h_core.pose.interpolation import INTERPOLATIONS, interpolate_keys
from a2h_core.pose.rotations import poses_to_ypr, ypr_to_poses
from a2h_core.pose.values import validated_count, validated_fps, validated_poses


def curve_from_keyframes(keyframes, num_poses: int | None = None, fps: float = FPS, interpolation: str = "smooth",
                         base=None, relative: bool = False, check_range: bool = True) -> PoseCurve:
    """A curve through keyframes.

    keyframes: a list of dicts, each with ``frame`` (pose index, may be fractional) or ``time`` (seconds) and
    any of ``yaw, pitch, roll`` (degrees) and ``x, y, z``; or a dict ``{"keyframes": [...], "fps", "num_frames",
    "interpolation", "relative", "base"}`` whose fields give the defaults of the arguments below.
    num_poses: length of the curve (default: up to the last keyframe).
    interpolation: "linear", "smooth" (monotone cubic, no overshoot) or "ease" (pause at every key).
    base: the pose used for channels no keyframe sets: six axis-angle numbers, a PoseCurve (its first pose) or
    None (DEFAULT_POSE, a frontal head). relative: keyframe values are offsets from `base`.
    check_range: warn when the curve leaves the training range.
    Each channel is interpolated through the keyframes that set it; values are held before the first and
    after the last of them.
    """
    if isinstance(keyframes, dict):
        spec = keyframes
        if "keyframes" not in spec:
            raise Audio2HeadError('a keyframe document needs a "keyframes" list')
        keyframes = spec["keyframes"]
        fps = spec.get("fps", fps)
        num_poses = spec.get("num_frames", spec.get("num_poses", num_poses))
        interpolation = spec.get("interpolation", interpolation)
        relative = bool(spec.get("relative", relative))
        base = spec.get("base", base)
    fps = validated_fps(fps)
    if interpolation not in INTERPOLATIONS:
        raise Audio2HeadError(f"unknown interpolation {interpolation!r}; use one of {', '.join(INTERPOLATIONS)}")
    if not isinstance(keyframes, (list, tuple)) or not keyframes:
        raise Audio2HeadError("keyframes must be a non-empty list of {frame or time, yaw, pitch, roll, x, y, z}")
    if isinstance(base, PoseCurve):
        base = base.values[0]
    elif isinstance(base, dict):
        base = ypr_to_poses([float(base.get(name, DEFAULT_YPR[i])) for i, name in enumerate(YPR_COLUMNS)])
    base_ypr = poses_to_ypr(DEFAULT_POSE if base is None else validated_poses(base, "keyframe base")[0])

    times, rows = [], []
    for number, key in enumerate(keyframes):
        if not isinstance(key, dict):
            raise Audio2HeadError(f"keyframe {number} must be an object with frame/time and pose values")
        unknown = set(key) - set(YPR_COLUMNS) - {"frame", "time"}
        if unknown:
            raise Audio2HeadError(f"keyframe {number} has unknown fields {sorted(unknown)}; allowed: frame or "
                                  f"time, {', '.join(YPR_COLUMNS)}")
        if ("frame" in key) == ("time" in key):
            raise Audio2HeadError(f"keyframe {number} needs exactly one of 'frame' (pose index) or 'time' "
                                  "(seconds)")
        try:
            at = float(key["frame"]) if "frame" in key else float(key["time"]) * fps
        except (TypeError, ValueError):
            raise Audio2HeadError(f"keyframe {number}: frame/time must be a number, got "
                                  f"{key.get('frame', key.get('time'))!r}") from None
        if not math.isfinite(at) or at < 0:
            raise Audio2HeadError(f"keyframe {number} is at {at} frames; keyframes must be at frame >= 0")
        row = []
        for name in YPR_COLUMNS:
            value = key.get(name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise Audio2HeadError(f"keyframe {number}: {name} must be a finite number, got {value!r}")
            row.append(np.nan if value is None else float(value))
        times.append(at)
        rows.append(row)
    times, rows = np.array(times), np.array(rows)
    order = np.argsort(times, kind="stable")
    times, rows = times[order], rows[order]
    if np.any(np.diff(times) == 0):
        dup = times[np.nonzero(np.diff(times) == 0)[0][0]]
        raise Audio2HeadError(f"two keyframes sit at frame {dup:g}; merge them into one")
    num_poses = int(math.floor(times[-1])) + 1 if num_poses is None else validated_count(num_poses)

    at = np.arange(num_poses, dtype=np.float64)
    ypr = np.repeat(base_ypr[None], num_poses, 0)
    for column in range(6):
        known = ~np.isnan(rows[:, column])
        if known.any():
            curve = interpolate_keys(times[known], rows[known, column], at, interpolation)
            ypr[:, column] = base_ypr[column] + curve if relative else curve
    result = PoseCurve.from_ypr(ypr, fps)
    if check_range:
        result.warn_if_out_of_range("keyframe curve")
    return result

