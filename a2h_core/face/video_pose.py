"""Head motion from a video: the 6-D head pose of every frame, in the model's camera convention.

1. Faces are detected in every frame; the person followed is the largest face of the first frame with one, then
   in each frame the face nearest to where it was.
2. One reference crop is chosen for the whole clip: the model's framing (`framing.framing_box`) around the median
   face position and size. Every frame's landmarks are expressed in that crop's 256x256 coordinates, so the
   pose-box camera of the model (focal 233.333 px, centre 128) applies and moving across the frame shows up as
   translation.
3. The pose of each frame is fitted to its five landmarks (`head_pose.solve_head_pose`: generic 3-D template,
   perspective-n-point in numpy) and its translation scaled into the model's units, so that a face framed like the
   demo images lands inside the training range.
4. Frames without a face are bridged by linear interpolation of yaw, pitch, roll and x, y, z (the first and last
   found poses are held at the ends) and reported; the curve is smoothed over time with a Gaussian.

`pose_from_video(frames, fps)` returns the `PoseCurve` (what `generate --pose-curve`, the Motion Field node and the
training data preparation take); `fit_video_pose` returns the details as well.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from a2h_core.config import IMAGE_SIZE
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.face.detectors import Face, FaceDetector, load_face_detector
from a2h_core.face.framing import DEFAULT_FRAMING, face_centre, face_size, framing_box
from a2h_core.face.head_pose import solve_head_pose, to_model_units
from a2h_core.io.image import CropBox, load_image
from a2h_core.io.video import read_video_frames
from a2h_core.pose import PoseCurve
from a2h_core.pose.rotations import poses_to_ypr

VIDEO_MAX_SIDE = 640  # video files are decoded at most this large (faces stay well above the detector's minimum)
DEFAULT_SMOOTHING = 0.06  # seconds: the Gaussian's sigma (1.5 frames at 25 fps)


@dataclass
class VideoPose:
    """The head poses of a clip and how they were found."""

    curve: PoseCurve  # one pose per frame at the clip's fps, model units
    found: np.ndarray  # [N] bool: a face was detected in the frame
    gaps: list[tuple[int, int]] = field(default_factory=list)  # first and last frame of each run without a face
    reprojection_error: np.ndarray | None = None  # [N] RMS landmark error of the fit, pixels of the 256 crop (NaN: gap)
    reference_crop: CropBox | None = None  # the clip's crop the poses are expressed in, frame pixels
    detector: str = ""  # the detector used

    def report(self) -> str:
        """One line for people: frames found, gaps bridged."""
        total = len(self.found)
        text = f"head pose of {total} frames at {self.curve.fps:g} fps, face found in {int(self.found.sum())}"
        if self.gaps:
            spans = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.gaps[:8])
            more = f" and {len(self.gaps) - 8} more" if len(self.gaps) > 8 else ""
            text += f"; bridged {len(self.gaps)} gap(s) without a face: frames {spans}{more}"
        return text


def _frames(frames) -> list[np.ndarray] | np.ndarray:
    if isinstance(frames, torch.Tensor):
        if frames.dim() != 4:
            raise Audio2HeadError(f"video frames must be [N, H, W, C], got shape {tuple(frames.shape)}")
        frames = frames.detach().cpu()
        if frames.is_floating_point():
            frames = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
        return frames.numpy()
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise Audio2HeadError(f"video frames must be [N, H, W, C], got shape {frames.shape}")
        return frames
    return list(frames)


def _pick(faces: list[Face], previous: Face | None) -> Face | None:
    """The face to follow: the largest at the start, then the one nearest to the previous face."""
    if not faces:
        return None
    if previous is None:
        return faces[0]
    last, size = face_centre(previous.landmarks), face_size(previous.landmarks)
    distances = [np.linalg.norm(face_centre(f.landmarks) - last) / size for f in faces]
    best = int(np.argmin(distances))
    return faces[best] if distances[best] < 1.5 else None  # a jump of more than 1.5 face sizes is someone else


def _detect_near(detector: FaceDetector, picture: np.ndarray, previous: Face) -> list[Face]:
    """Faces in a window of four face sizes around the previous face (much faster than the whole frame)."""
    size = face_size(previous.landmarks)
    cx, cy = face_centre(previous.landmarks)
    half = 2.5 * size
    left, top = int(max(cx - half, 0)), int(max(cy - half, 0))
    right, bottom = int(min(cx + half, picture.shape[1])), int(min(cy + half, picture.shape[0]))
    if right - left < 24 or bottom - top < 24:
        return []
    faces = detector.detect(picture[top:bottom, left:right])
    shift = np.array([left, top], dtype=np.float64)
    return [Face(box=(f.box[0] + left, f.box[1] + top, f.box[2], f.box[3]), landmarks=f.landmarks + shift,
                 score=f.score, detector=f.detector) for f in faces]


def _bridge(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linear interpolation of the rows where `found` is False (ends hold the nearest found row)."""
    index = np.arange(len(values))
    out = values.copy()
    for column in range(values.shape[1]):
        out[:, column] = np.interp(index, index[found], values[found, column])
    return out


