"""Clips in, prepared shards out (`python -m a2h_core prepare`).

Every video under the clips folder (recursively; extensions `VIDEO_SUFFIXES`) with an audio track is decoded once:

- frames are resampled to 25 fps (each 25 fps instant takes the decoded frame nearest in time) and resized to
  S x S with the inference image filter (`resize_uint8`); the clips should already be face crops;
- the audio goes through the inference front end (`extract_features`: any audio the file holds, resampled as at
  inference), 4 feature rows per frame;
- the curve is `<clip>.pose.json` or `<clip>.pose.csv` (our curve formats) or `<clip>.csv` (an OpenFace 2.0
  FeatureExtraction CSV, the paper's ground truth), resampled to 25 fps. It must cover the video: a curve that is
  more than `PrepareConfig.length_tolerance` poses longer or shorter than the video's frames is an error for
  that clip. A clip without a curve gets one fitted to its frames (`a2h_core.face.pose_from_video`, the
  `face_detector` setting); a clip where no face is found is an error: poses are never invented.

The clip's length is the shortest of video frames, feature frames and curve poses. Clips in a folder named
``train`` or ``val`` keep that split; the others are assigned by a hash of their name (`--val-fraction`), the same
on every machine and every run. A clip that fails (unreadable, no audio, too short, wrong curve length, ...) is
reported by name and skipped; the others go on. A second run skips clips whose shard is already there and was made
from the same file (same SHA-256).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from a2h_core.audio.features import extract_features
from a2h_core.config import FEATURE_ROWS_PER_FRAME, FPS, IMAGE_SIZE, NUM_AUDIO_FEATURES
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.face import load_face_detector, pose_from_video
from a2h_core.io.image import resize_uint8
from a2h_core.io.weights import file_sha256
from a2h_core.pose import PoseCurve, load_pose_curve
from a2h_core.training.shards import ClipRecord, shard_metadata, shard_path, write_manifest, write_shard

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".ts")
CURVE_SUFFIXES = (".pose.json", ".pose.csv", ".csv")  # looked for beside a clip, in this order
PROBE_FRAMES = 3  # frames checked for a face before head poses are fitted to a clip without a curve


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of a prepare run."""

    image_size: int = IMAGE_SIZE  # side of the stored frames (the model's 256)
    val_fraction: float = 0.1  # share of the clips outside train/ and val/ folders that go to validation
    min_frames: int = 25  # clips shorter than this (at 25 fps) are skipped as too short
    length_tolerance: int = 2  # poses the curve may differ from the video's frame count (resampling rounding)
    workers: int = 1  # clips decoded in parallel (processes)
    face_detector: str = "auto"  # fits head poses to clips without a curve file: auto, yunet, mtcnn, a file, or none


@dataclass(frozen=True)
class ClipResult:
    """What happened to one clip."""

    name: str  # path relative to the clips folder
    status: str  # "prepared", "skipped-done" (already prepared) or "failed"
    frames: int = 0  # frames stored
    reason: str = ""  # why it failed
    record: ClipRecord | None = None  # the manifest entry (prepared or already done)


