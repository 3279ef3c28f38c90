"""Inference speed: the networks as they run (batch norm folded, channels-last, optionally compiled), generator
batch sizes and motion-field windows per pass per device, and a background thread for the video encoder.

Defaults per device (measured on the CPU with tools/bench_levers.py; README "Speed"):
- CPU: batch norm folded, channels-last generator, no `torch.compile`, generator batch `CPU_BATCH_SIZE`, one
  motion-field window per pass;
- CUDA: the same view, generator batches sized from the free GPU memory, up to `CUDA_WINDOWS_PER_PASS` motion-field
  windows per pass, `compile="max-autotune"` on request (CUDA graphs for the fixed-shape generator). The GPU
  figures are pending a GPU (tools/bench_gpu.py measures them).
"""
from __future__ import annotations

import queue
import threading
import time
import warnings
import weakref
from collections.abc import Callable

import torch
from torch import nn

from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.modules.folding import fold_batch_norm, weights_version
from a2h_core.modules.models import Audio2HeadModels

COMPILE_MODES = ("off", "default", "max-autotune")  # torch.compile settings `compile` accepts
CPU_BATCH_SIZE = 4  # generator frames per pass on a CPU: batches 1-4 within 4 %, 1.10x batch 8 (bench_levers, quiet)
CUDA_MAX_BATCH_SIZE = 256  # cap of the free-memory rule on a GPU: beyond it the throughput no longer grows
CUDA_WINDOWS_PER_PASS = 8  # motion-field windows per pass on a GPU (each 64 frames)
# Activation memory budgeted per generator frame at 256x256 in fp32: an estimate, about twice the largest tensors
# alive at once (the 2x-upsampled 128 x 256 x 256 map, the convolution's 64 x 256 x 256 output and its ReLU: 64 MiB),
# to be replaced by the peak tools/bench_gpu.py measures on a GPU. Scaled by (image_size / 256)^2, halved in fp16/bf16.
GENERATOR_BYTES_PER_FRAME_256 = 128 * 2**20
_FREE_MEMORY_SHARE = 0.6  # share of the free GPU memory the generator batch may use
# Activation memory budgeted per 64-frame motion-field window in fp32: an estimate (the 3-D hourglass's largest
# maps, 128 x 64 x 64 x 64 upsampled and its neighbours, ~0.5 GiB), to be replaced by bench_gpu's measured peak.
MOTION_WINDOW_BYTES = 512 * 2**20
_WINDOW_MEMORY_SHARE = 0.2  # share of the free GPU memory the motion-field windows may use (taken before the generator)

# models -> (weights version, options, weak reference to the view). Both sides are weak: a view lives only while a
# wrapper runs it, so a stale view never pins the memory of weights that ComfyUI has offloaded or freed.
_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_networks(models: Audio2HeadModels, channels_last: bool, compile_mode: str = "off") -> nn.Module:
    """The networks as inference runs them: batch norm folded into the convolutions (`fold_batch_norm`), the
    generator in the channels-last layout when asked, and compiled when asked. `models` keeps its unfused layout.

    The view is reused by the wrappers alive at the same time on the same weights version; changing the weights
    (training, loading, moving) builds it again, and it is freed with the last wrapper that runs it.
    """
    key = weights_version(models)
    cached = _views.get(models)
    if cached is not None and cached[0] == key and cached[1] == (channels_last, compile_mode):
        view = cached[2]()
        if view is not None:
            return view
    view = fold_batch_norm(models.eval())
    if channels_last:
        # Only the folded convolutions are new tensors; the shared ones change layout in `models` too (same values).
        view.generator.to(memory_format=torch.channels_last)
    if compile_mode != "off":
        view.generator = compiled(view.generator, compile_mode)
    _views[models] = (weights_version(models), (channels_last, compile_mode), weakref.ref(view))
    return view


def checked_compile_mode(mode) -> str:
    if mode is None or mode is False:
        return "off"
    if mode is True:
        return "default"
    if isinstance(mode, str) and mode.strip().lower() in COMPILE_MODES:
        return mode.strip().lower()
    raise Audio2HeadError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")


