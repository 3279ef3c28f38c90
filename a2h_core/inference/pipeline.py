"""End-to-end orchestration: image + audio -> frames or an MP4 with sound, streamed window by window.

Stages: source image -> 256x256 input; audio -> features; features -> poses (predicted, or a given curve);
poses -> pose boxes -> motion-field windows -> driving keypoints; keypoints -> frames -> (paste-back) -> video.
Driving keypoints of one motion window are rendered and encoded before the next window is computed, so memory
stays flat however long the audio is. The model operations themselves are in `wrapper.py`.
"""
from __future__ import annotations

import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from a2h_core.config import FPS, IMAGE_SIZE
from a2h_core.errors import A2HWarning
from a2h_core.audio.features import AudioFeatures, extract_features
from a2h_core.io.image import CropBox, CropInfo, even_size, paste_back, prepare_source_image
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_core.io.video import VideoWriter, load_soundtrack
from a2h_core.inference.wrapper import Audio2HeadWrapper, Progress, require_frames

# Files written by --save-intermediates (name -> content); the README documents the same table.
INTERMEDIATE_FILES = {
    "features.npy": "[rows, 41] float64 audio features (13 MFCC, 26 log filter bank, F0, voiced flag), 100 rows/s",
    "poses.npy": "[N, 6] float64 pose curve used (rx, ry, rz radians, tx, ty, tz); predicted: N = frames + 1",
    "source.png": "256x256 RGB network input (after crop and resize)",
    "source_kp_value.npy": "[1, 10, 2] float32 source keypoints, x then y in [-1, 1]",
    "source_kp_jacobian.npy": "[1, 10, 2, 2] float32 source Jacobians",
    "pose_boxes.npy": "[frames, 256, 256] uint8 pose-box images (0/255) of the video frames",
    "driving_kp_value.npy": "[frames, 10, 2] float32 driving keypoints, x then y in [-1, 1]",
    "driving_kp_jacobian.npy": "[frames, 10, 2, 2] float32 driving Jacobians",
    "frames.npy": "[frames, 256, 256, 3] uint8 RGB generated frames (before paste-back)",
}


@dataclass
class PipelineConfig:
    """Settings of one `generate` run (the command line's options)."""

    device: str | torch.device | None = None  # "cpu", "cuda", "cuda:1", "mps"; None keeps the models where they are
    dtype: str | torch.dtype = "fp32"  # compute precision: "fp32", "bf16" (CPU or GPU autocast) or "fp16" (GPU)
    batch_size: int = 4  # frames the warping generator renders per forward pass (4 keeps CPU memory low)
    crop: CropBox | str | None = None  # face box "x,y,w,h" in the source image; None resizes the whole image
    feather: float = 0.1  # paste-back blend width as a fraction of the crop box's shorter side
    crf: int = 18  # H.264 constant rate factor (lower = better quality, larger file)
    save_intermediates: Path | str | None = None  # folder for every stage's output (INTERMEDIATE_FILES)


@dataclass
class GenerateResult:
    """What `generate` produced."""

    num_frames: int  # video frames (25 fps)
    poses: PoseCurve  # the pose curve that drove the video
    frames: np.ndarray | None = None  # [frames, H, W, 3] uint8 RGB when no out_path was given
    out_path: Path | None = None  # the MP4 written, if any
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage


class _StageTimer:
    """Wall time per stage. Streamed stages pull from each other (rendering asks for the next keypoints), so the
    time of a stage excludes the time of the stages it called into."""

    _DONE = object()

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._inner: list[float] = []  # per open stage: time spent in stages nested inside it

    def run(self, stage: str, function: Callable, *args, **kwargs):
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[stage] += elapsed - self._inner.pop()
            if self._inner:
                self._inner[-1] += elapsed

    def time(self, stage: str, iterator: Iterator) -> Iterator:
        """Wrap an iterator so that the time spent producing each item is charged to `stage`."""
        while (item := self.run(stage, next, iterator, self._DONE)) is not self._DONE:
            yield item


