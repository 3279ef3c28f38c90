"""Head-pose curves: the head motion of a video as a first-class, editable object.

A pose is six numbers, exactly what the original head-pose predictor outputs after de-normalisation:

- ``rx, ry, rz``: the head's rotation as an axis-angle vector (radians) in the camera frame, the rotation vector
  `cv2.projectPoints` receives: a head point X goes to ``R(r) X + t`` in the camera frame (x right, y down,
  z away from the camera);
- ``tx, ty, tz``: the head's translation in the camera frame, in the units of the original's pose box (the box
  is +-75..100 units wide; the training data put the head 185..377 units in front of the camera).

A predicted curve holds one pose more than the video has frames: pose 0 is estimated from the image, and video
frame i uses pose i. Frames past the end of a curve repeat its last pose (`PoseCurve.pose_for_frames`), as the
original does. `PoseCurve.for_video` is the one policy every path (pipeline, nodes) applies to a curve that drives
a video.

Yaw, pitch and roll (degrees, see `rotations`) are offered for people. **Edits** return new curves and work on
yaw/pitch/roll and x/y/z, the quantities people think in. Curves that leave the range the model was trained on
(`config.POSE_MIN` .. `config.POSE_MAX`) get an `A2HWarning`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from a2h_core.config import FPS, MAX_POSES, POSE_MAX, POSE_MIN
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.pose.rotations import poses_to_ypr, ypr_to_poses
from a2h_core.pose.values import (
    LIMIT_NOTE,
    six_numbers,
    validated_count,
    validated_fps,
    validated_poses,
    validated_sigma,
)

POSE_COLUMNS = ("rx", "ry", "rz", "tx", "ty", "tz")  # the model's axis-angle columns
YPR_COLUMNS = ("yaw", "pitch", "roll", "x", "y", "z")  # the people's columns: degrees and the same translation
FIT_MODES = ("hold", "repeat", "pingpong", "stretch")  # how `fitted` lengthens a curve

# A frontal head in the middle of the training translations: the default pose of keyframes and still heads.
DEFAULT_POSE = np.concatenate([np.zeros(3), np.round((POSE_MIN[3:].astype(np.float64) + POSE_MAX[3:]) / 2, 3)])
DEFAULT_YPR = poses_to_ypr(DEFAULT_POSE)  # DEFAULT_POSE in yaw, pitch, roll, x, y, z


@dataclass
class PoseCurve:
    """Head poses over time: values [N, 6] float64 (rx, ry, rz radians axis-angle; tx, ty, tz camera frame).

    Predicted curves hold num_frames + 1 poses; frame i of the video uses pose i (pose 0 estimated from the image),
    frames past the end repeat the last pose (original behaviour). Edits return new curves.
    """

    values: np.ndarray  # [N, 6] float64: rx, ry, rz (axis-angle, radians), tx, ty, tz (camera frame)
    fps: float = float(FPS)  # poses per second; the model works at 25

    def __post_init__(self):
        self.values = validated_poses(self.values)
        self.fps = validated_fps(self.fps)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last pose."""
        return (len(self) - 1) / self.fps

    def pose_for_frames(self, num_frames: int) -> np.ndarray:
        """Poses of frames 0 .. num_frames - 1, [num_frames, 6]: pose i for frame i, the last pose past the end."""
        num_frames = validated_count(num_frames, "num_frames")
        return self.values[np.minimum(np.arange(num_frames), len(self) - 1)].copy()

    # ------------------------------------------------------------------------------ people's units

    def to_ypr(self) -> np.ndarray:
        """[N, 6]: yaw, pitch, roll in degrees (see the module doc for the convention), then x, y, z."""
        return poses_to_ypr(self.values)

    @classmethod
    def from_ypr(cls, ypr, fps: float = FPS) -> PoseCurve:
        """A curve from [N, 6] yaw, pitch, roll (degrees), x, y, z."""
        return cls(ypr_to_poses(validated_poses(ypr, "yaw/pitch/roll curve")), fps)

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


    def for_video(self, num_frames: int, what: str = "pose curve") -> PoseCurve:
        """The curve that drives a video of num_frames frames at the model's 25 fps: resampled to 25 fps when it
        has another rate, with a warning when it leaves the training range or is shorter than the video needs
        (num_frames + 1 poses: the frames and the end pose; the last pose is then held, as the original does)."""
        num_frames = validated_count(num_frames, "num_frames")
        curve = self if self.fps == FPS else self.resampled(FPS)
        curve.warn_if_out_of_range(what)
        if len(curve) < num_frames + 1:
            warnings.warn(
                f"the {what} has {len(curve)} poses but the video needs {num_frames + 1} ({num_frames} frames + the "
                "end pose): its last pose is held for the rest of the video", A2HWarning, stacklevel=2)
        return curve

    # ------------------------------------------------------------------------------ constructors


    @classmethod
    def still(cls, pose=None, num_poses: int = 1, fps: float = FPS) -> PoseCurve:
        """A still head: `pose` (six axis-angle numbers; default DEFAULT_POSE) held for num_poses."""
        pose = DEFAULT_POSE if pose is None else validated_poses(pose, "still pose")[0]
        return cls(np.repeat(np.asarray(pose, dtype=np.float64)[None], validated_count(num_poses), 0), fps)


    # ------------------------------------------------------------------------------ edits

    def _edited(self, ypr: np.ndarray, fps: float | None = None, what: str | None = None) -> PoseCurve:
        """A new curve from yaw/pitch/roll/x/y/z; `what` names an edit that can leave the training range (warned).
        Interpolations and smoothing stay within the input's range and pass no name."""
        result = PoseCurve.from_ypr(ypr, self.fps if fps is None else fps)
        if what is not None:
            result.warn_if_out_of_range(what)
        return result

    def scaled(self, factor, about=None) -> PoseCurve:
        """Amplitude scaled about a pose (default: the first, so the start matches the image).

        factor: one number, or six (yaw, pitch, roll, x, y, z). 0 gives a still head, 1 the same curve.
        about: six axis-angle numbers, or None for the first pose.
        """
        factor = six_numbers(factor, "scale factor")
        ypr = self.to_ypr()
        centre = ypr[0] if about is None else poses_to_ypr(validated_poses(about, "scale centre")[0])
        return self._edited(centre + (ypr - centre) * factor, what="scaled pose curve")

    def offset(self, delta) -> PoseCurve:
        """Shifted by six numbers (yaw, pitch, roll in degrees; x, y, z)."""
        return self._edited(self.to_ypr() + six_numbers(delta, "offset"), what="offset pose curve")

    def smoothed(self, sigma: float) -> PoseCurve:
        """Temporal smoothing with a Gaussian of `sigma` poses (edges padded with the end poses)."""
        sigma = validated_sigma(sigma)
        if sigma == 0 or len(self) == 1:
            return PoseCurve(self.values.copy(), self.fps)
        radius = max(1, int(math.ceil(3 * sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps /= taps.sum()
        ypr = self.to_ypr()
        padded = np.concatenate([np.repeat(ypr[:1], radius, 0), ypr, np.repeat(ypr[-1:], radius, 0)])
        smooth = np.stack([np.convolve(padded[:, c], taps, mode="valid") for c in range(6)], 1)
        return self._edited(smooth)

    def retimed(self, num_poses: int) -> PoseCurve:
        """The same motion stretched or squeezed in time to num_poses (first and last poses kept)."""
        num_poses = validated_count(num_poses)
        if len(self) == 1:
            return self.held(num_poses)
        at = np.linspace(0, len(self) - 1, num_poses)
        return self._edited(self._sample(at))

    def resampled(self, fps: float) -> PoseCurve:
        """The same motion at another pose rate (linear interpolation); the duration is kept."""
        fps = validated_fps(fps)
        if fps == self.fps:
            return PoseCurve(self.values.copy(), fps)
        count = int(math.floor(self.duration * fps + 1e-9)) + 1
        if count > MAX_POSES:  # checked before anything is allocated
            raise Audio2HeadError(
                f"resampling {len(self)} poses from {self.fps:g} to {fps:g} fps would give {count:,} poses, more than "
                f"the limit of {LIMIT_NOTE}; trim the curve or check its fps")
        return self._edited(self._sample(np.arange(count) * (self.fps / fps)), fps=fps)

    def trimmed(self, num_poses: int) -> PoseCurve:
        """The first num_poses poses (at most the whole curve)."""
        return PoseCurve(self.values[:validated_count(num_poses)].copy(), self.fps)

    def looped(self, num_poses: int, pingpong: bool = False) -> PoseCurve:
        """Repeated until num_poses: from the start again, or back and forth (pingpong, no jump)."""
        num_poses = validated_count(num_poses)
        n = len(self)
        index = np.arange(num_poses)
        if pingpong and n > 1:
            period = 2 * (n - 1)
            index = index % period
            index = np.where(index < n, index, period - index)
        else:
            index = index % n
        return PoseCurve(self.values[index], self.fps)

    def fitted(self, num_poses: int, mode: str = "hold") -> PoseCurve:
        """Exactly num_poses: trimmed when longer; when shorter, lengthened by `mode`: "hold" (the last pose, as the
        original), "repeat", "pingpong" (loop back and forth), or "stretch" (retimed, also when longer)."""
        num_poses = validated_count(num_poses)
        if mode not in FIT_MODES:
            raise Audio2HeadError(f"unknown fit mode {mode!r}; use one of {', '.join(FIT_MODES)}")
        if mode == "stretch":
            return self.retimed(num_poses)
        if num_poses <= len(self):
            return self.trimmed(num_poses)
        if mode == "hold":
            return PoseCurve(self.pose_for_frames(num_poses), self.fps)
        return self.looped(num_poses, pingpong=mode == "pingpong")

    def blended(self, other: PoseCurve, weight: float) -> PoseCurve:
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

    def held(self, num_poses: int | None = None) -> PoseCurve:
        """Still head: the first pose (the image's own) held for num_poses (default: this curve's length)."""
        count = len(self) if num_poses is None else validated_count(num_poses)
        return PoseCurve(np.repeat(self.values[:1], count, 0), self.fps)

    def _sample(self, at: np.ndarray) -> np.ndarray:
        """Yaw/pitch/roll/x/y/z at fractional pose indices (linear)."""
        ypr = self.to_ypr()
        index = np.arange(len(self), dtype=np.float64)
        return np.stack([np.interp(at, index, ypr[:, c]) for c in range(6)], 1)

