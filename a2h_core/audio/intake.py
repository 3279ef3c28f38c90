"""Audio intake: the one place that reads what users give as audio, for the features and for the soundtrack alike.

- a path to anything PyAV (FFmpeg) decodes: wav, flac, mp3, m4a, ogg, video files with an audio track, ...;
- a ComfyUI AUDIO dict ``{"waveform": tensor [B, C, T], "sample_rate": int}``. Only a batch of one is accepted: a
  batch of several clips raises, because one video is made from one clip and silently dropping clips would hide a
  wiring mistake (the nodes pick the first clip, with a warning, before calling the library);
- a numpy array or torch tensor with ``sample_rate``: 1-D (mono), or 2-D channels-first ``[C, T]``. A 2-D array is
  read as time-first ``[T, C]`` (the layout of soundfile and scipy.io.wavfile) only when that is unambiguous: its
  first axis is longer than `MAX_CHANNELS` and its second is not. Integer arrays are PCM (int16, int32, uint8,
  int8); float arrays hold samples in +-1.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2h_core.config import MAX_AUDIO_RATE, MAX_SECONDS, MIN_AUDIO_RATE
from a2h_core.errors import Audio2HeadError

MAX_CHANNELS = 8  # most channels an array may have (7.1); used to tell [C, T] from [T, C]


@dataclass(frozen=True)
class AudioFileInfo:
    """The first audio stream of a file, as found before decoding it."""

    path: Path  # the file
    sample_rate: int  # samples per second per channel
    channels: int  # channel count of the stream


def is_audio_path(source) -> bool:
    """Whether `source` names a file (rather than holding samples)."""
    return isinstance(source, (str, os.PathLike))


def in_memory_samples(source, sample_rate=None) -> tuple[np.ndarray, int]:
    """[C, T] samples (their own dtype) and the rate of a ComfyUI AUDIO dict or an array with `sample_rate`."""
    if isinstance(source, dict):
        return _unpack_comfy_audio(source, sample_rate)
    return _array_samples(source, sample_rate)


def audio_file_info(path) -> AudioFileInfo:
    """Check that `path` is a file with a decodable audio stream, and describe that stream."""
    path = Path(path)
    if path.is_dir():
        raise Audio2HeadError(f"{path} is a folder, not an audio file: give the path of the file itself.")
    if not path.is_file():
        raise Audio2HeadError(f"Audio file not found: {path} does not exist. Check the path.")
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise Audio2HeadError(f"{path} has no audio stream. Give an audio file or a video with sound.")
            codec = container.streams.audio[0].codec_context
            info = AudioFileInfo(path, int(codec.sample_rate), int(codec.layout.nb_channels))
    except av.FFmpegError as error:
        raise Audio2HeadError(f"Cannot decode {path}: {error}. Check that it is a valid audio file (wav, flac, "
                              "mp3, m4a, ogg).") from None
    _checked_rate(info.sample_rate, str(path))
    return info


def decoded_frames(path, with_layout: bool = False) -> Iterator[tuple]:
    """The first audio stream of a file, frame by frame: ([C, n] samples in the stream's own dtype, rate), plus the
    channel names (FFmpeg's: "FL", "FR", "FC", "LFE", ...) when `with_layout`."""
    info = audio_file_info(path)
    import av

    try:
        with av.open(str(info.path)) as container:
            for frame in container.decode(container.streams.audio[0]):
                samples = frame.to_ndarray()
                if not frame.format.is_planar:  # packed frames come as [1, n * C], interleaved
                    samples = samples.reshape(-1, len(frame.layout.channels)).T
                if with_layout:
                    yield samples, frame.sample_rate, tuple(channel.name for channel in frame.layout.channels)
                else:
                    yield samples, frame.sample_rate
    except av.FFmpegError as error:
        raise Audio2HeadError(f"Cannot decode {info.path}: {error}. Check that it is a valid audio file.") from None


def finite_float64(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Samples as float64 (`to_float64`) with NaN and Inf replaced by 0 (silence), and how many were replaced.

    Used for the features and for the soundtrack alike: a few bad samples must not crash the video encoder."""
    block = to_float64(samples)
    bad = ~np.isfinite(block)
    count = int(np.count_nonzero(bad))
    if count:
        block = np.where(bad, 0.0, block)
    return block, count


# FFmpeg's down-mix (libswresample `swr_build_matrix`, its defaults: centre and surround at -3 dB, LFE left out),
# as (left, right) weights per channel name before normalisation. Unknown channels go half to each side.
_HALF_POWER = math.sqrt(0.5)
_STEREO_WEIGHTS = {
    "FL": (1.0, 0.0), "FR": (0.0, 1.0), "FC": (_HALF_POWER, _HALF_POWER), "LFE": (0.0, 0.0),
    "LFE2": (0.0, 0.0), "BL": (_HALF_POWER, 0.0), "BR": (0.0, _HALF_POWER), "SL": (_HALF_POWER, 0.0),
    "SR": (0.0, _HALF_POWER), "BC": (0.5, 0.5), "FLC": (1.0, 0.0), "FRC": (0.0, 1.0),
}


def downmix_matrix(channel_names, outputs: int) -> np.ndarray:
    """[outputs, channels] weights that mix named channels to mono (1) or stereo (2) as FFmpeg's `-ac 1` / `-ac 2`
    do for 16-bit output: FFmpeg's channel weights, scaled so that no output can exceed full scale (each row's
    absolute weights sum to at most 1). 5.1 to stereo: L = 0.414 FL + 0.293 FC + 0.293 BL, LFE dropped; to mono:
    0.207 FL + 0.207 FR + 0.293 FC + 0.146 BL + 0.146 BR. Mono and stereo input stay as they are (stereo to mono is
    the mean); unnamed channels (arrays carry no layout) are averaged."""
    names = tuple(channel_names)
    channels = len(names)
    if channels == outputs:
        return np.eye(channels)
    if channels <= 2 or any(not name for name in names):
        return np.full((outputs, channels), 1.0 / channels)
    stereo = np.array([_STEREO_WEIGHTS.get(name, (0.5, 0.5)) for name in names]).T  # [2, channels]
    matrix = stereo if outputs == 2 else _HALF_POWER * stereo.sum(axis=0, keepdims=True)
    peak = np.abs(matrix).sum(axis=1).max()
    return matrix / peak if peak > 1.0 else matrix


def to_float64(samples: np.ndarray) -> np.ndarray:
    """Integer PCM scaled to +-1 the way ffmpeg converts it to float; float samples as they are."""
    dtype = samples.dtype
    if dtype == np.uint8:
        return (samples.astype(np.float64) - 128.0) / 128.0
    if dtype in (np.int8, np.int16, np.int32, np.int64):
        return samples.astype(np.float64) / float(2 ** (8 * dtype.itemsize - 1))
    if np.issubdtype(dtype, np.floating):
        return samples.astype(np.float64)
    raise Audio2HeadError(
        f"Audio samples of type {dtype} are not supported. Give float samples in [-1, 1] or integer PCM "
        "(int16, int32, uint8).")


def _array_samples(array, sample_rate) -> tuple[np.ndarray, int]:
    """A numpy array or torch tensor as [C, T] samples with its rate."""
    if hasattr(array, "detach"):  # torch tensor, without importing torch for numpy users
        array = array.detach().cpu()
        if array.is_floating_point() and str(array.dtype) == "torch.bfloat16":
            array = array.float()
        array = array.numpy()
    if not isinstance(array, np.ndarray):
        raise Audio2HeadError(
            f"Cannot read audio from a {type(array).__name__}. Give a file path, a ComfyUI AUDIO dict, or a "
            "numpy array / torch tensor with sample_rate.")
    rate = _checked_rate(sample_rate, "an array")
    if array.ndim == 1:
        return array[None, :], rate
    if array.ndim != 2:
        raise Audio2HeadError(
            f"Audio arrays must be 1-D [T] or 2-D [C, T]; got shape {tuple(array.shape)}. A ComfyUI waveform "
            "[B, C, T] goes in an AUDIO dict: {'waveform': ..., 'sample_rate': ...}.")
    channels, length = array.shape
    if channels <= MAX_CHANNELS:
        return array, rate
    if length <= MAX_CHANNELS:
        return array.T, rate
    raise Audio2HeadError(
        f"Cannot tell channels from time in an audio array of shape {tuple(array.shape)}: neither axis has at "
        f"most {MAX_CHANNELS} channels. Give [channels, samples].")


def _unpack_comfy_audio(audio: dict, sample_rate) -> tuple[np.ndarray, int]:
    """A ComfyUI AUDIO dict {"waveform": [B, C, T], "sample_rate": int} with B == 1, as [C, T] and its rate."""
    if "waveform" not in audio or "sample_rate" not in audio:
        raise Audio2HeadError(
            f"An AUDIO dict needs 'waveform' and 'sample_rate'; got keys {sorted(audio)}. Connect a ComfyUI AUDIO "
            "output (e.g. Load Audio).")
    rate = _checked_rate(audio["sample_rate"], "the AUDIO dict")
    if sample_rate is not None and int(sample_rate) != rate:
        raise Audio2HeadError(
            f"sample_rate={sample_rate} contradicts the AUDIO dict's sample_rate {rate}; remove the argument.")
    waveform = audio["waveform"]
    if not hasattr(waveform, "shape"):
        raise Audio2HeadError(f"An AUDIO waveform must be a tensor [batch, channels, samples]; got a "
                              f"{type(waveform).__name__}. Connect a ComfyUI AUDIO output (e.g. Load Audio).")
    shape = tuple(waveform.shape)
    if len(shape) != 3:
        raise Audio2HeadError(f"An AUDIO waveform must be [batch, channels, samples]; got shape {shape}.")
    if shape[0] != 1:
        raise Audio2HeadError(
            f"The AUDIO input holds a batch of {shape[0]} clips; Audio2Head makes one video from one clip. "
            "Split the batch or select one clip before this node.")
    if shape[1] > MAX_CHANNELS or shape[1] == 0:
        raise Audio2HeadError(
            f"The AUDIO waveform has {shape[1]} channels (shape {shape}); expected 1 to {MAX_CHANNELS} channels "
            "in [batch, channels, samples] order.")
    samples, _ = _array_samples(waveform[0], rate)
    return samples, rate


def _checked_rate(sample_rate, where: str) -> int:
    if sample_rate is None:
        raise Audio2HeadError(f"A sample rate is needed for {where}; pass sample_rate=... (in Hz).")
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        rate = math.nan
    if not (rate > 0 and rate == int(rate)):
        raise Audio2HeadError(f"The sample rate of {where} must be a positive whole number of Hz; got {sample_rate!r}.")
    if not MIN_AUDIO_RATE <= rate <= MAX_AUDIO_RATE:
        raise Audio2HeadError(f"The sample rate of {where} is {int(rate)} Hz; accepted are {MIN_AUDIO_RATE} .. "
                              f"{MAX_AUDIO_RATE} Hz (speech is recorded at 8000 .. 48000): resample the audio.")
    return int(rate)


def check_duration(samples: int, rate: int) -> None:
    """Refuse audio longer than MAX_SECONDS (24 h) before it is resampled or analysed."""
    if samples > MAX_SECONDS * rate:
        raise Audio2HeadError(f"The audio lasts {samples / rate / 3600:.1f} h, more than the limit of "
                              f"{MAX_SECONDS // 3600} h: cut it into shorter clips.")