def find_clips(root: Path) -> list[Path]:
    """Every video file under `root`, recursively, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise Audio2HeadError(f"clips folder {root} does not exist or is not a folder: give the folder of videos")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                  and not p.name.startswith("."))


def split_of(name: str, val_fraction: float) -> str:
    """"train"/"val" from a train/ or val/ folder in the path, else from the SHA-1 of the name (deterministic)."""
    for part in Path(name).parts[:-1]:
        if part.lower() in ("train", "val"):
            return part.lower()
    bucket = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return "val" if bucket < val_fraction else "train"


def find_curve(video: Path) -> Path | None:
    """The head-pose curve file beside a clip, or None."""
    return next((path for path in _curve_candidates(video) if path.is_file()), None)


def _curve_candidates(video: Path) -> list[Path]:
    return [video.with_name(video.stem + suffix) for suffix in CURVE_SUFFIXES]


def clip_curve(video: Path, frames: np.ndarray, face_detector: str = "auto") -> tuple[PoseCurve, str]:
    """The clip's head-pose curve at 25 fps and where it came from: the curve file beside the clip, else the head
    poses fitted to its frames (25 fps, as `decode_frames` gives them) by `a2h_core.face.pose_from_video` with
    `face_detector`; "none" turns that off. A curve is never invented: a clip where no face is found is an error."""
    curve_file = find_curve(video)
    if curve_file is not None:
        return load_pose_curve(curve_file), curve_file.name  # resampled to 25 fps
    names = ", ".join(path.name for path in _curve_candidates(video))
    if face_detector == "none":
        raise Audio2HeadError(f"no head-pose curve: expected one of {names} beside the clip (estimating one from "
                              "the video is off: --face-detector none)")
    try:
        detector = load_face_detector(face_detector)
        # A talking-head clip shows its face throughout: three frames without one reject it before a full fit.
        probes = np.linspace(0, len(frames) - 1, PROBE_FRAMES).round().astype(int)
        if not any(detector.detect(frames[index]) for index in probes):
            raise Audio2HeadError(f"no face found at frames {', '.join(map(str, probes))}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", A2HWarning)  # gaps are bridged; the summary says the curve was fitted
            curve = pose_from_video(frames, FPS, detector=detector)
    except Audio2HeadError as exc:
        raise Audio2HeadError(f"no head-pose curve ({names}) beside the clip, and none could be fitted to the video: "
                              f"{str(exc).splitlines()[0]}") from None
    return curve, f"fitted to the video ({face_detector} face detector)"


def decode_frames(path: Path, size: int) -> tuple[np.ndarray, float]:
    """The video resampled to 25 fps (nearest decoded frame per instant) and resized: [N, size, size, 3] uint8, and
    the source frame rate."""
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise Audio2HeadError(f"cannot open the video ({exc})") from None
    with container:
        if not container.streams.video:
            raise Audio2HeadError("the file has no video stream")
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or stream.guessed_rate or FPS)
        kept: list[np.ndarray] = []
        previous = None  # (time, image) of the last decoded frame not yet past
        start = None
        try:
            for frame in container.decode(stream):
                time_s = float(frame.time) if frame.time is not None else len(kept) / source_fps
                start = time_s if start is None else start
                time_s -= start
                image = frame.to_ndarray(format="rgb24")
                # Every 25 fps instant before this frame takes the nearer of the previous and this frame.
                while previous is not None and len(kept) / FPS < time_s:
                    instant = len(kept) / FPS
                    nearer = previous[1] if instant - previous[0] <= time_s - instant else image
                    kept.append(resize_uint8(nearer, size, size))
                previous = (time_s, image)
        except av.FFmpegError as exc:
            raise Audio2HeadError(f"the video cannot be decoded ({exc})") from None
        if previous is None:
            raise Audio2HeadError("the video has no frames")
        end = previous[0] + 1.0 / source_fps  # the last frame lasts one source frame
        while len(kept) / FPS < end - 1e-6:
            kept.append(resize_uint8(previous[1], size, size))
    return np.stack(kept), source_fps


def prepare_clip(video: Path, root: Path, out: Path, config: PrepareConfig) -> ClipResult:
    """Decode one clip and write its shard; failures come back as a result, never raised."""
    name = video.relative_to(root).as_posix()
    split = split_of(name, config.val_fraction)
    target = shard_path(out, split, name)
    try:
        sha = file_sha256(video)
        existing = shard_metadata(target)
        if existing is not None and existing.get("source_sha256") == sha \
                and existing.get("image_size") == str(config.image_size):
            return ClipResult(name, "skipped-done", int(existing["frames"]), record=_record(existing, out, target))
        frames, source_fps = decode_frames(video, config.image_size)
        curve, pose_source = clip_curve(video, frames, config.face_detector)
        features = extract_features(video)
        audio_frames = features.num_frames
        if abs(len(curve) - len(frames)) > config.length_tolerance:
            raise Audio2HeadError(f"the curve {pose_source} has {len(curve)} poses at 25 fps but the video has "
                                  f"{len(frames)} frames: give a curve with one pose per video frame")
        count = min(len(frames), audio_frames, len(curve))
        if count < config.min_frames:
            raise Audio2HeadError(f"too short: {count} frames at 25 fps (video {len(frames)}, audio {audio_frames}, "
                                  f"curve {len(curve)}); at least {config.min_frames} are needed")
        rows = np.asarray(features.values[: count * FEATURE_ROWS_PER_FRAME], dtype=np.float32)
        metadata = {
            "name": name, "split": split, "image_size": str(config.image_size), "source_sha256": sha,
            "pose_source": pose_source, "source_fps": f"{source_fps:g}",
        }
        write_shard(target, rows.reshape(count, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES),
                    curve.values[:count].astype(np.float32), frames[:count], metadata)
        return ClipResult(name, "prepared", count, record=_record({**metadata, "frames": str(count)}, out, target))
    except Audio2HeadError as exc:
        return ClipResult(name, "failed", reason=str(exc).splitlines()[0])
    except Exception as exc:  # a broken file may fail anywhere in a decoder: report it, go on with the others
        return ClipResult(name, "failed", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def _record(metadata: dict[str, str], out: Path, shard: Path) -> ClipRecord:
    return ClipRecord(name=metadata["name"], shard=shard.relative_to(out).as_posix(), split=metadata["split"],
                      frames=int(metadata["frames"]), source_sha256=metadata["source_sha256"],
                      pose_source=metadata["pose_source"], source_fps=float(metadata["source_fps"]))


def _prepare_in_worker(args) -> ClipResult:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return prepare_clip(*args)


def prepare_dataset(clips: Path, out: Path, config: PrepareConfig = PrepareConfig(),
                    progress: Callable[[int, int], None] | None = None) -> list[ClipResult]:
    """Prepare every clip under `clips` into `out` (see the module doc); returns one result per clip, by name."""
    clips, out = Path(clips), Path(out)
    if not 0.0 <= config.val_fraction < 1.0:
        raise Audio2HeadError(f"--val-fraction must be in [0, 1), got {config.val_fraction}")
    if config.image_size < 32:
        raise Audio2HeadError(f"--image-size must be at least 32 pixels, got {config.image_size}")
    videos = find_clips(clips)
    if not videos:
        raise Audio2HeadError(f"no videos under {clips} (looked for {', '.join(VIDEO_SUFFIXES)})")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(video, clips, out, config) for video in videos]
    results: list[ClipResult] = []
    started = time.monotonic()
    if config.workers <= 1:
        for job in jobs:
            results.append(prepare_clip(*job))
            if progress:
                progress(len(results), len(jobs))
    else:
        with concurrent.futures.ProcessPoolExecutor(config.workers) as pool:
            for result in pool.map(_prepare_in_worker, jobs):
                results.append(result)
                if progress:
                    progress(len(results), len(jobs))
    records = [r.record for r in results if r.record is not None]
    skipped = [{"name": r.name, "reason": r.reason} for r in results if r.status == "failed"]
    settings = {"image_size": config.image_size, "val_fraction": config.val_fraction,
                "prepare_config": asdict(config), "seconds": round(time.monotonic() - started, 1)}
    write_manifest(out, records, skipped, settings)
    return sorted(results, key=lambda r: r.name)
