"""Pose curves through keyframes: the keyframe JSON documents of `pose --from-keyframes` and the Pose Keyframes node.

A keyframe document::

    {"fps": 25, "interpolation": "smooth", "num_frames": 100, "relative": false,
     "keyframes": [{"frame": 0, "yaw": 0}, {"time": 1.5, "yaw": 15, "pitch": -5}, ...]}

Each key has ``frame`` (pose index) or ``time`` (seconds) and any of yaw, pitch, roll (degrees), x, y, z.
"""
from __future__ import annotations

import math

import numpy as np

from a2h_core.config import FPS, MAX_POSES
from a2h_core.errors import Audio2HeadError
from a2h_core.pose.curve import DEFAULT_POSE, DEFAULT_YPR, YPR_COLUMNS, PoseCurve
from a2h_core.pose.interpolation import INTERPOLATIONS, interpolate_keys
from a2h_core.pose.rotations import poses_to_ypr, ypr_to_poses
from a2h_core.pose.values import describe, validated_count, validated_fps, validated_poses


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
        short_name = isinstance(interpolation, str) and interpolation.isidentifier() and len(interpolation) <= 20
        shown = repr(interpolation) if short_name else describe(interpolation)
        raise Audio2HeadError(f"unknown interpolation {shown}; use one of {', '.join(INTERPOLATIONS)}")
    if not isinstance(keyframes, (list, tuple)) or not keyframes:
        raise Audio2HeadError("keyframes must be a non-empty list of {frame or time, yaw, pitch, roll, x, y, z}")
    if isinstance(base, PoseCurve):
        base = base.values[0]
    elif isinstance(base, dict):
        values = [base.get(name, DEFAULT_YPR[i]) for i, name in enumerate(YPR_COLUMNS)]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise Audio2HeadError(f"the keyframe base must give numbers for {', '.join(YPR_COLUMNS)}")
        base = ypr_to_poses(validated_poses([float(v) for v in values], "keyframe base"))
    base_ypr = poses_to_ypr(DEFAULT_POSE if base is None else validated_poses(base, "keyframe base")[0])

    times, rows = [], []
    for number, key in enumerate(keyframes):
        if not isinstance(key, dict):
            raise Audio2HeadError(f"keyframe {number} must be an object with frame/time and pose values")
        unknown = set(key) - set(YPR_COLUMNS) - {"frame", "time"}
        if unknown:  # the names are not quoted: a keyframe file's text never goes into a message
            raise Audio2HeadError(f"keyframe {number} has unknown fields ({len(unknown)}); allowed: frame or "
                                  f"time, {', '.join(YPR_COLUMNS)}")
        if ("frame" in key) == ("time" in key):
            raise Audio2HeadError(f"keyframe {number} needs exactly one of 'frame' (pose index) or 'time' "
                                  "(seconds)")
        raw = key.get("frame", key.get("time"))
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise Audio2HeadError(f"keyframe {number}: frame/time must be a number, got {describe(raw)}")
        try:
            at = float(raw) if "frame" in key else float(raw) * fps
        except OverflowError:
            at = math.inf
        if not math.isfinite(at) or at < 0 or at > MAX_POSES - 1:
            raise Audio2HeadError(
                f"keyframe {number} is at frame {at:g}; keyframes must be at frame >= 0 and at most "
                f"{MAX_POSES - 1:,} (24 h at {FPS} fps)")
        row = []
        for name in YPR_COLUMNS:
            value = key.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise Audio2HeadError(f"keyframe {number}: {name} must be a finite number, got {describe(value)}")
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