def compiled(network: nn.Module, mode: str) -> nn.Module:
    """`network` under torch.compile, or `network` itself (with a warning saying why) where compiling cannot work:
    no C++ compiler for the CPU backend, no Triton for the CUDA backend, or a failure on the first call."""
    reason = compile_unavailable()
    if reason is not None:
        warnings.warn(f"compile={mode!r} ignored: {reason}; running uncompiled", A2HWarning, stacklevel=3)
        return network
    return _FallbackOnError(torch.compile(network, mode=None if mode == "default" else mode, dynamic=False),
                            network)


def compile_unavailable() -> str | None:
    """Why torch.compile cannot run here, or None when it can."""
    import shutil

    if not hasattr(torch, "compile"):
        return "this PyTorch has no torch.compile"
    if not any(shutil.which(name) for name in ("c++", "g++", "clang++", "cl")):
        return "no C++ compiler found (torch.compile's CPU backend needs one: install g++ or clang)"
    return None


class _FallbackOnError(nn.Module):
    """A compiled network that falls back to the eager one, once and for good, if compiling fails."""

    def __init__(self, compiled_network: nn.Module, eager: nn.Module):
        super().__init__()
        self.compiled_network = compiled_network
        self.eager = eager
        self.failed = False

    def __getattr__(self, name):  # encode_source and the like: the eager network's
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["eager"], name)

    def forward(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled_network(*args, **kwargs)
            except Exception as exc:  # inductor / triton / the compiler: any failure means "run eager"
                self.failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                              "running uncompiled", A2HWarning, stacklevel=2)
        return self.eager(*args, **kwargs)


def default_batch_size(device: torch.device, dtype: torch.dtype, image_size: int) -> int:
    """Generator frames per pass: CPU_BATCH_SIZE on a CPU; on a GPU as many as fit in a share of the free memory
    (at least 1, at most CUDA_MAX_BATCH_SIZE)."""
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    free, _ = torch.cuda.mem_get_info(device)
    per_frame = GENERATOR_BYTES_PER_FRAME_256 * (image_size / 256) ** 2 * (0.5 if dtype != torch.float32 else 1.0)
    return batch_for_memory(free, per_frame)


def batch_for_memory(free_bytes: float, bytes_per_frame: float) -> int:
    """Frames that fit in `_FREE_MEMORY_SHARE` of `free_bytes`, rounded down to a multiple of 8 past 8."""
    frames = int(free_bytes * _FREE_MEMORY_SHARE // bytes_per_frame)
    if frames >= 8:
        frames -= frames % 8
    return max(1, min(CUDA_MAX_BATCH_SIZE, frames))


def default_windows_per_pass(device: torch.device) -> int:
    """Motion-field windows batched into one pass: one on a CPU; on a GPU up to CUDA_WINDOWS_PER_PASS, as many as
    fit in `_WINDOW_MEMORY_SHARE` of the free memory."""
    if device.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(CUDA_WINDOWS_PER_PASS, int(free * _WINDOW_MEMORY_SHARE // MOTION_WINDOW_BYTES)))


class BackgroundConsumer:
    """Runs `consume(item)` for each `put` item on a worker thread, so that e.g. H.264 encoding overlaps the next
    batch's computation (torch and libx264 release the GIL). At most `depth` items wait; the worker's exception is
    raised again in the caller, at the next `put` or at `close`.

        with BackgroundConsumer(writer.write) as consumer:
            for batch in frames:
                consumer.put(batch)
    """

    _STOP = object()

    def __init__(self, consume: Callable, depth: int = 2):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._cancelled = False  # the caller failed: items still queued are dropped
        self.seconds = 0.0  # time spent in consume(), on the worker thread
        self._thread = threading.Thread(target=self._run, name="a2h-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._STOP:
            if self._error is None and not self._cancelled:
                start = time.perf_counter()
                try:
                    self._consume(item)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc
                self.seconds += time.perf_counter() - start

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, item) -> None:
        self._raise_error()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every item is consumed; raise the worker's exception if it had one."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> BackgroundConsumer:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller failed: stop the worker without raising over the caller's exception
            self._cancelled = True
            self._queue.put(self._STOP)
            self._thread.join()
