"""End-to-end orchestration: image + audio -> frames or an MP4 with sound, streamed window by window.

Stages: source image -> (face detection and square crop, unless crop is "none") -> the model's input (256x256 for the
published model, `ModelConfig.image_size`);
audio -> features; features -> poses (predicted, or a given curve);
poses -> pose boxes -> motion-field windows -> driving keypoints; keypoints -> frames -> (paste-back) -> video.
Driving keypoints of one motion window are rendered and encoded before the next window is computed, so memory
stays flat however long the audio is. The model operations themselves are in `wrapper.py`.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from a2h_core.audio.features import AudioFeatures, extract_features
from a2h_core.audio.intake import is_audio_path
from a2h_core.audio.soundtrack import load_soundtrack
from a2h_core.errors import Audio2HeadError
from a2h_core.face import face_crop, load_face_detector
from a2h_core.inference.acceleration import BackgroundConsumer, checked_compile_mode, default_batch_size
from a2h_core.inference.intermediates import IntermediateWriter
from a2h_core.inference.wrapper import Audio2HeadWrapper, Progress, checked_batch_size, require_frames
from a2h_core.io.image import CropBox, CropInfo, even_size, load_image, paste_back, prepare_source_image
from a2h_core.io.mark import checked_watermark, watermark_frames
from a2h_core.io.video import MAX_CRF, VideoWriter
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.paths import checked_output_file, checked_output_folder
from a2h_core.pose import PoseCurve

CROP_MODES = ("auto", "none")  # crop settings that are not a box: detect the face, or resize the whole image


@dataclass
class PipelineConfig:
    """Settings of one `generate` run (the command line's options)."""

    device: str | torch.device | None = None  # "cpu", "cuda", "cuda:1", "mps"; None keeps the models where they are
    dtype: str | torch.dtype = "fp32"  # compute precision: "fp32", "bf16" (CPU or GPU autocast) or "fp16" (GPU)
    batch_size: int | None = None  # frames the warping generator renders per forward pass (None: per device, 4 on a
    # CPU, sized from the free memory on a GPU; see inference.acceleration)
    compile: str = "off"  # "off", "default" or "max-autotune": torch.compile the generator (GPU throughput; falls
    # back to eager with a warning where it cannot compile)
    crop: CropBox | str | None = "auto"  # "auto" (detect the face, crop, paste back), "none"/None (resize the whole
    # image, as the original), or a box "x,y,w,h" / CropBox in the source image's pixels
    face_detector: str = "auto"  # "auto", "yunet", "mtcnn" or a weight path (see a2h_core.face)
    face_index: int | None = None  # which face with crop "auto", 0 = largest (default: the largest, warning if several)
    crop_scale: float | None = None  # crop side in face sizes (None: the calibrated default)
    crop_offset: float | None = None  # crop centre below the face centre, in face sizes (None: the default)
    face_models_dir: Path | str | None = None  # folder for the face detector's weights (None: the caches)
    paste_back: bool = True  # with a crop: blend the animated face into the full picture (False: the 256x256 frames)
    feather: float = 0.1  # paste-back blend width as a fraction of the crop box's shorter side
    crf: int = 18  # H.264 constant rate factor (lower = better quality, larger file)
    save_intermediates: Path | str | None = None  # folder for every stage's output (`intermediates.INTERMEDIATE_FILES`)
    watermark: str | None = None  # visible text drawn in the bottom-left corner of every frame (None: no visible mark;
    # the MP4's metadata marks it as synthetic either way)


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


def generate(image, audio, models: Audio2HeadModels, config: PipelineConfig | None = None,
             pose_curve: PoseCurve | None = None, out_path: str | Path | None = None,
             progress: Progress | None = None, sample_rate: int | None = None,
             log: Callable[[str], None] | None = None, features: AudioFeatures | None = None,
             check_cancel: Callable[[], None] | None = None,
             on_frames: Callable[[np.ndarray], None] | None = None) -> GenerateResult:
    """Animate `image` with `audio`.

    image: path, PIL image, uint8 array or ComfyUI IMAGE tensor (see image.load_image).
    audio: path, ComfyUI AUDIO dict, or array with `sample_rate`; or precomputed AudioFeatures (then the video
        has no sound).
    pose_curve: drive the head with this curve instead of the predicted one (`PoseCurve.for_video`: resampled to
        25 fps if needed; frame i uses pose i; the last pose is held past its end).
    out_path: write an MP4 (H.264 + AAC, 25 fps) there, streaming; without it the frames are returned in memory.
    progress(done, total): called after each rendered batch, in frames; an exception raised in it cancels.
    log(message): told when each stage starts.
    features: the audio's features if already computed (the audio then only gives the soundtrack). Extracting them
        before the models are loaded keeps the two memory peaks apart, as the command line does.
    check_cancel(): called often in every stage (feature extraction, pose prediction, and inside each pass of the
        motion field and the generator, which `progress` only follows between passes); an exception raised in it
        cancels.
    on_frames(batch): handed each batch of finished frames [B, H, W, 3] uint8 (as written to out_path), to keep them
        as well without holding the whole video here.
    """
    # Every argument is checked before anything slow runs: types, ranges, output paths, then the image.
    config = checked_config(config)
    if pose_curve is not None and not isinstance(pose_curve, PoseCurve):
        raise Audio2HeadError(f"pose_curve must be a PoseCurve (PoseCurve(values, fps) or load_pose_curve(path)), "
                              f"got a {type(pose_curve).__name__}")
    if features is not None:
        require_frames(features)
    say = log or (lambda message: None)
    cancel_point = (lambda done, total: check_cancel()) if check_cancel is not None else None
    timer = _StageTimer()
    wrapper = Audio2HeadWrapper(models, device=config.device, dtype=config.dtype, compile=config.compile,
                                check_cancel=check_cancel)
    if config.batch_size is None:
        config = replace(config, batch_size=default_batch_size(wrapper.device, wrapper.dtype, models.config.image_size))
    inputs = [source for source in (image, audio) if is_audio_path(source)]
    if out_path is not None:
        out_path = checked_output_file(out_path, "out_path", suffixes=(".mp4",), inputs=inputs)
    if config.save_intermediates is not None:
        checked_output_folder(config.save_intermediates, "save_intermediates")

    say("preparing the source image")
    rgb = timer.run("image", load_image, image)
    what = repr(str(image)) if isinstance(image, (str, Path)) else None
    crop = timer.run("face detection", resolve_crop, rgb, config, say, what)
    image_size = models.config.image_size
    source, crop_info = timer.run("image", prepare_source_image, rgb, crop, image_size)
    writer = None
    if out_path is not None:  # checked before the long stages: a bad name fails at once
        width, height = _output_size(crop_info if config.paste_back else None, image_size)
        writer = VideoWriter(out_path, width, height, crf=config.crf, settings=_settings(config, pose_curve))
    if isinstance(audio, AudioFeatures):
        features, soundtrack = audio, None
    else:
        if features is None:
            say("extracting audio features")
            features = timer.run("features", extract_features, audio, sample_rate, cancel_point)
        soundtrack = load_soundtrack(audio, sample_rate) if out_path is not None else None
    num_frames = require_frames(features)

    if pose_curve is None:
        say(f"predicting head poses for {num_frames} frames")
        poses = timer.run("poses", wrapper.predict_poses, source, features, cancel_point)
    else:
        poses = pose_curve.for_video(num_frames)
    kp_source = timer.run("source keypoints", wrapper.source_keypoints, source)

    saver = None
    if config.save_intermediates is not None:
        saver = IntermediateWriter(config.save_intermediates, num_frames, kp_source.value.shape[1], image_size)
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
    if crop_info is not None and config.paste_back:
        frames = timer.time("paste-back", _paste_all(frames, crop_info, config.feather, wrapper.device))
    if config.watermark:
        frames = (watermark_frames(batch, config.watermark) for batch in frames)
    if on_frames is not None:
        frames = _tap(frames, on_frames)

    try:
        result = GenerateResult(num_frames=num_frames, poses=poses)
        if writer is None:
            result.frames = _collect(frames, num_frames)
        else:
            writer.soundtrack = soundtrack
            # Encoded on a background thread while the next batch renders; "encode" is the time the rendering
            # waited for the encoder (its own time is in "encoder thread").
            with writer, BackgroundConsumer(writer.write) as encoder:
                for batch in frames:
                    timer.run("encode", encoder.put, batch)
            timer.seconds["encoder thread"] = encoder.seconds
            result.out_path = writer.path
    except BaseException:
        if saver is not None:  # partly filled arrays never appear under their final names
            saver.abort()
        raise
    if saver is not None:
        saver.close()
    result.seconds = dict(timer.seconds)
    return result


def crop_mode(crop) -> str | None:
    """"auto" or "none" when `crop` names a mode (None means "none"); None when it is a box."""
    if crop is None:
        return "none"
    if isinstance(crop, str) and crop.strip().lower() in CROP_MODES:
        return crop.strip().lower()
    return None


def resolve_crop(image, config: PipelineConfig, log: Callable[[str], None] | None = None,
                 what: str | None = None) -> CropBox | None:
    """The crop box `config.crop` asks for: detected for "auto", None for "none", the given box otherwise."""
    mode = crop_mode(config.crop)
    if mode == "none":
        return None
    if mode is None:
        return CropBox.coerce(config.crop)
    say = log or (lambda message: None)
    device = config.device if config.device is not None else "cpu"
    detector = load_face_detector(config.face_detector, models_dir=config.face_models_dir, device=device, log=say)
    found = face_crop(image, detector=detector, face_index=config.face_index, scale=config.crop_scale,
                      offset=config.crop_offset, what=what)
    x, y, w, h = found.box.to_list()
    say(f"face found by {found.detector_info} (score {found.face.score:.2f}); crop {x},{y},{w},{h}"
        + (" (padded past the edge)" if not found.box.inside(*found.image_size) else ""))
    return found.box


def checked_config(config) -> PipelineConfig:
    """The config, or Audio2HeadError naming the setting that has a wrong type or value."""
    if config is None:
        return PipelineConfig()
    if not isinstance(config, PipelineConfig):
        raise Audio2HeadError(f"config must be a PipelineConfig, got a {type(config).__name__}")
    if config.batch_size is not None:
        checked_batch_size(config.batch_size)
    checked_compile_mode(config.compile)
    if crop_mode(config.crop) is None:
        CropBox.coerce(config.crop)
    feather = config.feather
    if isinstance(feather, bool) or not isinstance(feather, (int, float)) or not 0.0 <= feather <= 0.5:
        raise Audio2HeadError(f"feather must be a number from 0 to 0.5 (a fraction of the crop box's shorter side), "
                              f"got {feather!r}")
    crf = config.crf
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= MAX_CRF:
        raise Audio2HeadError(f"crf must be a whole number from 0 (lossless) to {MAX_CRF} (worst), got {crf!r}")
    watermark = checked_watermark(config.watermark)
    if watermark != config.watermark:
        config = replace(config, watermark=watermark)
    if config.save_intermediates is not None and not isinstance(config.save_intermediates, (str, Path)):
        raise Audio2HeadError(f"save_intermediates must be a folder path, got a "
                              f"{type(config.save_intermediates).__name__}")
    return config


def _settings(config: PipelineConfig, pose_curve: PoseCurve | None) -> dict:
    """The settings recorded in the MP4's description tag."""
    crop = config.crop if crop_mode(config.crop) is not None else ",".join(map(str, CropBox.coerce(config.crop)
                                                                                .to_list()))
    return {"dtype": str(config.dtype).replace("torch.", ""), "batch_size": config.batch_size, "crop": crop,
            "paste_back": config.paste_back, "crf": config.crf,
            "pose": "curve" if pose_curve is not None else "predicted", "watermark": config.watermark}


def _output_size(crop_info: CropInfo | None, image_size: int) -> tuple[int, int]:
    if crop_info is None:
        return image_size, image_size
    return even_size(crop_info.full_image.shape[1], crop_info.full_image.shape[0])


def _paste_all(frames: Iterator[np.ndarray], crop_info: CropInfo, feather: float,
               device: torch.device) -> Iterator[np.ndarray]:
    """Paste-back on the models' GPU when there is one (the frames go there and back), else on the CPU."""
    on_gpu = device.type == "cuda"
    for batch in frames:
        yield paste_back(batch, crop_info, feather, device=device if on_gpu else None)


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
