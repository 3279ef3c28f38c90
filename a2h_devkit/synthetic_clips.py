"""A synthetic talking-head data set whose true head motion is a known function of the speech.

Real talking-head data cannot show on a CPU, in a minute, whether the head-motion predictor learns anything: the
mapping from speech to motion is weak and one-to-many. Here it is exact, so learning is measurable:

- **Speech** is a chain of synthetic syllables: voiced harmonic tones (7 harmonics) whose pitch glides within
  90..250 Hz, each at its own loudness, separated by pauses holding a faint noise floor. Per 25 fps video frame
  the generator records two *drive* signals: the loudness of the voiced sound (0 in pauses) and its pitch offset
  ((F0 - 160 Hz) / 80 Hz, 0 in pauses). Both are visible in the model's audio features (filter bank energies, the
  F0 and voicing columns).
- **Head motion** is causal and linear in the drives: each drive passes a first-order low-pass filter (time constant
  `MotionStyle.time_constant`), and normalised pose `i` (the predictor's [-1, 1] range, `normalize_poses`) is the
  clip's rest pose plus `loudness_gain * loud_i-1 + pitch_gain * pitch_i-1`, the filter states after frame i-1's
  audio: exactly what the predictor can know when it outputs pose i (pose 0 comes from the image alone).
- **A style** (`MotionStyle`) says which dimensions move and how much: `GENERAL_STYLE` is the "training population";
  `PERSONAL_STYLE` moves other dimensions, more, for the personalisation checks.
- **Frames** are the pose boxes of `a2h_core.pose.render` drawn over a per-clip texture (smooth colour noise), so
  the first frame shows the rest pose, as a face crop shows the head's initial pose.

`write_clip` writes a video file with its sound (Matroska + PCM by default, MP4 + AAC for .mp4) and the true curve
beside it as `<clip>.pose.json`: the layout `python -m a2h_core prepare` reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from a2h_core.config import FPS
from a2h_core.modules.pose_predictor import denormalize_poses
from a2h_core.pose import PoseCurve, save_pose_curve
from a2h_core.pose.render import render_pose_boxes

SAMPLE_RATE = 16000  # the synthetic speech's sample rate
PITCH_CENTRE_HZ = 160.0  # pitch drive 0
PITCH_SPAN_HZ = 80.0  # pitch drive +-1


@dataclass(frozen=True)
class MotionStyle:
    """How a synthetic speaker moves: gains in normalised pose units per unit of each low-passed drive."""

    loudness_gain: tuple[float, ...] = (0.0, 0.9, 0.0, 0.7, 0.0, 0.0)  # per pose dimension rx, ry, rz, tx, ty, tz
    pitch_gain: tuple[float, ...] = (0.6, 0.0, 0.0, 0.0, 0.0, 0.0)  # per pose dimension
    time_constant: float = 0.15  # seconds, of the first-order low-pass on both drives
    rest_spread: float = 0.05  # rest poses are uniform in +-this (normalised units) around 0 per dimension


GENERAL_STYLE = MotionStyle()  # the training population: yaw-ish and x follow loudness, pitch-ish follows F0
# A person who rolls the head and bobs vertically with loudness and nods more with pitch; rx and tx barely move.
PERSONAL_STYLE = MotionStyle(loudness_gain=(0.0, 0.15, 0.9, 0.0, 0.9, 0.0),
                             pitch_gain=(0.0, 0.0, 0.0, 0.0, 0.0, 0.7))


@dataclass
class SyntheticClip:
    """One clip: frames, speech, and the true poses (25 fps unless `fps` says otherwise)."""

    frames: np.ndarray  # [N, S, S, 3] uint8 RGB
    audio: np.ndarray  # [samples] float32 in +-1 at SAMPLE_RATE
    poses: PoseCurve  # the true curve, one pose per frame, at the clip's fps
    drive: np.ndarray = field(repr=False)  # [frames at 25 fps, 2]: loudness and pitch drives per 25 fps frame


def synthetic_speech(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Syllable-like speech [samples] float32 and its drives [frames, 2] (loudness, pitch) per 25 fps frame."""
    rng = np.random.default_rng(seed)
    total = int(round(seconds * SAMPLE_RATE))
    audio = rng.normal(0.0, 0.003, total)  # faint noise floor
    loud = np.zeros(total)
    pitch = np.zeros(total)
    position = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    while position < total:
        length = int(rng.uniform(0.12, 0.45) * SAMPLE_RATE)
        end = min(position + length, total)
        n = end - position
        t = np.arange(n) / SAMPLE_RATE
        f_start, f_end = rng.uniform(90.0, 250.0, 2)
        f0 = np.linspace(f_start, f_end, n)
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        amplitude = rng.uniform(0.15, 0.8)
        envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms fades
        tone = sum(np.sin(k * phase) / k for k in range(1, 8))
        audio[position:end] += amplitude * envelope * tone / 2.0
        loud[position:end] = amplitude
        pitch[position:end] = (f0 - PITCH_CENTRE_HZ) / PITCH_SPAN_HZ
        position = end + int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)
    samples_per_frame = SAMPLE_RATE // FPS
    frames = total // samples_per_frame
    cut = frames * samples_per_frame
    drive = np.stack([loud[:cut].reshape(frames, -1).mean(1), pitch[:cut].reshape(frames, -1).mean(1)], 1)
    return np.clip(audio, -1, 1).astype(np.float32), drive


