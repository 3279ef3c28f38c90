"""MP4 writing with PyAV: H.264 video at exactly 25 fps and AAC sound trimmed to the video, written atomically.

Frames arrive batch by batch (the pipeline streams them) and are encoded at once; the soundtrack is interleaved as
the video advances, so memory does not grow with the clip length. The file is written under a temporary name and
renamed only when complete: an interrupted run never leaves a file that looks finished.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError

# AAC encodes these rates natively; any other rate is resampled to 48 kHz.
_AAC_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_FALLBACK_RATE = 48000


class Soundtrack:
    """The audio to put in a video, handed out in pieces so that a long file is never decoded into memory at once.

    `chunks` yields [channels, n] float32 arrays at `sample_rate`; it can be consumed once.
    """

    def __init__(self, sample_rate: int, channels: int, chunks: Iterator[np.ndarray]):
        self.sample_rate = sample_rate  # samples per second, a rate AAC supports
        self.channels = channels  # 1 (mono) or 2 (stereo)
        self.chunks = chunks  # the samples, piece by piece

    def read_all(self) -> np.ndarray:
        """Every remaining sample, [channels, samples] float32."""
        pieces = list(self.chunks)
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((self.channels, 0), np.float32)


def load_soundtrack(source, sample_rate: int | None = None) -> Soundtrack:
    """The audio to put in the video, at its own level (not the features' normalised copy).

    source: a path (any format FFmpeg reads; decoded lazily while the video is written), a ComfyUI AUDIO dict, or
    a numpy/torch array ([samples] or [channels, samples]) with `sample_rate`. Mono stays mono; two or more
    channels become stereo for a file (FFmpeg's downmix) and mono for an array with more than two (the mean).
    Rates AAC cannot store are resampled to 48 kHz.
    """
    if isinstance(source, (str, os.PathLike)):
        return _file_soundtrack(Path(source))
    if isinstance(source, dict):
        if "waveform" not in source or "sample_rate" not in source:
            raise Audio2HeadError("the AUDIO dict needs 'waveform' [B, C, T] and 'sample_rate'")
        waveform = _as_numpy(source["waveform"])
        if waveform.ndim == 3:
            waveform = waveform[0]
        sample_rate = int(source["sample_rate"])
    else:
        if sample_rate is None:
            raise Audio2HeadError("an audio array needs its sample rate: pass sample_rate=...")
        waveform = _as_numpy(source)
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2:
        raise Audio2HeadError(f"audio has shape {waveform.shape}: expected [samples] or [channels, samples]")
    if np.issubdtype(waveform.dtype, np.integer):
        waveform = waveform / float(np.iinfo(waveform.dtype).max)
    waveform = np.nan_to_num(waveform.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if waveform.shape[0] > 2:
        waveform = waveform.mean(axis=0, keepdims=True)
    sample_rate = int(sample_rate)
    if sample_rate not in _AAC_SAMPLE_RATES:
        waveform, sample_rate = _resample(waveform, sample_rate, _FALLBACK_RATE), _FALLBACK_RATE
    # One-second views: the writer takes what each batch of frames needs without copying the rest.
    pieces = (waveform[:, start:start + sample_rate] for start in range(0, waveform.shape[1], sample_rate))
    return Soundtrack(sample_rate, waveform.shape[0], pieces)


def _as_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().float().numpy()
    return np.asarray(array)


def _file_soundtrack(path: Path) -> Soundtrack:
    import av

    if not path.is_file():
        raise Audio2HeadError(f"audio file {str(path)!r} does not exist: check the path")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise Audio2HeadError(f"{str(path)!r} has no audio stream: give a file with sound")
            codec = container.streams.audio[0].codec_context
            rate, channels = codec.sample_rate, min(codec.layout.nb_channels, 2)
    except av.FFmpegError as exc:
        raise Audio2HeadError(f"cannot decode the audio file {str(path)!r} ({exc}): give a wav, flac, mp3, m4a or ogg") from None
    if rate not in _AAC_SAMPLE_RATES:
        rate = _FALLBACK_RATE
    return Soundtrack(rate, channels, _decode_lazily(path, rate, channels))


def _decode_lazily(path: Path, rate: int, channels: int) -> Iterator[np.ndarray]:
    import av

    resampler = av.AudioResampler(format="fltp", layout="mono" if channels == 1 else "stereo", rate=rate)
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.audio[0]):
                for piece in resampler.resample(frame):
                    yield piece.to_ndarray()
            for piece in resampler.resample(None):
                yield piece.to_ndarray()
    except av.FFmpegError as exc:
        raise Audio2HeadError(f"cannot decode the audio file {str(path)!r} ({exc})") from None


class VideoWriter:
    """Context manager writing RGB uint8 frames (and optionally a soundtrack) to an MP4.

    with VideoWriter("out.mp4", width, height, soundtrack=load_soundtrack("speech.wav")) as writer:
        writer.write(frames)      # [B, H, W, 3] uint8, any number of calls
    The file appears under its final name only when the block ends without an exception.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, soundtrack: Soundtrack | None = None,
                 crf: int = 18):
        if width % 2 or height % 2:
            raise Audio2HeadError(f"H.264 needs an even frame size, got {width}x{height}")
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise Audio2HeadError(f"output {str(self.path)!r} must end in .mp4")
        self.width, self.height, self.crf = width, height, crf
        self._temp_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self.soundtrack = soundtrack  # the audio track (trimmed to the frames written), or None for a silent video
        self._sound_buffer: list[np.ndarray] = []  # decoded samples not yet encoded
        self._frames_written = 0
        self._samples_written = 0
        self._container = None

    def __enter__(self) -> "VideoWriter":
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self._temp_path), mode="w", format="mp4")
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
            raise ValueError(f"expected uint8 frames [B, {self.height}, {self.width}, 3], got {frames.dtype} {frames.shape}")
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
            os.replace(self._temp_path, self.path)
        else:
            _remove_quietly(self._temp_path)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _resample(waveform: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    import torch
    import torchaudio.functional

    return torchaudio.functional.resample(torch.from_numpy(waveform), rate, new_rate).numpy()


def read_video_info(path: str | os.PathLike) -> dict:
    """Frame rate, frame count, size and sound duration of an MP4 (what tests and users check)."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "fps": video.average_rate,
            "frames": video.frames,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "video_codec": video.codec_context.name,
            "video_seconds": float(video.duration * video.time_base) if video.duration else None,
            "audio_codec": None,
            "audio_seconds": None,
        }
        if container.streams.audio:
            audio = container.streams.audio[0]
            info["audio_codec"] = audio.codec_context.name
            info["audio_seconds"] = float(audio.duration * audio.time_base) if audio.duration else None
            info["sample_rate"] = audio.codec_context.sample_rate
    return info
