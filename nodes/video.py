"""The VIDEO output of the all-in-one and Generator nodes, and their IMAGE output filled from the same stream.

Frames are encoded batch by batch into an MP4 (H.264 + AAC, marked as synthetic: `a2h_core.io.video.VideoWriter`)
in ComfyUI's temp folder, and the node returns it as a file-backed core VIDEO (`VideoFromFile`). Core Save Video
then copies its packets into the output folder without decoding, so memory stays flat however long the clip is.
The IMAGE output (every frame in float32) is what grows with the length: it can be reduced to the first frame, and
a warning points to the VIDEO output when it would be large.
"""
from __future__ import annotations

import itertools
import uuid
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from comfy_api.latest import InputImpl, io

from a2h_core.audio.soundtrack import Soundtrack
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.io.video import VideoWriter

from . import comfy
from .common import frames_to_image, log

FRAMES_ALL, FRAMES_FIRST = "all", "first only"
FRAMES_WARNING_BYTES = 2 * 1024 ** 3  # an IMAGE output above this size is warned about (points to the VIDEO output)
TEMP_PREFIX = "audio2head_"  # name of the MP4s written to ComfyUI's temp folder


def frames_input() -> io.Combo.Input:
    """How much of the video the IMAGE output holds (optional, so that saved workflows keep their widget order)."""
    return io.Combo.Input(
        "frames_output", options=[FRAMES_ALL, FRAMES_FIRST], default=FRAMES_ALL, optional=True,
        tooltip="What the frames (IMAGE) output holds. all: every frame, for nodes that post-process frames (float32: "
                "about 1.2 GB per minute at 256x256, far more at a full picture's size). first only: just the first "
                "frame as a preview; for long clips, connect the video output to Save Video instead: it is streamed "
                "to disk, so memory stays flat.")


def video_output() -> io.Video.Output:
    return io.Video.Output(
        display_name="video",
        tooltip="The MP4 (H.264, 25 fps, with the sound trimmed to the frames), streamed to ComfyUI's temp folder "
                "while rendering. Connect it to Save Video: it is copied without re-encoding.")


def temp_video_path() -> Path:
    """A new, unused MP4 name in ComfyUI's temp folder (emptied when the server starts)."""
    return comfy.temp_directory() / f"{TEMP_PREFIX}{uuid.uuid4().hex}.mp4"


def file_video(path: Path):
    """The core VIDEO object backed by the MP4 at `path`."""
    return InputImpl.VideoFromFile(str(path))


def write_streamed(batches: Iterable[np.ndarray], num_frames: int, frames_output: str = FRAMES_ALL,
                   soundtrack: Soundtrack | None = None,
                   settings: Mapping | None = None) -> tuple[torch.Tensor, object]:
    """Encode uint8 frame batches [B, H, W, 3] into a new MP4 in the temp folder as they arrive, keeping what
    `frames_output` asks for: (IMAGE output, VIDEO output)."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        raise Audio2HeadError("no frames were generated, so no video was written")
    keeper = FrameKeeper(num_frames, frames_output)
    path = temp_video_path()
    with VideoWriter(path, first.shape[2], first.shape[1], soundtrack=soundtrack, settings=settings) as writer:
        for batch in itertools.chain([first], batches):
            writer.write(batch)
            keeper(batch)
    return keeper.image(), file_video(path)


class FrameKeeper:
    """Collects streamed frame batches into the IMAGE output: every frame (allocated once, at the full length, in
    float32 with no uint8 copy) or only the first. Pass it as the batch callback; `image()` gives the result."""

    def __init__(self, num_frames: int, frames_output: str = FRAMES_ALL):
        if frames_output not in (FRAMES_ALL, FRAMES_FIRST):
            raise Audio2HeadError(f"input 'frames_output': {frames_output!r} is not a choice; choose "
                                  f"'{FRAMES_ALL}' or '{FRAMES_FIRST}'")
        self.capacity = num_frames if frames_output == FRAMES_ALL else 1
        self.num_frames = num_frames
        self._image: torch.Tensor | None = None
        self._done = 0

    def __call__(self, batch: np.ndarray) -> None:
        if self._image is None:
            warn_if_large(self.capacity, batch.shape[2], batch.shape[1])
            self._image = torch.empty((self.capacity, *batch.shape[1:]), dtype=torch.float32)
        take = min(len(batch), self.capacity - self._done)
        if take > 0:
            self._image[self._done:self._done + take] = frames_to_image(batch[:take])
            self._done += take

    def image(self) -> torch.Tensor:
        if self._image is None:
            raise Audio2HeadError("no frames were generated")
        return self._image[:self._done]


def warn_if_large(num_frames: int, width: int, height: int) -> None:
    """Warn (in the console and as an A2HWarning) when an IMAGE of these frames exceeds FRAMES_WARNING_BYTES."""
    size = num_frames * width * height * 3 * 4
    if size <= FRAMES_WARNING_BYTES:
        return
    message = (f"the frames output will hold {num_frames} frames of {width}x{height}: {size / 1024 ** 3:.1f} GB of "
               f"memory. For long clips set 'frames_output' to '{FRAMES_FIRST}' and connect the video output to Save "
               "Video (streamed to disk: memory stays flat)")
    warnings.warn(message, A2HWarning, stacklevel=3)
    log.warning(message)
