"""The 41 acoustic features per 10 ms that the Audio2Head networks were trained on, computed as the original did.

For the 16 kHz, peak-normalised signal of `a2h_core.audio.load_audio`, each row holds:

- columns 0-12: python_speech_features `mfcc` at its defaults (25 ms rectangular frames every 10 ms, 512-point FFT,
  pre-emphasis 0.97, 26 mel filters, cepstral lifter 22, c0 replaced by the log frame energy);
- columns 13-38: python_speech_features `logfbank` at its defaults (the 26 log mel energies);
- column 39: F0 in Hz from Harvest (`a2h_core.audio.harvest`, frame period 10 ms, f0 floor 71 Hz, ceiling 800 Hz), with
  unvoiced frames filled by linear interpolation between the voiced frames around them, and held at the edges;
- column 40: the voiced flag (1 where Harvest found F0, else 0).

Row i of the F0 columns is centred at 10*i ms while MFCC row i covers [10*i, 10*i + 25) ms: this half-window offset
is the original's alignment and is kept. The row count is the smallest of the three counts (the MFCC count in
practice); 4 rows make one 25 fps video frame.

Edge cases: audio shorter than one video frame raises `Audio2HeadError` (rather than padding: a clip that short
cannot make a video, and inventing audio would hide the mistake); digital silence, including a constant DC offset,
gives the features python_speech_features computes for zeros (log-energy floor log(eps)) with F0 0 and flag 0 and
a warning, where the original would emit NaN.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import python_speech_features
import scipy.fft

from a2h_core.audio.decode import normalise_peak, to_pcm16
from a2h_core.audio.harvest import Progress, harvest
from a2h_core.config import FEATURE_ROWS_PER_FRAME, FEATURE_SAMPLE_RATE, FPS, NUM_AUDIO_FEATURES
from a2h_core.errors import Audio2HeadError
from a2h_core.paths import atomic_output, checked_output_file

NUM_MFCC = 13  # python_speech_features mfcc default numcep
NUM_FILTERBANK = 26  # python_speech_features default nfilt
FRAME_SAMPLES = 400  # python_speech_features default 25 ms window at 16 kHz
HOP_SAMPLES = 160  # python_speech_features default 10 ms step at 16 kHz
PRE_EMPHASIS = 0.97  # python_speech_features default preemph
CEPSTRAL_LIFTER = 22  # python_speech_features default ceplifter
_MEL_BLOCK_ROWS = 2048  # feature rows computed per block (about 10 MB of intermediates)
F0_FRAME_PERIOD_MS = 10.0  # the original's pyworld.harvest(frame_period=10)
F0_FLOOR_HZ = 71.0  # pyworld.harvest default f0_floor
F0_CEIL_HZ = 800.0  # pyworld.harvest default f0_ceil
# Shortest audio giving one video frame: python_speech_features makes 1 + ceil((n - 400) / 160) rows from n samples
# (zero-padding the last frame), so 4 rows need n > 400 + 2 * 160.
MIN_SAMPLES = FRAME_SAMPLES + (FEATURE_ROWS_PER_FRAME - 2) * HOP_SAMPLES + 1


@dataclass
class AudioFeatures:
    """The original's audio features: one row per 10 ms, four rows per 25 fps video frame."""

    values: np.ndarray  # [rows, 41] float64: 13 MFCC, 26 log filter bank, F0 in Hz (interpolated), voiced flag

    def __post_init__(self):
        values = np.asarray(self.values)
        if values.ndim != 2 or values.shape[1] != NUM_AUDIO_FEATURES:
            raise Audio2HeadError(
                f"Audio features must be [rows, {NUM_AUDIO_FEATURES}]; got shape {values.shape}. Compute them with "
                "extract_features (or `python -m a2h_core features`).")
        if not np.isfinite(values).all():
            raise Audio2HeadError("The audio features contain NaN or infinite values; recompute them with "
                                  "extract_features, which never produces them.")
        self.values = values.astype(np.float64, copy=False)

    @property
    def num_frames(self) -> int:
        """Whole 25 fps video frames the features cover (rows // 4); leftover rows are dropped, as in the original."""
        return len(self.values) // FEATURE_ROWS_PER_FRAME

    @property
    def duration(self) -> float:
        """Seconds of video the features drive."""
        return self.num_frames / FPS

    @property
    def f0(self) -> np.ndarray:
        """F0 per row in Hz, unvoiced rows interpolated."""
        return self.values[:, NUM_MFCC + NUM_FILTERBANK]

    @property
    def voiced(self) -> np.ndarray:
        """1.0 where the row is voiced, else 0.0."""
        return self.values[:, NUM_MFCC + NUM_FILTERBANK + 1]

    def save(self, path) -> Path:
        """Write the [rows, 41] float64 array as .npy (the suffix is added if missing); returns the path."""
        if isinstance(path, (str, os.PathLike)) and Path(path).expanduser().is_dir():
            raise Audio2HeadError(f"features file {str(path)!r} is an existing folder: give a file name, e.g. "
                                  f"{str(Path(path) / 'features.npy')!r}")
        path = Path(path) if isinstance(path, (str, os.PathLike)) else path
        if isinstance(path, Path) and path.suffix != ".npy":
            path = path.with_name(path.name + ".npy")
        path = checked_output_file(path, "features file")
        with atomic_output(path, "features file") as temp, open(temp, "wb") as handle:
            np.save(handle, self.values)
        return path

    @classmethod
    def load(cls, path) -> AudioFeatures:
        """Read features written by `save` (or the original's [rows, 41] array saved with numpy)."""
        try:
            values = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise Audio2HeadError(f"Feature file not found: {path}. Check the path.") from None
        except ValueError as error:
            raise Audio2HeadError(f"{path} is not a .npy feature array ({error}).") from None
        return cls(values)


