"""The sound of the video: the user's audio at its own level (not the features' normalised copy), handed to the
video writer piece by piece so that a long file is never decoded into memory at once."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from a2h_core.audio.intake import (
    audio_file_info,
    decoded_frames,
    downmix_matrix,
    finite_float64,
    in_memory_samples,
    is_audio_path,
)
from a2h_core.errors import Audio2HeadError

# AAC encodes these rates natively; any other rate is resampled to 48 kHz.
AAC_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
FALLBACK_RATE = 48000


class Soundtrack:
    """The audio to put in a video. `chunks` yields [channels, n] float32 arrays at `sample_rate`; it can be
    consumed once."""

    def __init__(self, sample_rate: int, channels: int, chunks: Iterator[np.ndarray]):
        self.sample_rate = sample_rate  # samples per second, a rate AAC supports
        self.channels = channels  # 1 (mono) or 2 (stereo)
        self.chunks = chunks  # the samples, piece by piece


def load_soundtrack(source, sample_rate: int | None = None) -> Soundtrack:
    """The audio to put in the video, from any source `a2h_core.audio.intake` reads.

    A file is decoded lazily while the video is written. Mono stays mono; a file with more than two channels is
    down-mixed to stereo with FFmpeg's channel weights, scaled so that the mix cannot exceed full scale
    (`intake.downmix_matrix`); an array with more than two channels (no layout) becomes mono (the mean). NaN and
    Inf samples become silence, and samples are limited to full scale (+-1). Rates AAC cannot store are resampled
    to 48 kHz.
    """
    if is_audio_path(source):
        if sample_rate is not None:
            raise Audio2HeadError(f"sample_rate={sample_rate} was given with a file path; the file's own rate is "
                                  "used. Remove the sample_rate argument.")
        info = audio_file_info(source)
        rate = info.sample_rate if info.sample_rate in AAC_SAMPLE_RATES else FALLBACK_RATE
        channels = min(info.channels, 2)
        return Soundtrack(rate, channels, _decode_lazily(info.path, rate, channels))
    samples, sample_rate = in_memory_samples(source, sample_rate)
    waveform, _ = finite_float64(samples)
    if waveform.shape[0] > 2:
        waveform = waveform.mean(axis=0, keepdims=True)
    waveform = np.clip(waveform, -1.0, 1.0).astype(np.float32)
    if sample_rate not in AAC_SAMPLE_RATES:
        waveform, sample_rate = _resample(waveform, sample_rate, FALLBACK_RATE), FALLBACK_RATE
    # One-second views: the writer takes what each batch of frames needs without copying the rest.
    pieces = (waveform[:, start:start + sample_rate] for start in range(0, waveform.shape[1], sample_rate))
    return Soundtrack(sample_rate, waveform.shape[0], pieces)


def _decode_lazily(path: Path, rate: int, channels: int) -> Iterator[np.ndarray]:
    """[channels, n] float32 pieces at `rate`: decoded by intake, made finite, down-mixed, limited to +-1, and
    resampled by FFmpeg only when the file's rate is not one AAC stores."""
    import av

    resampler = None
    layout = "mono" if channels == 1 else "stereo"
    try:
        for samples, frame_rate, names in decoded_frames(path, with_layout=True):
            block, _ = finite_float64(samples)
            if block.shape[0] != channels:
                block = downmix_matrix(names, channels) @ block
            piece = np.clip(block, -1.0, 1.0).astype(np.float32)
            if frame_rate == rate:
                yield piece
                continue
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout=layout)
            frame.sample_rate = frame_rate
            for out in resampler.resample(frame):
                yield out.to_ndarray()
        if resampler is not None:
            for out in resampler.resample(None):
                yield out.to_ndarray()
    except av.FFmpegError as exc:
        raise Audio2HeadError(f"Cannot decode {path}: {exc}. Check that it is a valid audio file.") from None


def _resample(waveform: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    import torch
    import torchaudio.functional

    return torchaudio.functional.resample(torch.from_numpy(waveform), rate, new_rate).numpy()
