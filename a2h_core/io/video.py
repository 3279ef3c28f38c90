"""MP4 writing with PyAV: H.264 video at exactly 25 fps and AAC sound trimmed to the video, written atomically.

Frames arrive batch by batch (the pipeline streams them) and are encoded at once; the soundtrack is interleaved as
the video advances, so memory does not grow with the clip length. The file is written under a temporary name and
renamed only when complete: an interrupted run never leaves a file that looks finished. Every file is marked as
synthetic in its container metadata (`a2h_core.io.mark`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np

from a2h_core.audio.soundtrack import Soundtrack
from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.io.mark import synthetic_metadata
from a2h_core.paths import checked_output_file, remove_quietly, temporary_name

MAX_CRF = 51  # x264's worst quality; 0 is lossless


class VideoWriter:
    """Context manager writing RGB uint8 frames (and optionally a soundtrack) to an MP4.

    with VideoWriter("out.mp4", width, height, soundtrack=load_soundtrack("speech.wav")) as writer:
        writer.write(frames)      # [B, H, W, 3] uint8, any number of calls
    The file appears under its final name only when the block ends without an exception. Its `comment` and
    `description` tags say it is synthetic and made by Audio2Head; `settings` (name -> value) are added to the
    description.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, soundtrack: Soundtrack | None = None,
                 crf: int = 18, settings: Mapping | None = None):
        if width % 2 or height % 2:
            raise Audio2HeadError(f"H.264 needs an even frame size, got {width}x{height}")
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= MAX_CRF:
            raise Audio2HeadError(f"crf must be a whole number from 0 (lossless) to {MAX_CRF} (worst), got {crf!r}")
        # Checked now, before any frame is rendered: a folder, a read-only place or a bad name fails at once.
        self.path = checked_output_file(path, "output", suffixes=(".mp4",))
        self.width, self.height, self.crf = width, height, crf
        self._temp_path = temporary_name(self.path)
        self.soundtrack = soundtrack  # the audio track (trimmed to the frames written), or None for a silent video
        self._sound_buffer: list[np.ndarray] = []  # decoded samples not yet encoded
        self._frames_written = 0
        self._samples_written = 0
        self._container = None
        self.metadata = synthetic_metadata(settings)

    def __enter__(self) -> VideoWriter:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self._temp_path), mode="w", format="mp4")
        except OSError as exc:
            raise Audio2HeadError(f"output {str(self.path)!r}: cannot write there ({exc.strerror or exc})") from None
        self._container.metadata.update(self.metadata)
        self._video = self._container.add_stream("libx264", rate=Fraction(FPS, 1))
        self._video.width, self._video.height = self.width, self.height
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(self.crf)}
        self._audio = None
        if self.soundtrack is not None:
            self._audio = self._container.add_stream("aac", rate=self.soundtrack.sample_rate)
            self._audio.layout = "mono" if self.soundtrack.channels == 1 else "stereo"
        return self

    def write(self, frames: np.ndarray) -> None:
        """Encode a batch of [B, H, W, 3] uint8 RGB frames, and the sound up to the end of the batch."""
        import av

        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise Audio2HeadError(f"expected uint8 frames [B, {self.height}, {self.width}, 3], got {frames.dtype} "
                                  f"{tuple(frames.shape)}")
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = self._frames_written
            self._container.mux(self._video.encode(video_frame))
            self._frames_written += 1
        self._write_sound_until(self._frames_written)

    def _write_sound_until(self, frame_count: int) -> None:
        """Encode the sound up to the end of frame `frame_count`; the sound never runs past the video."""
        import av

        if self._audio is None:
            return
        rate = self.soundtrack.sample_rate
        end = round(frame_count * rate / FPS)
        buffered = sum(piece.shape[1] for piece in self._sound_buffer)
        for piece in self.soundtrack.chunks:
            self._sound_buffer.append(piece)
            buffered += piece.shape[1]
            if self._samples_written + buffered >= end:
                break
        if not buffered or self._samples_written >= end:
            return
        samples = np.concatenate(self._sound_buffer, axis=1)
        take = min(end - self._samples_written, samples.shape[1])
        self._sound_buffer = [samples[:, take:]] if take < samples.shape[1] else []
        audio_frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, :take]), format="fltp",
                                                 layout=self._audio.layout.name)
        audio_frame.sample_rate = rate
        audio_frame.pts = self._samples_written
        self._container.mux(self._audio.encode(audio_frame))
        self._samples_written += take

    def __exit__(self, exc_type, exc, traceback) -> None:
        container, self._container = self._container, None
        try:
            if exc_type is None:
                if self._frames_written == 0:
                    raise Audio2HeadError("no frames were generated, so no video was written")
                self._write_sound_until(self._frames_written)
                container.mux(self._video.encode(None))
                if self._audio is not None:
                    container.mux(self._audio.encode(None))
            container.close()
        except BaseException:
            _remove_quietly(self._temp_path)
            raise
        if exc_type is None:
            try:
                os.replace(self._temp_path, self.path)
            except OSError as exc:
                _remove_quietly(self._temp_path)
                raise Audio2HeadError(f"output {str(self.path)!r} could not be written "
                                      f"({exc.strerror or type(exc).__name__})") from None
        else:
            _remove_quietly(self._temp_path)


_remove_quietly = remove_quietly


def read_video_frames(path: str | os.PathLike, max_frames: int | None = None,
                      max_side: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video file (any container and codec FFmpeg knows) -> frames [N, H, W, 3] uint8 RGB and its fps.

    max_frames: stop after this many frames. max_side: shrink frames whose longer side exceeds it (keeps memory
    bounded for long high-resolution clips; the aspect ratio is kept). Rotation metadata is not applied.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise Audio2HeadError(f"video {str(path)!r} does not exist: check the path")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise Audio2HeadError(f"{str(path)!r} has no video stream: give a video file (mp4, mov, webm, ...)")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else float(FPS)
            for frame in container.decode(stream):
                width, height = frame.width, frame.height
                if max_side and max(width, height) > max_side:
                    factor = max_side / max(width, height)
                    width, height = max(2, round(width * factor)), max(2, round(height * factor))
                    frame = frame.reformat(width=width, height=height)
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Audio2HeadError:
        raise
    except Exception as exc:  # av.error.* for unreadable files
        raise Audio2HeadError(f"cannot read the video {str(path)!r} ({type(exc).__name__}: {exc}): give a video "
                              "file FFmpeg can decode (mp4, mov, mkv, webm, avi)") from None
    if not frames:
        raise Audio2HeadError(f"the video {str(path)!r} has no frames")
    return np.stack(frames), fps