def _gaps(found: np.ndarray) -> list[tuple[int, int]]:
    gaps, start = [], None
    for i, hit in enumerate(found):
        if not hit and start is None:
            start = i
        if hit and start is not None:
            gaps.append((start, i - 1))
            start = None
    if start is not None:
        gaps.append((start, len(found) - 1))
    return gaps


def fit_video_pose(frames, fps: float | None = None, *, detector: str | Path | FaceDetector = "auto",
                   smoothing: float = DEFAULT_SMOOTHING, device="cpu", models_dir=None,
                   progress: Callable[[int, int], None] | None = None) -> VideoPose:
    """The head pose of every frame; see the module doc.

    frames: a video file path (decoded with FFmpeg, fps read from it), an array or ComfyUI IMAGE batch
        [N, H, W, 3], or a list of images. fps: the frames' rate (required unless a file gives it).
    smoothing: Gaussian sigma in seconds (0: none). progress(done, total) is called after each frame.
    """
    if isinstance(frames, (str, os.PathLike)):
        frames, file_fps = read_video_frames(frames, max_side=VIDEO_MAX_SIDE)
        fps = fps or file_fps
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise Audio2HeadError(f"the video's frame rate must be a positive number, got {fps}: pass fps=")
    frames = _frames(frames)
    if len(frames) == 0:
        raise Audio2HeadError("the video has no frames")
    found_detector = detector if isinstance(detector, FaceDetector) else load_face_detector(
        detector, models_dir=models_dir, device=device)

    followed: list[Face | None] = []
    previous = None
    for i, frame in enumerate(frames):
        picture = load_image(frame)
        face = _pick(_detect_near(found_detector, picture, previous), previous) if previous is not None else None
        if face is None:
            face = _pick(found_detector.detect(picture), previous)
        followed.append(face)
        previous = face or previous
        if progress is not None:
            progress(i + 1, len(frames))
    found = np.array([f is not None for f in followed])
    if not found.any():
        raise Audio2HeadError(f"no face found in any of the {len(frames)} video frames (detector "
                              f"{found_detector.describe()}): give a clip where the face is visible")

    # One reference crop for the clip, from the median face position and size.
    marks = np.stack([f.landmarks for f in followed if f is not None])
    centres = marks.mean(1)
    sizes = np.array([face_size(m) for m in marks])
    median_face = Face(box=(0, 0, 1, 1), landmarks=marks[np.argmin(np.abs(sizes - np.median(sizes)))]
                       - face_centre(marks[np.argmin(np.abs(sizes - np.median(sizes)))]) + np.median(centres, 0),
                       score=1.0)
    crop = framing_box(median_face, DEFAULT_FRAMING)
    scale = IMAGE_SIZE / crop.width
    in_crop = (marks - np.array([crop.x, crop.y])) * scale

    poses_mm, error = solve_head_pose(in_crop)
    poses = np.full((len(frames), 6), np.nan)
    poses[found] = to_model_units(poses_mm)
    errors = np.full(len(frames), np.nan)
    errors[found] = error
    ypr = _bridge(np.where(found[:, None], poses_to_ypr(np.nan_to_num(poses)), 0.0), found)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", A2HWarning)  # the range check is done once, below
        curve = PoseCurve.from_ypr(ypr, fps=float(fps))
        if smoothing > 0:
            curve = curve.smoothed(smoothing * float(fps))
    return VideoPose(curve=curve, found=found, gaps=_gaps(found), reprojection_error=errors, reference_crop=crop,
                     detector=found_detector.describe())


def pose_from_video(frames, fps: float | None = None, **options) -> PoseCurve:
    """The head-pose curve of a clip (one pose per frame, at its fps, in the model's units and convention).

    Gaps without a face are bridged, with an A2HWarning naming them; a curve outside the training range is
    warned about as well. Options as `fit_video_pose`. This is what a training-data preparation calls for clips
    that come without a pose curve.
    """
    result = fit_video_pose(frames, fps, **options)
    if result.gaps:
        warnings.warn(result.report(), A2HWarning, stacklevel=2)
    result.curve.warn_if_out_of_range("head-pose curve from the video")
    return result.curve