class IntermediateWriter:
    """Writes each stage's output to a folder as .npy/.png files (see INTERMEDIATE_FILES), frames streamed in."""

    def __init__(self, folder: Path | str, num_frames: int, num_kp: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.num_frames = num_frames
        self._arrays = {
            "pose_boxes.npy": self._open("pose_boxes.npy", np.uint8, (num_frames, IMAGE_SIZE, IMAGE_SIZE)),
            "driving_kp_value.npy": self._open("driving_kp_value.npy", np.float32, (num_frames, num_kp, 2)),
            "driving_kp_jacobian.npy": self._open("driving_kp_jacobian.npy", np.float32, (num_frames, num_kp, 2, 2)),
            "frames.npy": self._open("frames.npy", np.uint8, (num_frames, IMAGE_SIZE, IMAGE_SIZE, 3)),
        }
        self._next = {"driving": 0, "frames": 0}

    def _open(self, name: str, dtype, shape) -> np.ndarray:
        return np.lib.format.open_memmap(self.folder / name, mode="w+", dtype=dtype, shape=shape)

    def features(self, features: AudioFeatures) -> None:
        features.save(self.folder / "features.npy")

    def poses(self, poses: PoseCurve) -> None:
        np.save(self.folder / "poses.npy", np.asarray(poses.values, dtype=np.float64))

    def source(self, source: torch.Tensor, kp_source: Keypoints) -> None:
        from PIL import Image

        pixels = (source[0].permute(1, 2, 0).float().cpu().numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(self.folder / "source.png")
        np.save(self.folder / "source_kp_value.npy", kp_source.value.float().cpu().numpy())
        if kp_source.jacobian is not None:
            np.save(self.folder / "source_kp_jacobian.npy", kp_source.jacobian.float().cpu().numpy())

    def pose_boxes(self, first_frame: int, boxes: torch.Tensor) -> None:
        self._arrays["pose_boxes.npy"][first_frame:first_frame + len(boxes)] = boxes.numpy()

    def driving(self, keypoints: Keypoints) -> None:
        start = self._next["driving"]
        self._arrays["driving_kp_value.npy"][start:start + len(keypoints)] = keypoints.value.cpu().numpy()
        if keypoints.jacobian is not None:
            self._arrays["driving_kp_jacobian.npy"][start:start + len(keypoints)] = keypoints.jacobian.cpu().numpy()
        self._next["driving"] = start + len(keypoints)

    def frames(self, frames: np.ndarray) -> None:
        start = self._next["frames"]
        self._arrays["frames.npy"][start:start + len(frames)] = frames
        self._next["frames"] = start + len(frames)

    def close(self) -> None:
        for array in self._arrays.values():
            array.flush()
        self._arrays.clear()


def generate(image, audio, models: Audio2HeadModels, config: PipelineConfig | None = None,
             pose_curve: PoseCurve | None = None, out_path: str | Path | None = None,
             progress: Progress | None = None, sample_rate: int | None = None,
             log: Callable[[str], None] | None = None, features: AudioFeatures | None = None) -> GenerateResult:
    """Animate `image` with `audio`.

    image: path, PIL image, uint8 array or ComfyUI IMAGE tensor (see image.load_image).
    audio: path, ComfyUI AUDIO dict, or array with `sample_rate`; or precomputed AudioFeatures (then the video
        has no sound).
    pose_curve: drive the head with this curve instead of the predicted one (resampled to 25 fps if needed; frame i
        uses pose i; the last pose is held past its end).
    out_path: write an MP4 (H.264 + AAC, 25 fps) there, streaming; without it the frames are returned in memory.
    progress(done, total): called after each rendered batch, in frames; an exception raised in it cancels.
    log(message): told when each stage starts.
    features: the audio's features if already computed (the audio then only gives the soundtrack). Extracting them
        before the models are loaded keeps the two memory peaks apart, as the command line does.
    """
    config = config or PipelineConfig()
    say = log or (lambda message: None)
    timer = _StageTimer()
    wrapper = Audio2HeadWrapper(models, device=config.device, dtype=config.dtype)

    say("preparing the source image")
    source, crop_info = timer.run("image", prepare_source_image, image, config.crop)
    writer = None
    if out_path is not None:  # checked before the long stages: a bad name fails at once
        width, height = _output_size(crop_info)
        writer = VideoWriter(out_path, width, height, crf=config.crf)
    if isinstance(audio, AudioFeatures):
        features, soundtrack = audio, None
    else:
        if features is None:
            say("extracting audio features")
            features = timer.run("features", extract_features, audio, sample_rate)
        soundtrack = load_soundtrack(audio, sample_rate) if out_path is not None else None
    num_frames = require_frames(features)

    if pose_curve is None:
        say(f"predicting head poses for {num_frames} frames")
        poses = timer.run("poses", wrapper.predict_poses, source, features)
    else:
        poses = pose_curve if pose_curve.fps == FPS else pose_curve.resampled(FPS)  # one pose per video frame
        poses.warn_if_out_of_range("pose curve")
        if len(poses.values) < num_frames + 1:
            warnings.warn(
                f"the pose curve has {len(poses.values)} poses but the video needs {num_frames + 1} "
                f"({num_frames} frames + the end pose): its last pose is held for the rest of the video",
                A2HWarning, stacklevel=2)
    kp_source = timer.run("source keypoints", wrapper.source_keypoints, source)

    saver = None
    if config.save_intermediates is not None:
        saver = IntermediateWriter(config.save_intermediates, num_frames, kp_source.value.shape[1])
        saver.features(features)
        saver.poses(poses)
        saver.source(source, kp_source)

    say("rendering frames")
    driving = timer.time("motion field", wrapper.iter_driving_keypoints(
        source, features, poses, on_pose_boxes=saver.pose_boxes if saver else None))
    if saver is not None:
        driving = _tap(driving, saver.driving)
    frames = timer.time("generator", wrapper.render_frames(
        source, kp_source, driving, batch_size=config.batch_size, progress=progress, total=num_frames))
    if saver is not None:
        frames = _tap(frames, saver.frames)
    if crop_info is not None:
        frames = timer.time("paste-back", _paste_all(frames, crop_info, config.feather))

    try:
        result = GenerateResult(num_frames=num_frames, poses=poses)
        if writer is None:
            result.frames = _collect(frames, num_frames)
        else:
            writer.soundtrack = soundtrack
            with writer:
                for batch in frames:
                    timer.run("encode", writer.write, batch)
            result.out_path = writer.path
    finally:
        if saver is not None:
            saver.close()
    result.seconds = dict(timer.seconds)
    return result


def _output_size(crop_info: CropInfo | None) -> tuple[int, int]:
    if crop_info is None:
        return IMAGE_SIZE, IMAGE_SIZE
    return even_size(crop_info.full_image.shape[1], crop_info.full_image.shape[0])


def _paste_all(frames: Iterator[np.ndarray], crop_info: CropInfo, feather: float) -> Iterator[np.ndarray]:
    for batch in frames:
        yield paste_back(batch, crop_info, feather)


def _tap(items: Iterator, sink: Callable) -> Iterator:
    """Pass items through unchanged, handing each to `sink` on the way."""
    for item in items:
        sink(item)
        yield item


def _collect(frames: Iterator[np.ndarray], num_frames: int) -> np.ndarray:
    """Gather streamed batches into one preallocated [frames, H, W, 3] array."""
    out = None
    done = 0
    for batch in frames:
        if out is None:
            out = np.empty((num_frames, *batch.shape[1:]), dtype=np.uint8)
        out[done:done + len(batch)] = batch
        done += len(batch)
    return out[:done]