def motion_from_drive(drive: np.ndarray, style: MotionStyle, rest: np.ndarray) -> np.ndarray:
    """Normalised poses [frames, 6]: pose 0 is `rest`; pose i adds the gains times the filter states after frame i-1."""
    alpha = 1.0 - math.exp(-1.0 / (FPS * style.time_constant))
    state = np.zeros(2)
    poses = np.empty((len(drive), 6))
    gains = np.stack([np.asarray(style.loudness_gain), np.asarray(style.pitch_gain)])  # [2, 6]
    for i in range(len(drive)):
        poses[i] = rest + state @ gains
        state = state + alpha * (drive[i] - state)
    return poses


def texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour noise [size, size, 3] uint8: a per-clip background standing in for a face and its setting."""
    coarse = rng.uniform(40, 200, (6, 6, 3))
    index = np.linspace(0, 5, size)
    rows = np.stack([np.interp(index, np.arange(6), coarse[:, j, c]) for j in range(6) for c in range(3)], 1)
    rows = rows.reshape(size, 6, 3)
    image = np.stack([np.stack([np.interp(index, np.arange(6), rows[i, :, c]) for c in range(3)], 1)
                      for i in range(size)])
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def draw_frames(poses: np.ndarray, size: int, background: np.ndarray, colour=(255, 240, 60)) -> np.ndarray:
    """Pose boxes of physical poses [N, 6] over `background`: [N, size, size, 3] uint8."""
    boxes = render_pose_boxes(np.asarray(poses, dtype=np.float64), size=size).numpy() > 0  # [N, S, S]
    frames = np.repeat(background[None], len(poses), 0)
    frames[boxes] = np.asarray(colour, dtype=np.uint8)
    return frames


def synthetic_clip(seconds: float, style: MotionStyle = GENERAL_STYLE, seed: int = 0, size: int = 64,
                   fps: float = FPS) -> SyntheticClip:
    """A clip of `seconds` of speech with `style` motion, frames of `size` pixels at `fps` (poses at that rate)."""
    rng = np.random.default_rng(seed + 7919)
    audio, drive = synthetic_speech(seconds, seed)
    rest = rng.uniform(-style.rest_spread, style.rest_spread, 6)
    normalised = motion_from_drive(drive, style, rest)
    poses = PoseCurve(denormalize_poses(normalised.astype(np.float32)).astype(np.float64), float(FPS))
    if fps != FPS:  # the same motion sampled at another frame rate
        count = int(math.floor(poses.duration * fps)) + 1
        at = np.arange(count) / fps * FPS
        values = np.stack([np.interp(at, np.arange(len(poses)), poses.values[:, c]) for c in range(6)], 1)
        poses = PoseCurve(values, float(fps))
    frames = draw_frames(poses.values, size, texture(size, rng))
    return SyntheticClip(frames=frames, audio=audio, poses=poses, drive=drive)


def write_clip(clip: SyntheticClip, path: Path, with_curve: bool = True) -> Path:
    """Write the clip as a video with sound (.mkv: H.264 + PCM; .mp4: H.264 + AAC) and `<path>.pose.json` beside it."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(clip.poses.fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width = video.height = clip.frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "12", "preset": "ultrafast"}
        sound = container.add_stream("aac" if path.suffix == ".mp4" else "pcm_s16le", rate=SAMPLE_RATE)
        sound.layout = "mono"
        for index, frame in enumerate(clip.frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(video.encode(video_frame))
        container.mux(video.encode(None))
        samples = clip.audio[None]
        if sound.codec_context.name != "aac":
            samples = (samples * 32767).astype(np.int16)
            audio_frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        else:
            audio_frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout="mono")
        audio_frame.sample_rate = SAMPLE_RATE
        audio_frame.pts = 0
        container.mux(sound.encode(audio_frame))
        container.mux(sound.encode(None))
    if with_curve:
        save_pose_curve(clip.poses, curve_path(path))
    return path


