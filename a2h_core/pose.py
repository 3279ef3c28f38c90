"""Head-pose curves: the head motion of a video as a first-class, editable object.

A pose is six numbers, exactly what the original head-pose predictor outputs after de-normalisation:

- ``rx, ry, rz``: the head's rotation as an axis-angle vector (radians) in the camera frame, the rotation vector
  `cv2.projectPoints` receives: a head point X goes to ``R(r) X + t`` in the camera frame (x right, y down,
  z away from the camera);
- ``tx, ty, tz``: the head's translation in the camera frame, in the units of the original's pose box (the box
  is +-75..100 units wide; the training data put the head 185..377 units in front of the camera).

A predicted curve holds one pose more than the video has frames: pose 0 is estimated from the image, and video
frame i uses pose i. Frames past the end of a curve repeat its last pose (`PoseCurve.pose_for_frames`), as the
original does.

**Yaw, pitch and roll** (degrees) are offered for people. They are the intrinsic X-Y-Z Euler angles of the same
rotation, ``R = Rx(pitch) @ Ry(yaw) @ Rz(roll)`` with right-handed rotation matrices, which is also the convention
of OpenFace 2.0's ``pose_Rx, pose_Ry, pose_Rz``. What a viewer sees, for a head facing the camera:

- yaw (about the camera's vertical y axis) > 0: the face turns toward the image's left (the subject's right);
- pitch (about the camera's horizontal x axis) > 0: the face tilts down;
- roll (about the viewing axis z) > 0: the head tilts clockwise in the image.

For the angles a head makes, ``ry`` is close to yaw, ``rx`` to pitch and ``rz`` to roll. Conversions both ways
round-trip to floating-point precision (|yaw| < 90 degrees).

**Files** (`PoseCurve.save` / `load_pose_curve`):

- JSON::

    {"format": "audio2head-pose-curve", "version": 1, "fps": 25.0,
     "columns": ["rx", "ry", "rz", "tx", "ty", "tz"],      # or ["yaw", "pitch", "roll", "x", "y", "z"] (degrees)
     "poses": [[rx, ry, rz, tx, ty, tz], ...]}             # one row per pose, in that column order

  A JSON file holding ``"keyframes"`` instead of ``"poses"`` is a keyframe file (see `PoseCurve.from_keyframes`).
- CSV: an optional first line ``# audio2head pose curve, fps=25``, then a header naming the six columns of either
  set (any order, an optional ``frame`` column that must count 0, 1, 2, ...), one row per pose.
- OpenFace 2.0 CSV (``frame, face_id, timestamp, confidence, success, ..., pose_Tx .. pose_Rz, ...``): detected by
  its header, see `PoseCurve.from_openface_csv`.

**Edits** return new curves and work on yaw/pitch/roll (degrees) and x/y/z, the quantities people think in.
Curves that leave the range the model was trained on (`config.POSE_MIN` .. `config.POSE_MAX`) get an `A2HWarning`.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import FPS, POSE_MAX, POSE_MIN
from .errors import A2HWarning, Audio2HeadError

POSE_COLUMNS = ("rx", "ry", "rz", "tx", "ty", "tz")  # the model's axis-angle columns
YPR_COLUMNS = ("yaw", "pitch", "roll", "x", "y", "z")  # the people's columns: degrees and the same translation
FILE_FORMAT = "audio2head-pose-curve"  # the "format" field of pose-curve JSON files
FILE_VERSION = 1  # the "version" field of pose-curve JSON files
INTERPOLATIONS = ("linear", "smooth", "ease")  # keyframe interpolation modes
FIT_MODES = ("hold", "repeat", "pingpong", "stretch")  # how `fitted` lengthens a curve

# A frontal head in the middle of the training translations: the default pose of keyframes and still heads.
DEFAULT_POSE = np.concatenate([np.zeros(3), np.round((POSE_MIN[3:].astype(np.float64) + POSE_MAX[3:]) / 2, 3)])

# Video frame rates an OpenFace file's millisecond timestamps are snapped to when within 1 %.
_COMMON_FPS = (12.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0)
_OPENFACE_COLUMNS = ("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")


# ----------------------------------------------------------------------------------------------- rotations

def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] from axis-angle vectors [..., 3] (Rodrigues' formula)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    theta = np.sqrt(np.sum(rotvec * rotvec, axis=-1))
    safe = np.where(theta > 0, theta, 1.0)
    axis = rotvec / safe[..., None]
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(axis.shape[:-1] + (3, 3))
    cos, sin = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    return cos * np.eye(3) + (1 - cos) * axis[..., :, None] * axis[..., None, :] + sin * skew


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """Axis-angle vectors [..., 3] from rotation matrices [..., 3, 3] (through a unit quaternion, stable at 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Shepperd's method: start from the largest of w, x, y, z for accuracy.
    candidates = np.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    choice = np.argmax(candidates, -1)
    quat = np.empty(m.shape[:-2] + (4,))  # w, x, y, z
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
    return np.stack(rows, -1).reshape(np.shape(angle) + (3, 3))


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


# ---------------------------------------------------------------------------------------------- validation

def _validated_values(values, what: str = "pose curve") -> np.ndarray:
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


def _validated_count(num_poses, what: str = "num_poses") -> int:
    try:
        whole = float(num_poses).is_integer()
    except (TypeError, ValueError, OverflowError):
        whole = False
    if isinstance(num_poses, bool) or not whole or int(num_poses) < 1:
        raise Audio2HeadError(f"{what} must be a whole number >= 1, got {num_poses!r}")
    return int(num_poses)


def _validated_fps(fps) -> float:
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise Audio2HeadError(f"fps must be a number, got {fps!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise Audio2HeadError(f"fps must be a positive number, got {fps}")
    return fps


def _six(value, what: str) -> np.ndarray:
    """A scalar or six numbers (yaw, pitch, roll, x, y, z) as a float64 [6] array."""
    array = np.array(value, dtype=np.float64).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, 6)
    if array.size != 6 or not np.all(np.isfinite(array)):
        raise Audio2HeadError(f"{what} must be one number or six finite numbers (yaw, pitch, roll, x, y, z), "
                              f"got {value!r}")
    return array


# -------------------------------------------------------------------------------------------- interpolation

def _pchip_slopes(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson monotone slopes at the knots (the same choice as scipy's PchipInterpolator)."""
    h = np.diff(t)
    delta = np.diff(v) / h
    if len(t) == 2:
        return np.array([delta[0], delta[0]])
    slopes = np.zeros_like(v)
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same_sign = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    slopes[1:-1] = np.where(same_sign, harmonic, 0.0)

    def edge(h0, h1, d0, d1):
        slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        if np.sign(slope) != np.sign(d0):
            return 0.0
        if np.sign(d0) != np.sign(d1) and abs(slope) > abs(3 * d0):
            return 3 * d0
        return slope

    slopes[0] = edge(h[0], h[1], delta[0], delta[1])
    slopes[-1] = edge(h[-1], h[-2], delta[-1], delta[-2])
    return slopes


def interpolate_keys(t: np.ndarray, v: np.ndarray, at: np.ndarray, mode: str) -> np.ndarray:
    """Values at times `at` through knots (t ascending, v); the first and last values are held outside.

    linear: straight segments. smooth: monotone cubic (PCHIP: no overshoot between keys). ease: each segment
    eases in and out (smoothstep 3u^2 - 2u^3), so the motion pauses at every key.
    """
    t, v, at = (np.asarray(a, dtype=np.float64) for a in (t, v, at))
    if len(t) == 1:
        return np.full_like(at, v[0])
    clamped = np.clip(at, t[0], t[-1])
    seg = np.clip(np.searchsorted(t, clamped, side="right") - 1, 0, len(t) - 2)
    h = t[seg + 1] - t[seg]
    u = (clamped - t[seg]) / h
    v0, v1 = v[seg], v[seg + 1]
    if mode == "linear":
        return v0 + (v1 - v0) * u
    if mode == "ease":
        return v0 + (v1 - v0) * (u * u * (3 - 2 * u))
    if mode == "smooth":
        d = _pchip_slopes(t, v)
        h00, h10 = 2 * u ** 3 - 3 * u ** 2 + 1, u ** 3 - 2 * u ** 2 + u
        h01, h11 = -2 * u ** 3 + 3 * u ** 2, u ** 3 - u ** 2
        return h00 * v0 + h10 * h * d[seg] + h01 * v1 + h11 * h * d[seg + 1]
    raise Audio2HeadError(f"unknown interpolation {mode!r}; use one of {', '.join(INTERPOLATIONS)}")


# --------------------------------------------------------------------------------------------- the curve

@dataclass
class PoseCurve:
    """Head poses over time: values [N, 6] float64 (rx, ry, rz radians axis-angle; tx, ty, tz camera frame).

    Predicted curves hold num_frames + 1 poses; frame i of the video uses pose i (pose 0 estimated from the image),
    frames past the end repeat the last pose (original behaviour). Edits return new curves.
    """

    values: np.ndarray  # [N, 6] float64: rx, ry, rz (axis-angle, radians), tx, ty, tz (camera frame)
    fps: float = float(FPS)  # poses per second; the model works at 25

    def __post_init__(self):
        self.values = _validated_values(self.values)
        self.fps = _validated_fps(self.fps)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last pose."""
        return (len(self) - 1) / self.fps

    def pose_for_frames(self, num_frames: int) -> np.ndarray:
        """Poses of frames 0 .. num_frames - 1, [num_frames, 6]: pose i for frame i, the last pose past the end."""
        num_frames = _validated_count(num_frames, "num_frames")
        return self.values[np.minimum(np.arange(num_frames), len(self) - 1)].copy()

    # ------------------------------------------------------------------------------ people's units

    def to_ypr(self) -> np.ndarray:
        """[N, 6]: yaw, pitch, roll in degrees (see the module doc for the convention), then x, y, z."""
        return poses_to_ypr(self.values)

    @classmethod
    def from_ypr(cls, ypr, fps: float = FPS) -> "PoseCurve":
        """A curve from [N, 6] yaw, pitch, roll (degrees), x, y, z."""
        return cls(ypr_to_poses(_validated_values(ypr, "yaw/pitch/roll curve")), fps)

    # ------------------------------------------------------------------------------ training range

    def out_of_range(self) -> list[str]:
        """One line per column whose values leave the model's training range (empty when inside)."""
        lines = []
        for column, name in enumerate(POSE_COLUMNS):
            low, high = float(POSE_MIN[column]), float(POSE_MAX[column])
            values = self.values[:, column]
            outside = (values < low) | (values > high)
            if outside.any():
                worst = values[np.argmax(np.maximum(low - values, values - high))]
                unit = f" ({math.degrees(worst):.1f} deg)" if column < 3 else ""
                lines.append(f"{name} reaches {worst:.3f}{unit} on {int(outside.sum())} of {len(values)} poses "
                             f"(trained on {low:g} .. {high:g})")
        return lines

    def warn_if_out_of_range(self, what: str = "pose curve") -> bool:
        """Warn (A2HWarning) when the curve leaves the training range; returns whether it does."""
        lines = self.out_of_range()
        if lines:
            warnings.warn(f"{what} leaves the range the model was trained on: {'; '.join(lines)}. The head may "
                          "distort; reduce the motion (scale < 1) or move it back (offset).", A2HWarning,
                          stacklevel=3)
        return bool(lines)

    # ------------------------------------------------------------------------------ constructors

    @classmethod
    def still(cls, pose=None, num_poses: int = 1, fps: float = FPS) -> "PoseCurve":
        """A still head: `pose` (six axis-angle numbers; default DEFAULT_POSE) held for num_poses."""
        pose = DEFAULT_POSE if pose is None else _validated_values(pose, "still pose")[0]
        return cls(np.repeat(np.asarray(pose, dtype=np.float64)[None], _validated_count(num_poses), 0), fps)

    @classmethod
    def from_keyframes(cls, keyframes, num_poses: int | None = None, fps: float = FPS,
                       interpolation: str = "smooth", base=None, relative: bool = False,
                       check_range: bool = True) -> "PoseCurve":
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
        fps = _validated_fps(fps)
        if interpolation not in INTERPOLATIONS:
            raise Audio2HeadError(f"unknown interpolation {interpolation!r}; use one of {', '.join(INTERPOLATIONS)}")
        if not isinstance(keyframes, (list, tuple)) or not keyframes:
            raise Audio2HeadError("keyframes must be a non-empty list of {frame or time, yaw, pitch, roll, x, y, z}")
        if isinstance(base, PoseCurve):
            base = base.values[0]
        elif isinstance(base, dict):
            base = ypr_to_poses([float(base.get(name, DEFAULT_YPR[i])) for i, name in enumerate(YPR_COLUMNS)])
        base_ypr = poses_to_ypr(DEFAULT_POSE if base is None else _validated_values(base, "keyframe base")[0])

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
        num_poses = int(math.floor(times[-1])) + 1 if num_poses is None else _validated_count(num_poses)

        at = np.arange(num_poses, dtype=np.float64)
        ypr = np.repeat(base_ypr[None], num_poses, 0)
        for column in range(6):
            known = ~np.isnan(rows[:, column])
            if known.any():
                curve = interpolate_keys(times[known], rows[known, column], at, interpolation)
                ypr[:, column] = base_ypr[column] + curve if relative else curve
        result = cls.from_ypr(ypr, fps)
        if check_range:
            result.warn_if_out_of_range("keyframe curve")
        return result

    @classmethod
    def from_openface_csv(cls, path, face_id: int | None = None, euler_as_axis_angle: bool = False,
                          check_range: bool = True) -> "PoseCurve":
        """Head poses from an OpenFace 2.0 FeatureExtraction CSV (``pose_Tx .. pose_Rz``), the tool the paper used
        for its ground truth.

        OpenFace's ``pose_Rx, pose_Ry, pose_Rz`` are Euler angles (R = Rx @ Ry @ Rz: pitch, yaw, roll, the
        convention of this module); they are converted to axis-angle. The authors' own conversion is not public:
        ``euler_as_axis_angle=True`` takes the three angles as the axis-angle vector unchanged instead (the two
        agree to second order for small angles). Translations (millimetres) are taken as they are. The fps comes
        from the timestamps; frames where tracking failed (success 0) are interpolated from their neighbours.
        face_id: which face to use when the file tracks several (default: the one with the most frames).
        check_range: warn when the curve leaves the training range.
        """
        text = _read_text(path)
        reader = csv.reader(io.StringIO(text), skipinitialspace=True)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise Audio2HeadError(f"{path}: the OpenFace CSV is empty") from None
        missing = [name for name in _OPENFACE_COLUMNS if name not in header]
        if missing:
            raise Audio2HeadError(f"{path}: not an OpenFace 2.0 head-pose CSV, columns {missing} are missing "
                                  "(run FeatureExtraction with -pose)")
        rows = [row for row in reader if row and any(cell.strip() for cell in row)]
        if not rows:
            raise Audio2HeadError(f"{path}: the OpenFace CSV has a header but no frames")
        try:
            table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
        except ValueError as exc:
            raise Audio2HeadError(f"{path}: a value is not a number ({exc})") from None
        if table.shape[1] != len(header):
            raise Audio2HeadError(f"{path}: rows have {table.shape[1]} values but the header has {len(header)}")
        col = {name: i for i, name in enumerate(header)}
        if "face_id" in col:
            ids, counts = np.unique(table[:, col["face_id"]], return_counts=True)
            chosen = ids[np.argmax(counts)] if face_id is None else float(face_id)
            if chosen not in ids:
                raise Audio2HeadError(f"{path}: no face_id {face_id}; the file has {ids.astype(int).tolist()}")
            table = table[table[:, col["face_id"]] == chosen]
        if "frame" in col:
            table = table[np.argsort(table[:, col["frame"]], kind="stable")]
        fps = float(FPS)
        if "timestamp" in col and len(table) > 1:
            # Frames over seconds across the whole file: OpenFace rounds timestamps to milliseconds.
            seconds = table[-1, col["timestamp"]] - table[0, col["timestamp"]]
            frames = table[-1, col["frame"]] - table[0, col["frame"]] if "frame" in col else len(table) - 1
            if seconds > 0 and frames > 0:
                fps = float(frames / seconds)
                nearest = min(_COMMON_FPS, key=lambda rate: abs(rate - fps))
                fps = nearest if abs(nearest - fps) < 0.01 * nearest else round(fps, 3)
        euler = table[:, [col["pose_Rx"], col["pose_Ry"], col["pose_Rz"]]]
        translation = table[:, [col["pose_Tx"], col["pose_Ty"], col["pose_Tz"]]]
        if euler_as_axis_angle:
            rotation = euler
        else:  # OpenFace (Rx, Ry, Rz) = (pitch, yaw, roll)
            rotation = matrix_to_rotvec(ypr_to_matrix(np.degrees(euler[:, [1, 0, 2]])))
        values = np.concatenate([rotation, translation], 1)
        if "success" in col:
            ok = table[:, col["success"]] > 0
            if not ok.any():
                raise Audio2HeadError(f"{path}: OpenFace found no face in any frame (success is 0 everywhere)")
            if not ok.all():
                warnings.warn(f"{path}: OpenFace lost the face on {int((~ok).sum())} of {len(ok)} frames; their "
                              "poses are interpolated from the neighbouring frames", A2HWarning, stacklevel=2)
                index = np.arange(len(values))
                values = np.stack([np.interp(index, index[ok], values[ok, c]) for c in range(6)], 1)
        result = cls(values, fps)
        if check_range:
            result.warn_if_out_of_range(str(path))
        return result

    # ------------------------------------------------------------------------------ files

    def to_dict(self, columns: str = "axis_angle") -> dict:
        """The JSON document of the curve; columns "axis_angle" (rx..tz) or "ypr" (yaw..z, degrees)."""
        names, data = self._columns(columns)
        return {"format": FILE_FORMAT, "version": FILE_VERSION, "fps": self.fps, "columns": list(names),
                "poses": data.tolist()}

    @classmethod
    def from_dict(cls, document) -> "PoseCurve":
        """A curve from a JSON document: a pose-curve document, a keyframe document, or a bare [[6 numbers], ...]."""
        if isinstance(document, list):
            return cls(_validated_values(document))
        if not isinstance(document, dict):
            raise Audio2HeadError("a pose-curve JSON must be an object with 'poses' (or 'keyframes') or a list of "
                                  "poses")
        if "keyframes" in document and "poses" not in document:
            return cls.from_keyframes(document, check_range=False)
        if "poses" not in document:
            raise Audio2HeadError("a pose-curve JSON needs a 'poses' list (or 'keyframes'); see the schema in "
                                  "a2h_core/pose.py")
        fmt, version = document.get("format", FILE_FORMAT), document.get("version", FILE_VERSION)
        if fmt != FILE_FORMAT or not isinstance(version, int) or version > FILE_VERSION:
            raise Audio2HeadError(f"unsupported pose-curve file (format {fmt!r}, version {version!r}); this version "
                                  f"reads {FILE_FORMAT!r} up to version {FILE_VERSION}")
        names = tuple(document.get("columns", POSE_COLUMNS))
        data = _validated_values(document["poses"])
        return cls._from_columns(names, data, document.get("fps", FPS))

    def save(self, path, columns: str = "axis_angle") -> Path:
        """Write .json or .csv (by extension); columns "axis_angle" (default, exact) or "ypr" (degrees)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            path.write_text(json.dumps(self.to_dict(columns), indent=1) + "\n", encoding="utf-8")
        elif suffix == ".csv":
            names, data = self._columns(columns)
            lines = [f"# audio2head pose curve, fps={self.fps:g}", ",".join(("frame",) + names)]
            lines += [",".join([str(i)] + [repr(float(v)) for v in row]) for i, row in enumerate(data)]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            raise Audio2HeadError(f"{path}: pose curves are saved as .json or .csv")
        return path

    def _columns(self, columns: str) -> tuple[tuple[str, ...], np.ndarray]:
        if columns == "axis_angle":
            return POSE_COLUMNS, self.values
        if columns == "ypr":
            return YPR_COLUMNS, self.to_ypr()
        raise Audio2HeadError(f"columns must be 'axis_angle' or 'ypr', got {columns!r}")

    @classmethod
    def _from_columns(cls, names, data: np.ndarray, fps) -> "PoseCurve":
        names = tuple(str(name).strip() for name in names)
        for wanted in (POSE_COLUMNS, YPR_COLUMNS):
            if sorted(names) == sorted(wanted):
                ordered = data[:, [names.index(name) for name in wanted]]
                return cls(ordered, fps) if wanted is POSE_COLUMNS else cls.from_ypr(ordered, fps)
        raise Audio2HeadError(f"pose columns must be {', '.join(POSE_COLUMNS)} or {', '.join(YPR_COLUMNS)}; got "
                              f"{', '.join(names)}")

    @classmethod
    def _from_csv(cls, path, text: str) -> "PoseCurve":
        lines = text.splitlines()
        fps = float(FPS)
        comments = [line for line in lines if line.lstrip().startswith("#")]
        for line in comments:
            if "fps=" in line:
                try:
                    fps = float(line.split("fps=", 1)[1].split(",")[0].split()[0])
                except (ValueError, IndexError):
                    raise Audio2HeadError(f"{path}: cannot read the fps in {line.strip()!r}") from None
        body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not body:
            raise Audio2HeadError(f"{path}: the CSV holds no header and no poses")
        reader = csv.reader(body, skipinitialspace=True)
        header = [name.strip() for name in next(reader)]
        try:
            table = np.array([[float(cell) for cell in row] for row in reader], dtype=np.float64)
        except ValueError as exc:
            raise Audio2HeadError(f"{path}: a value is not a number ({exc})") from None
        if table.size == 0:
            raise Audio2HeadError(f"{path}: the CSV has a header but no poses")
        if table.shape[1] != len(header):
            raise Audio2HeadError(f"{path}: rows have {table.shape[1]} values but the header has {len(header)}")
        if "frame" in header:
            frames = table[:, header.index("frame")]
            if not np.array_equal(frames, np.arange(len(frames))):
                raise Audio2HeadError(f"{path}: the frame column must count 0, 1, 2, ... without gaps; for sparse "
                                      "poses write a keyframe JSON instead")
            keep = [i for i, name in enumerate(header) if name != "frame"]
            header, table = [header[i] for i in keep], table[:, keep]
        return cls._from_columns(header, _validated_values(table, f"{path}"), fps)

    # ------------------------------------------------------------------------------ edits

    def _edited(self, ypr: np.ndarray, fps: float | None = None, what: str | None = None) -> "PoseCurve":
        """A new curve from yaw/pitch/roll/x/y/z; `what` names an edit that can leave the training range (warned).
        Interpolations and smoothing stay within the input's range and pass no name."""
        result = PoseCurve.from_ypr(ypr, self.fps if fps is None else fps)
        if what is not None:
            result.warn_if_out_of_range(what)
        return result

    def scaled(self, factor, about=None) -> "PoseCurve":
        """Amplitude scaled about a pose (default: the first, so the start matches the image).

        factor: one number, or six (yaw, pitch, roll, x, y, z). 0 gives a still head, 1 the same curve.
        about: six axis-angle numbers, or None for the first pose.
        """
        factor = _six(factor, "scale factor")
        ypr = self.to_ypr()
        centre = ypr[0] if about is None else poses_to_ypr(_validated_values(about, "scale centre")[0])
        return self._edited(centre + (ypr - centre) * factor, what="scaled pose curve")

    def offset(self, delta) -> "PoseCurve":
        """Shifted by six numbers (yaw, pitch, roll in degrees; x, y, z)."""
        return self._edited(self.to_ypr() + _six(delta, "offset"), what="offset pose curve")

    def smoothed(self, sigma: float) -> "PoseCurve":
        """Temporal smoothing with a Gaussian of `sigma` poses (edges padded with the end poses)."""
        sigma = float(sigma)
        if not math.isfinite(sigma) or sigma < 0:
            raise Audio2HeadError(f"smoothing sigma must be >= 0 poses, got {sigma}")
        if sigma == 0 or len(self) == 1:
            return PoseCurve(self.values.copy(), self.fps)
        radius = max(1, int(math.ceil(3 * sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps /= taps.sum()
        ypr = self.to_ypr()
        padded = np.concatenate([np.repeat(ypr[:1], radius, 0), ypr, np.repeat(ypr[-1:], radius, 0)])
        smooth = np.stack([np.convolve(padded[:, c], taps, mode="valid") for c in range(6)], 1)
        return self._edited(smooth)

    def retimed(self, num_poses: int) -> "PoseCurve":
        """The same motion stretched or squeezed in time to num_poses (first and last poses kept)."""
        num_poses = _validated_count(num_poses)
        if len(self) == 1:
            return self.held(num_poses)
        at = np.linspace(0, len(self) - 1, num_poses)
        return self._edited(self._sample(at))

    def resampled(self, fps: float) -> "PoseCurve":
        """The same motion at another pose rate (linear interpolation); the duration is kept."""
        fps = _validated_fps(fps)
        if fps == self.fps:
            return PoseCurve(self.values.copy(), fps)
        count = int(math.floor(self.duration * fps + 1e-9)) + 1
        return self._edited(self._sample(np.arange(count) * (self.fps / fps)), fps=fps)

    def trimmed(self, num_poses: int) -> "PoseCurve":
        """The first num_poses poses (at most the whole curve)."""
        return PoseCurve(self.values[:_validated_count(num_poses)].copy(), self.fps)

    def looped(self, num_poses: int, pingpong: bool = False) -> "PoseCurve":
        """Repeated until num_poses: from the start again, or back and forth (pingpong, no jump)."""
        num_poses = _validated_count(num_poses)
        n = len(self)
        index = np.arange(num_poses)
        if pingpong and n > 1:
            period = 2 * (n - 1)
            index = index % period
            index = np.where(index < n, index, period - index)
        else:
            index = index % n
        return PoseCurve(self.values[index], self.fps)

    def fitted(self, num_poses: int, mode: str = "hold") -> "PoseCurve":
        """Exactly num_poses: trimmed when longer; when shorter, lengthened by `mode`: "hold" (the last pose, as the
        original), "repeat", "pingpong" (loop back and forth), or "stretch" (retimed, also when longer)."""
        num_poses = _validated_count(num_poses)
        if mode not in FIT_MODES:
            raise Audio2HeadError(f"unknown fit mode {mode!r}; use one of {', '.join(FIT_MODES)}")
        if mode == "stretch":
            return self.retimed(num_poses)
        if num_poses <= len(self):
            return self.trimmed(num_poses)
        if mode == "hold":
            return PoseCurve(self.pose_for_frames(num_poses), self.fps)
        return self.looped(num_poses, pingpong=mode == "pingpong")

    def blended(self, other: "PoseCurve", weight: float) -> "PoseCurve":
        """(1 - weight) * self + weight * other, pose by pose in yaw/pitch/roll and x/y/z.

        The shorter curve holds its last pose; `other` is resampled to this curve's fps first.
        """
        weight = float(weight)
        if not math.isfinite(weight):
            raise Audio2HeadError(f"blend weight must be a finite number, got {weight}")
        if not isinstance(other, PoseCurve):
            raise Audio2HeadError("blend needs another PoseCurve")
        other = other.resampled(self.fps)
        count = max(len(self), len(other))
        a, b = poses_to_ypr(self.pose_for_frames(count)), poses_to_ypr(other.pose_for_frames(count))
        return self._edited((1 - weight) * a + weight * b, what="blended pose curve")

    def held(self, num_poses: int | None = None) -> "PoseCurve":
        """Still head: the first pose (the image's own) held for num_poses (default: this curve's length)."""
        count = len(self) if num_poses is None else _validated_count(num_poses)
        return PoseCurve(np.repeat(self.values[:1], count, 0), self.fps)

    def _sample(self, at: np.ndarray) -> np.ndarray:
        """Yaw/pitch/roll/x/y/z at fractional pose indices (linear)."""
        ypr = self.to_ypr()
        index = np.arange(len(self), dtype=np.float64)
        return np.stack([np.interp(at, index, ypr[:, c]) for c in range(6)], 1)


DEFAULT_YPR = poses_to_ypr(DEFAULT_POSE)  # DEFAULT_POSE in yaw, pitch, roll, x, y, z


def _read_text(path) -> str:
    path = Path(path)
    if not path.is_file():
        raise Audio2HeadError(f"pose-curve file {str(path)!r} does not exist")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise Audio2HeadError(f"cannot read pose-curve file {str(path)!r}: {exc}") from None


def load_pose_curve(path, fps: float | None = FPS) -> PoseCurve:
    """Read a pose curve: our JSON or CSV, a keyframe JSON, or an OpenFace 2.0 CSV (detected by content).

    fps: resample to this pose rate (default 25, the model's); None keeps the file's rate.
    """
    text = _read_text(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Audio2HeadError(f"{path}: not valid JSON ({exc})") from None
        curve = PoseCurve.from_dict(document)
    elif suffix == ".csv":
        first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
        if "pose_Rx" in first:
            curve = PoseCurve.from_openface_csv(path, check_range=False)
        else:
            curve = PoseCurve._from_csv(path, text)
    else:
        raise Audio2HeadError(f"{path}: pose curves are read from .json or .csv files")
    if fps is not None and curve.fps != fps:
        curve = curve.resampled(fps)
    curve.warn_if_out_of_range(str(path))
    return curve


# --------------------------------------------------------------------------------------------- command line

def add_pose_command(subparsers) -> argparse.ArgumentParser:
    """Register `python -m a2h_core pose`: make and edit head-pose curves (and plot them)."""
    parser = subparsers.add_parser(
        "pose", help="make, edit and plot head-pose curves",
        description="Build a head-pose curve (from a file, keyframes, or a still head), edit it and save it as "
                    "JSON or CSV for `generate --pose-curve`. Edits apply in this order: --fps, --frames, --scale, "
                    "--offset, --smooth, --blend, --still.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, help="pose curve to start from (JSON, CSV or OpenFace 2.0 CSV)")
    source.add_argument("--from-keyframes", type=Path, metavar="FILE",
                        help='keyframe JSON: {"fps": 25, "interpolation": "smooth", "keyframes": '
                             '[{"frame": 0, "yaw": 0}, {"time": 1.5, "yaw": 15, "pitch": -5}, ...]}')
    parser.add_argument("--frames", type=int, help="make the curve exactly this many poses long")
    parser.add_argument("--fit", choices=FIT_MODES, default="hold",
                        help="how --frames lengthens a curve: hold the last pose (default), repeat, pingpong, stretch")
    parser.add_argument("--fps", type=float, help="resample to this pose rate (default: keep; the model uses 25)")
    parser.add_argument("--scale", help="motion amplitude about the first pose: one factor or six (yaw,pitch,roll,"
                                        "x,y,z)")
    parser.add_argument("--offset", help="add six numbers: yaw,pitch,roll (degrees),x,y,z")
    parser.add_argument("--smooth", type=float, default=0.0, help="Gaussian smoothing, sigma in poses")
    parser.add_argument("--blend", type=Path, help="another pose-curve file to mix in")
    parser.add_argument("--blend-weight", type=float, default=0.5, help="weight of --blend (default 0.5)")
    parser.add_argument("--still", action="store_true", help="hold the first pose: a still head")
    parser.add_argument("--columns", choices=("axis_angle", "ypr"), default="axis_angle",
                        help="columns of the saved file: axis_angle (rx..tz, exact, default) or ypr (degrees)")
    parser.add_argument("--out", type=Path, help="write the curve here (.json or .csv)")
    parser.add_argument("--plot", type=Path, help="write a plot of the curve here (.png)")
    parser.set_defaults(func=run_pose_command)
    return parser


def _numbers(text: str, what: str):
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        raise Audio2HeadError(f"{what} must be one number or six separated by commas, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def edit_curve(curve: PoseCurve, args: argparse.Namespace) -> PoseCurve:
    """Apply the `pose` command's edit options to a curve (also usable on a predicted curve)."""
    if getattr(args, "fps", None):
        curve = curve.resampled(args.fps)
    if getattr(args, "frames", None):
        curve = curve.fitted(args.frames, args.fit)
    if getattr(args, "scale", None) is not None:
        curve = curve.scaled(_numbers(args.scale, "--scale"))
    if getattr(args, "offset", None) is not None:
        curve = curve.offset(_numbers(args.offset, "--offset"))
    if getattr(args, "smooth", 0):
        curve = curve.smoothed(args.smooth)
    if getattr(args, "blend", None) is not None:
        curve = curve.blended(load_pose_curve(args.blend, fps=None), args.blend_weight)
    if getattr(args, "still", False):
        curve = curve.held()
    return curve


def run_pose_command(args: argparse.Namespace, curve: PoseCurve | None = None) -> int:
    """Handler of `pose`; `curve` lets a caller (e.g. a prediction step) supply the starting curve."""
    if curve is None:
        if getattr(args, "input", None):
            curve = load_pose_curve(args.input, fps=None)
        elif getattr(args, "from_keyframes", None):
            curve = load_pose_curve(args.from_keyframes, fps=None)
        elif getattr(args, "still", False):
            curve = PoseCurve.still(num_poses=args.frames or 1)
        else:
            raise Audio2HeadError("pose: give a starting curve: --input FILE, --from-keyframes FILE or --still")
    curve = edit_curve(curve, args)
    if not args.out and not args.plot:
        raise Audio2HeadError("pose: nothing to write; add --out FILE.json|.csv and/or --plot FILE.png")
    if args.out:
        curve.save(args.out, columns=args.columns)
        print(f"Wrote {args.out} ({len(curve)} poses at {curve.fps:g} fps)", file=sys.stderr)
    if args.plot:
        from .pose_render import plot_pose_curve, write_png

        write_png(args.plot, plot_pose_curve(curve))
        print(f"Wrote {args.plot}", file=sys.stderr)
    return 0
