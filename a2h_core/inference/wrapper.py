"""Model operations of Audio2Head, stage by stage (the LivePortrait `live_portrait_wrapper` split).

`Audio2HeadWrapper` runs the four networks on one device in one compute dtype; it knows nothing of files, videos
or progress bars beyond a `progress(done, total)` callback. The orchestration (streaming a whole clip into an MP4)
lives in `pipeline.py`; the ComfyUI nodes call these stages one by one.

Frame assembly follows the original's inference loop exactly:
- the motion field generator sees windows of 64 frames that start every 32 frames;
- the first window gives frames [0, 48) of the video, every later window the frames of its rows [16, 48);
- rows past the end of the clip get zero audio and the curve's last pose. They still influence the window's other
  rows, because the generator mixes time, so the last window's padding is reproduced, not trimmed;
- frame i uses pose i of the curve (a predicted curve has one pose more than the video has frames);
- driving keypoints are absolute: the generator warps with J_src * inv(J_drv), no relative motion;
- frames are (prediction * 255) truncated to uint8.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FEATURE_ROWS_PER_FRAME, FPS, MAX_BATCH_SIZE, NUM_AUDIO_FEATURES
from a2h_core.device import check_compute_dtype, parse_device
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.acceleration import checked_compile_mode, default_windows_per_pass, inference_networks
from a2h_core.modules.blocks import DownBlock2d, DownBlock3d, ResBlock, SameBlock2d, UpBlock2d, UpBlock3d
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.pose_predictor import denormalize_poses
from a2h_core.pose import PoseCurve
from a2h_core.pose.render import render_pose_boxes

Progress = Callable[[int, int], None]  # progress(done, total); may raise to cancel (ComfyUI's ProgressBar does)


@dataclass(frozen=True)
class MotionWindow:
    """One pass of the motion field generator: video frames start + 0 .. start + seq_len - 1."""

    start: int  # video frame of the window's first row
    keep_start: int  # first row whose keypoints go into the video
    keep_end: int  # one past the last row that goes into the video

    @property
    def first_kept_frame(self) -> int:
        return self.start + self.keep_start

    @property
    def kept_frames(self) -> int:
        return self.keep_end - self.keep_start


def plan_windows(num_frames: int, seq_len: int) -> list[MotionWindow]:
    """The original's windows: start every seq_len/2 frames; keep rows [0, 3/4) of the first, [1/4, 3/4) after.

    Only windows that contribute frames are listed (the original stops once it has every frame).
    """
    step, margin, keep_end = seq_len // 2, seq_len // 4, seq_len // 4 * 3
    windows = []
    start = 0
    while True:
        keep_start = 0 if start == 0 else margin
        if start + keep_start >= num_frames:
            break
        windows.append(MotionWindow(start, keep_start, min(keep_end, num_frames - start)))
        start += step
    return windows


def require_frames(features: AudioFeatures) -> int:
    """The video frame count of the features; a clear error when they do not make a single frame."""
    if not isinstance(features, AudioFeatures):
        raise Audio2HeadError(f"features must be AudioFeatures (from extract_features, or AudioFeatures(array) for a "
                              f"[rows, {NUM_AUDIO_FEATURES}] array), got a {type(features).__name__}")
    if features.num_frames < 1:
        raise Audio2HeadError(
            f"the audio gives {len(features.values)} feature rows, less than one video frame "
            f"({FEATURE_ROWS_PER_FRAME} rows = {1000 // FPS} ms): give a longer recording"
        )
    return features.num_frames


def frame_audio(features: AudioFeatures) -> np.ndarray:
    """Feature rows grouped per video frame: [frames, 4, 41] float32 (a trailing partial frame is dropped)."""
    frames = require_frames(features)
    rows = np.asarray(features.values[: frames * FEATURE_ROWS_PER_FRAME], dtype=np.float32)
    return rows.reshape(frames, FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES)


def frame_poses(poses: PoseCurve, num_frames: int) -> np.ndarray:
    """Poses for frames 0 .. num_frames, [num_frames + 1, 6] float32: pose i for frame i, the curve's last pose held
    past its end. Row num_frames is the pose of every padding row after the clip (the original's `pose[-1]`).

    The curve must be at the model's 25 fps: `PoseCurve.for_video` makes it so, and every caller applies it."""
    if not isinstance(poses, PoseCurve):
        raise Audio2HeadError(f"poses must be a PoseCurve, got {type(poses).__name__}")
    if poses.fps != FPS:
        raise Audio2HeadError(f"the pose curve is at {poses.fps:g} fps but the model works at {FPS}: pass "
                              "curve.for_video(num_frames), which resamples it")
    return np.asarray(poses.pose_for_frames(num_frames + 1), dtype=np.float32)


def window_inputs(audio: np.ndarray, poses: np.ndarray, window: MotionWindow,
                  seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Audio [seq_len, 4, 41] and poses [seq_len, 6] of one window: zeros and the end pose past the clip."""
    num_frames = len(audio)
    frames = np.arange(window.start, window.start + seq_len)
    inside = frames < num_frames
    window_audio = np.zeros((seq_len, *audio.shape[1:]), dtype=np.float32)
    window_audio[inside] = audio[frames[inside]]
    window_poses = poses[np.minimum(frames, num_frames)]
    return window_audio, window_poses


# Where the motion field and the generator check for Cancel inside a pass: their FOMM blocks, dozens per pass.
_CANCELLABLE_BLOCKS = (DownBlock2d, UpBlock2d, SameBlock2d, ResBlock, DownBlock3d, UpBlock3d)


class Audio2HeadWrapper:
    """Runs the Audio2Head networks on a device, in a compute dtype, one pipeline stage per method.

    `source` arguments are the network input from `image.prepare_source_image`: [1, 3, S, S] float32 in 0..1, S the
    model's `image_size` (256 published; another size is resized to it).
    device: where to compute (the models are moved there); None keeps the models' device.
    dtype: compute precision; below the weights' dtype (e.g. bf16 with float32 weights) the networks run under
    autocast. None computes in the weights' dtype. Keypoints come back as float32 on `device`.
    compile: "off" (default), "default" or "max-autotune": the generator under torch.compile (falls back to eager,
    with a warning, where it cannot compile).
    windows_per_pass: motion-field windows computed in one pass (None: `acceleration.default_windows_per_pass`).
    check_cancel(): called before every block of the motion field and the generator (dozens of times per pass), so
    that a pass taking seconds on a CPU can still be cancelled within a fraction of a second; an exception raised
    in it cancels. Progress callbacks only come between passes. A compiled generator has no such points inside.

    The networks run as `acceleration.inference_networks` prepares them: batch norm folded into the convolutions
    and, on CPU and CUDA, the generator channels-last (its 2-D convolutions run faster so in oneDNN and cuDNN).
    `models` keeps its layout and stays trainable.
    """

    def __init__(self, models: Audio2HeadModels, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, compile: str | None = "off",
                 windows_per_pass: int | None = None, check_cancel: Callable[[], None] | None = None):
        if not isinstance(models, Audio2HeadModels):
            raise Audio2HeadError(f"models must be the Audio2HeadModels from load_models(...), got a "
                                  f"{type(models).__name__}")
        parameter = next(models.parameters())
        self.device = parse_device(device) if device is not None else parameter.device
        # The reduced-precision rule (a2h_core.device): checked before the models are moved or anything runs.
        self.dtype = check_compute_dtype(self.device, dtype if dtype is not None else parameter.dtype)
        compile_mode = checked_compile_mode(compile)
        self.models = models.eval()
        if parameter.device != self.device:
            models.to(self.device)
        self.seq_len = models.config.motion_field.seq_len
        self.image_size = models.config.image_size
        self._channels_last = self.device.type in ("cpu", "cuda")
        self.networks = inference_networks(models, self._channels_last, compile_mode)
        self.windows_per_pass = (default_windows_per_pass(self.device) if windows_per_pass is None
                                 else _checked_windows(windows_per_pass))
        # The pose-box rasteriser projects in float64, which MPS lacks: draw on the CPU there.
        self._box_device = torch.device("cpu") if self.device.type == "mps" else self.device
        # Frames come back from a GPU through a pinned (page-locked) buffer, copied asynchronously.
        self._pinned = self.device.type == "cuda"
        self.compiled = compile_mode != "off"
        self.check_cancel = check_cancel

    # ---------------------------------------------------------------------------------------------------------- utils
    def _compute(self):
        """Inference mode, plus autocast when the compute dtype is lower than the weights' dtype."""
        weight_dtype = next(self.models.parameters()).dtype
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.dtype != weight_dtype:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.dtype))
        return stack

    @contextlib.contextmanager
    def _cancel_points(self, network: torch.nn.Module):
        """check_cancel before each block of `network` while the context lasts (hooks removed after: the view is
        shared by the wrappers alive at the same time). None inside a compiled generator (hooks break its graph)."""
        if self.check_cancel is None or (self.compiled and network is self.networks.generator):
            yield
            return
        check = self.check_cancel
        handles = [module.register_forward_pre_hook(lambda module, args: check())
                   for module in network.modules() if isinstance(module, _CANCELLABLE_BLOCKS)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _input(self, tensor: torch.Tensor | np.ndarray) -> torch.Tensor:
        """A tensor on the model's device, in the weights' dtype (autocast handles lower compute precision)."""
        tensor = torch.as_tensor(tensor)
        return tensor.to(device=self.device, dtype=next(self.models.parameters()).dtype)

    def _source(self, source: torch.Tensor) -> torch.Tensor:
        if not isinstance(source, torch.Tensor) or source.shape[0] != 1 or source.dim() != 4 or source.shape[1] != 3:
            shape = tuple(source.shape) if isinstance(source, torch.Tensor) else type(source).__name__
            raise Audio2HeadError(
                f"source must be the prepared [1, 3, S, S] image tensor, got {shape}: use prepare_source_image")
        if source.shape[2:] != (self.image_size, self.image_size):
            # e.g. a 256 crop from the ComfyUI nodes given to a 512 model: resized (anti-aliased when shrinking)
            source = torch.nn.functional.interpolate(source.float(), size=(self.image_size, self.image_size),
                                                     mode="bilinear", align_corners=False,
                                                     antialias=source.shape[-1] > self.image_size).clamp(0, 1)
        return self._input(source)

    # --------------------------------------------------------------------------------------------------------- stages
    def predict_poses(self, source: torch.Tensor, features: AudioFeatures,
                      progress: Progress | None = None) -> PoseCurve:
        """Head poses from the source image and the audio: num_frames + 1 poses (pose 0 from the image alone).
        progress(done, total) counts frames (see HeadPosePredictor.forward); an exception raised in it cancels."""
        audio = torch.from_numpy(frame_audio(features)).unsqueeze(0)
        with self._compute():
            normalised = self.networks.audio2pose(self._source(source), self._input(audio), progress=progress)
        # De-normalised on the CPU in float32, as the original does in numpy.
        poses = denormalize_poses(normalised[0].float().cpu().numpy())
        return PoseCurve(values=poses.astype(np.float64), fps=float(FPS))

    def source_keypoints(self, source: torch.Tensor) -> Keypoints:
        """Keypoints and Jacobians of the source image, N = 1, float32 on the model's device."""
        with self._compute():
            keypoints = self.networks.kp_detector(self._source(source))
        return keypoints.to(dtype=torch.float32)

    def frame_keypoints(self, frames: torch.Tensor) -> Keypoints:
        """Keypoints and Jacobians of frames [N, 3, S, S] in 0..1 (N_D on each; evaluation's KE reference),
        float32 on the model's device."""
        with self._compute():
            keypoints = self.networks.kp_detector(self._input(frames))
        return keypoints.to(dtype=torch.float32)

    def iter_driving_keypoints(self, source: torch.Tensor, features: AudioFeatures, poses: PoseCurve,
                               progress: Progress | None = None,
                               on_pose_boxes: Callable[[int, torch.Tensor], None] | None = None
                               ) -> Iterator[Keypoints]:
        """Driving keypoints window by window, in video order: each item holds that window's kept frames.

        on_pose_boxes(first_frame, boxes [n, 256, 256] uint8 0/255) receives the pose images of the kept frames
        (for --save-intermediates). progress(done, total) counts frames.
        """
        audio = frame_audio(features)
        num_frames = len(audio)
        all_poses = frame_poses(poses, num_frames)
        source = self._source(source)
        windows = plan_windows(num_frames, self.seq_len)
        done = 0
        for first in range(0, len(windows), self.windows_per_pass):  # several windows per pass on a GPU
            group = windows[first:first + self.windows_per_pass]
            inputs = [window_inputs(audio, all_poses, window, self.seq_len) for window in group]
            window_poses = torch.from_numpy(np.concatenate([window_poses for _, window_poses in inputs]))
            boxes = render_pose_boxes(window_poses, size=self.image_size, device=self._box_device)
            boxes = boxes.view(len(group), self.seq_len, *boxes.shape[1:])
            if on_pose_boxes is not None:
                for window, window_boxes in zip(group, boxes):
                    kept = window_boxes[window.keep_start:window.keep_end].to(torch.uint8).cpu()
                    on_pose_boxes(window.first_kept_frame, kept)
            window_audio = np.stack([window_audio for window_audio, _ in inputs])
            with self._compute(), self._cancel_points(self.networks.audio2kp):
                keypoints = self.networks.audio2kp(self._input(window_audio), self._input(boxes), source)
            for index, window in enumerate(group):  # rows of window `index` start at index * seq_len
                rows = index * self.seq_len
                yield keypoints[rows + window.keep_start:rows + window.keep_end].to(dtype=torch.float32)
                done += window.kept_frames
                if progress is not None:
                    progress(done, num_frames)

    def driving_keypoints(self, source: torch.Tensor, features: AudioFeatures, poses: PoseCurve,
                          progress: Progress | None = None) -> Keypoints:
        """Driving keypoints of every video frame, [num_frames, K, 2] (+ Jacobians)."""
        return Keypoints.cat(list(self.iter_driving_keypoints(source, features, poses, progress)))

    def render_frames(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints | Iterable[Keypoints],
                      batch_size: int = 8, progress: Progress | None = None,
                      total: int | None = None) -> Iterator[np.ndarray]:
        """Frames [B, 256, 256, 3] uint8, batch_size at a time (the last batch may be smaller).

        kp_driving is all frames' keypoints, or an iterable of consecutive chunks (e.g. iter_driving_keypoints) to
        stream. The source encoding is computed once. progress(done, total) counts frames; `total` is needed for
        progress when kp_driving is an iterable.
        """
        batch_size = checked_batch_size(batch_size)
        check_keypoint_pair(kp_source, kp_driving)
        if isinstance(kp_driving, Keypoints):
            total = len(kp_driving)
            kp_driving = [kp_driving]
        source = self._source(source)
        if self._channels_last:
            source = source.contiguous(memory_format=torch.channels_last)
        kp_source = kp_source.to(device=self.device, dtype=source.dtype)
        with self._compute(), self._cancel_points(self.networks.generator):
            source_features = self.networks.generator.encode_source(source)
        done = 0
        pending = None  # on a GPU: the previous batch, copying to the host while the next one is computed
        for batch in _rebatch(kp_driving, batch_size):
            count = len(batch)
            if self.compiled and count < batch_size:  # one fixed shape for the compiled generator (no recompiling)
                batch = Keypoints.cat([batch, *[batch[-1]] * (batch_size - count)])
            with self._compute(), self._cancel_points(self.networks.generator):
                prediction = self.networks.generator(
                    source, source_features, kp_source, batch.to(device=self.device, dtype=source.dtype)
                )["prediction"][:count]
            # float32 * 255 truncated to uint8, as the original's numpy astype.
            frames = (prediction.float() * 255).to(torch.uint8).permute(0, 2, 3, 1)
            if self._pinned:  # hand over the previous batch while this one computes and copies
                current = self._to_host(frames)
                if pending is not None:
                    done = yield from self._hand_over(pending, done, total, progress)
                pending = current
            else:
                done = yield from self._hand_over((frames.cpu(), None), done, total, progress)
        if pending is not None:
            yield from self._hand_over(pending, done, total, progress)

    @staticmethod
    def _to_host(frames: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event]:
        """Start copying GPU frames into a pinned host buffer (from PyTorch's caching host allocator, so buffers
        are reused); returns the buffer and the event that marks the copy's end."""
        host = torch.empty(frames.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(frames, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        return host, copied

    @staticmethod
    def _hand_over(pending: tuple, done: int, total: int | None, progress: Progress | None):
        """Yield one batch of host frames once its copy has finished; returns the frames done so far."""
        frames, copied = pending
        if copied is not None:
            copied.synchronize()
        done += len(frames)
        if progress is not None:
            progress(done, total if total is not None else done)
        yield frames.numpy()
        return done


def checked_batch_size(batch_size) -> int:
    """A whole number of frames per generator pass, 1 .. MAX_BATCH_SIZE."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or not 1 <= int(batch_size) <= MAX_BATCH_SIZE:
        shown = repr(batch_size) if isinstance(batch_size, (int, float, str)) else f"a {type(batch_size).__name__}"
        raise Audio2HeadError(f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE}, got {shown}")
    return int(batch_size)


def _checked_windows(windows_per_pass) -> int:
    if isinstance(windows_per_pass, bool) or not isinstance(windows_per_pass, (int, np.integer)) \
            or not 1 <= int(windows_per_pass) <= 64:
        raise Audio2HeadError(f"windows_per_pass must be a whole number from 1 to 64, got {windows_per_pass!r}")
    return int(windows_per_pass)


def checked_keypoints(keypoints, what: str) -> Keypoints:
    """`keypoints` if it is a Keypoints object, else Audio2HeadError naming the argument."""
    if not isinstance(keypoints, Keypoints):
        raise Audio2HeadError(f"{what} must be Keypoints (from source_keypoints or driving_keypoints), got a "
                              f"{type(keypoints).__name__}")
    return keypoints


def check_keypoint_pair(kp_source, kp_driving, source_name: str = "kp_source",
                        driving_name: str = "kp_driving") -> None:
    """Source keypoints hold one row; a pair wired the wrong way round (one row against many) is named as such."""
    checked_keypoints(kp_source, source_name)
    if isinstance(kp_driving, Keypoints) and len(kp_source) > 1 and len(kp_driving) == 1:
        raise Audio2HeadError(
            f"{source_name} holds {len(kp_source)} rows and {driving_name} 1: the two look swapped. Source keypoints "
            f"come from the portrait (1 row, Keypoint Detector / source_keypoints); driving keypoints have one row "
            f"per frame (Motion Field / driving_keypoints)")
    if len(kp_source) != 1:
        raise Audio2HeadError(f"{source_name} must hold the portrait's keypoints, 1 row, got {len(kp_source)} rows")
    if not isinstance(kp_driving, Keypoints) and not hasattr(kp_driving, "__iter__"):
        raise Audio2HeadError(f"{driving_name} must be Keypoints (one row per frame), got a "
                              f"{type(kp_driving).__name__}")


def _rebatch(chunks: Iterable[Keypoints], batch_size: int) -> Iterator[Keypoints]:
    """Regroup consecutive keypoint chunks of any sizes into batches of batch_size (the last may be smaller)."""
    pending: list[Keypoints] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += len(chunk)
        while count >= batch_size:
            merged = Keypoints.cat(pending)
            yield merged[:batch_size]
            rest = merged[batch_size:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield Keypoints.cat(pending)