def curve_path(video: Path) -> Path:
    """Where `prepare` looks for a clip's curve: `<clip>.pose.json` beside the video (the extension replaced)."""
    video = Path(video)
    return video.with_name(video.stem + ".pose.json")


def _write_one(job) -> Path:
    folder, index, seconds, style, seed, size, prefix, suffix = job
    clip = synthetic_clip(seconds, style, seed + index, size)
    return write_clip(clip, Path(folder) / f"{prefix}_{index:03d}{suffix}")


def write_dataset(folder: Path, count: int, seconds: float = 8.0, style: MotionStyle = GENERAL_STYLE,
                  seed: int = 0, size: int = 64, prefix: str = "clip", suffix: str = ".mkv",
                  workers: int = 1) -> list[Path]:
    """`count` clips `<prefix>_NNN<suffix>` (seeds seed, seed + 1, ...) with their curves in `folder`, written by
    `workers` processes."""
    jobs = [(folder, i, seconds, style, seed, size, prefix, suffix) for i in range(count)]
    if workers <= 1:
        return [_write_one(job) for job in jobs]
    import concurrent.futures

    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_write_one, jobs))


def prepared_dataset(root: Path, train: int = 8, val: int = 2, seconds: float = 4.0, size: int = 128,
                     seed: int = 0, workers: int = 2) -> Path:
    """`train` + `val` synthetic clips written as videos under `root/clips/{train,val}` and prepared at `size` px
    with `python -m a2h_core prepare`: the data folder (`root/data`)."""
    from a2h_core.cli import main

    root = Path(root)
    write_dataset(root / "clips" / "train", train, seconds, seed=seed, size=size, workers=workers)
    write_dataset(root / "clips" / "val", val, seconds, seed=seed + 1000, size=size, workers=workers)
    if main(["prepare", str(root / "clips"), "--out", str(root / "data"), "--image-size", str(size),
             "--workers", str(workers)]) != 0:
        raise RuntimeError("prepare failed")
    return root / "data"


def small_frame_config(size: int = 128, seq_len: int = 16, motion_blocks: int = 4):
    """The reduced widths at `size` px (`at_image_size`) with a short motion window (T = `seq_len`, a multiple of
    2^`motion_blocks`: the 3-D hourglass halves time in every block): the CPU training tests' model."""
    import dataclasses

    from a2h_core.config import ModelConfig

    config = ModelConfig.reduced().at_image_size(size)
    return dataclasses.replace(config, motion_field=dataclasses.replace(config.motion_field, seq_len=seq_len,
                                                                       num_blocks=motion_blocks))


def write_model_config(config, path: Path) -> Path:
    """A ModelConfig as the JSON file `--config FILE.json` reads."""
    import dataclasses
    import json

    path = Path(path)
    path.write_text(json.dumps(dataclasses.asdict(config)), encoding="utf-8")
    return path