def extract_features(source, sample_rate: int | None = None, progress: Progress | None = None) -> AudioFeatures:
    """The original's 41 features of any audio: a path, a ComfyUI AUDIO dict, or an array with `sample_rate`.

    See `a2h_core.audio.load_audio` for decoding, resampling and normalisation, and the module docstring for columns.
    Raises `Audio2HeadError` for audio shorter than one video frame (40 ms plus the 5 ms the last 25 ms window
    reaches past it, `MIN_SAMPLES` at 16 kHz). progress(done, total) follows the pitch tracker, which takes nearly
    all the time (see `harvest`), and is called with (0, 1) after the decoding and after the mel features; an
    exception raised in it stops the extraction.
    """
    stop_point = progress or (lambda done, total: None)
    pcm = to_pcm16(source, sample_rate)
    stop_point(0, 1)
    if pcm.size < MIN_SAMPLES:
        raise Audio2HeadError(
            f"The audio is {1000 * pcm.size / FEATURE_SAMPLE_RATE:.1f} ms long; at least "
            f"{1000 * MIN_SAMPLES / FEATURE_SAMPLE_RATE:.1f} ms is needed for one video frame. Give a longer clip.")
    signal = normalise_peak(pcm)
    del pcm  # not needed past here: let it go before Harvest, the peak of the memory use
    mfcc, filterbank = mel_features(signal)
    stop_point(0, 1)
    if signal.any():
        f0, _ = harvest(signal, FEATURE_SAMPLE_RATE, frame_period=F0_FRAME_PERIOD_MS, f0_floor=F0_FLOOR_HZ,
                        f0_ceil=F0_CEIL_HZ, progress=progress)
    else:  # digital silence (normalise_peak warned): no voice anywhere; Harvest never has fewer rows than MFCC
        f0 = np.zeros(len(mfcc))
    voiced = (f0 != 0.0).astype(np.float64)
    f0 = interpolate_unvoiced(f0, voiced.astype(bool))
    rows = min(len(mfcc), len(filterbank), len(f0))
    return AudioFeatures(np.concatenate(
        [mfcc[:rows], filterbank[:rows], f0[:rows, None], voiced[:rows, None]], axis=1))


def mel_features(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """python_speech_features `mfcc(signal, 16000)` and `logfbank(signal, 16000)`, the same numbers, cheaper.

    Both of those compute the same mel filter bank energies; here they are computed once, and in blocks of rows so
    that memory does not grow with the length of the audio. Frames are independent given the pre-emphasised signal:
    each block is framed by python_speech_features itself (with pre-emphasis off, as it was applied to the whole
    signal), so block edges and the zero-padded last frame come out exactly as in one call.
    """
    emphasised = python_speech_features.sigproc.preemphasis(signal, PRE_EMPHASIS)
    count = 1 if emphasised.size <= FRAME_SAMPLES else 1 + -(-(emphasised.size - FRAME_SAMPLES) // HOP_SAMPLES)
    mfcc, filterbank = np.empty((count, NUM_MFCC)), np.empty((count, NUM_FILTERBANK))
    for first in range(0, count, _MEL_BLOCK_ROWS):
        last = min(first + _MEL_BLOCK_ROWS, count)
        block = emphasised[first * HOP_SAMPLES:(last - 1) * HOP_SAMPLES + FRAME_SAMPLES]
        energies, frame_energy = python_speech_features.fbank(block, FEATURE_SAMPLE_RATE, preemph=0)
        log_energies = np.log(energies)
        filterbank[first:last] = log_energies
        cepstrum = scipy.fft.dct(log_energies, type=2, axis=1, norm="ortho")[:, :NUM_MFCC]
        mfcc[first:last] = python_speech_features.lifter(cepstrum, CEPSTRAL_LIFTER)
        mfcc[first:last, 0] = np.log(frame_energy)  # appendEnergy: c0 is the log frame energy
    return mfcc, filterbank


def interpolate_unvoiced(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Fill unvoiced F0 frames linearly between the voiced frames around them; hold the first/last voiced value.

    Same numbers as the original's `inter_pitch` (which interpolated each gap with scipy's interp1d over [0, 1]),
    without its Python loop. With no voiced frame at all, F0 is returned unchanged.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = np.asarray(voiced, dtype=bool)
    voiced_index = np.flatnonzero(voiced)
    if voiced_index.size == 0:
        return f0.copy()
    positions = np.arange(f0.size)
    # Nearest voiced frame at or before / at or after each frame, clamped to the first / last voiced frame.
    before = np.maximum.accumulate(np.where(voiced, positions, voiced_index[0]))
    after = np.minimum.accumulate(np.where(voiced, positions, voiced_index[-1])[::-1])[::-1]
    gap = after - before
    inside = gap > 0  # unvoiced frames with voiced frames on both sides
    filled = f0[before]  # edges and voiced frames: the nearest voiced value
    # interp1d evaluates y0 + (y1 - y0) * x at x = k * (1 / gap): keep that operation order for identical results.
    fraction = (positions[inside] - before[inside]) * (1.0 / gap[inside])
    start = f0[before[inside]]
    filled[inside] = (f0[after[inside]] - start) * fraction + start
    return filled
