"""Turn any audio a user has into the 16 kHz signal the original Audio2Head computed its features on.

The original converted every input with `ffmpeg -i IN -ac 1 -acodec pcm_s16le -ar 16000 tmp.wav`, read the 16-bit
samples back, subtracted their mean and divided by their peak. This module reproduces that chain without ffmpeg:

1. convert the samples to float64 (integer PCM is scaled to +-1 as ffmpeg does: int16 / 32768, ...);
2. replace NaN and Inf with 0 (with a warning giving the count);
3. mix the channels to mono as ffmpeg's `-ac 1` does (`intake.downmix_matrix`): the mean for stereo; for a file
   with more channels ffmpeg's weights (5.1: FL, FR, FC, LFE, surrounds 0.207, 0.207, 0.293, 0, 0.146 each);
   arrays carry no channel layout and are averaged;
4. resample to 16 kHz with ffmpeg's default resampler (a Kaiser-windowed sinc, reproduced here in numpy);
5. round to the 16-bit grid, limiting to [-32768, 32767] as ffmpeg's s16 output does;
6. subtract the mean and divide by the peak, exactly as the original did on the 16-bit samples.

Accepted sources are those of `a2h_core.audio.intake` (files, ComfyUI AUDIO dicts, arrays).

Agreement with the original's ffmpeg conversion (ffmpeg 5.1, `tools/compare_features.py`):

- 16 kHz mono 16-bit files (the original's documented input) are used sample for sample;
- float sources (mp3, aac, ogg, float wav) differ by 1 LSB on about 0.02% of samples (ffmpeg filters in float32);
- 16-bit sources that need resampling or downmixing differ by up to 4 LSB on about 10-40% of samples, because ffmpeg
  then computes in 16-bit fixed point; we keep float64 so that int16 and float input give identical features;
- the number of samples is ffmpeg's (its resampler's end-of-stream rule is reproduced), which matters because
  Harvest's F0 shifts slightly with the signal length.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.special

from a2h_core.audio.intake import (
    check_duration,
    decoded_frames,
    downmix_matrix,
    finite_float64,
    in_memory_samples,
    is_audio_path,
)
from a2h_core.config import FEATURE_SAMPLE_RATE
from a2h_core.errors import A2HWarning, Audio2HeadError

PCM16_SCALE = 32768.0  # 16-bit full scale: float sample 1.0 == int16 32768, as in ffmpeg's conversions

# ffmpeg's default resampler (libswresample): a Kaiser-windowed sinc, reproduced here tap for tap (filter length rounded
# up to even, one normalisation for all phases, mirrored edges). torchaudio's Kaiser resampler with similar settings
# differed from ffmpeg by up to 5 LSB on a third of the samples, by hundreds at the edges, and used the wrong cutoff
# when upsampling.
RESAMPLE_FILTER_SIZE = 32  # ffmpeg's filter_size: taps at full band; the filter grows as the cutoff falls
RESAMPLE_CUTOFF = 0.97  # ffmpeg's cutoff, as a fraction of the output Nyquist frequency when downsampling
RESAMPLE_KAISER_BETA = 9.0  # ffmpeg's kaiser_beta
RESAMPLE_MAX_PHASES = 1024  # ffmpeg's exact polyphase limit (1 << phase_shift); rarer rate ratios use exact positions
_MIX_BLOCK_SAMPLES = 1 << 18  # samples per channel converted and mixed at a time (bounded float64 copies)
_RESAMPLE_BLOCK_VALUES = 1 << 21  # filter-window values per chunk of work, so memory stays flat for long audio

# An input sample counts as clipped when it sits at 16-bit full scale (or beyond) next to another such sample: a
# flat top is what a clipped recording looks like, while a single peak at full scale is a normalised file.
_FULL_SCALE = 32767.0 / PCM16_SCALE


def load_audio(source, sample_rate: int | None = None) -> np.ndarray:
    """The original's feature input: float64 mono at 16 kHz, on the int16 grid, mean 0, peak 1.

    `source` is a path, a ComfyUI AUDIO dict or an array (see the module docstring); `sample_rate` is required for
    arrays and must not contradict the rate a path or dict carries. Digital silence (every 16-bit sample equal,
    which includes a constant DC offset) cannot be peak-normalised: it comes back as zeros, with a warning.
    """
    return normalise_peak(to_pcm16(source, sample_rate))


def to_pcm16(source, sample_rate: int | None = None) -> np.ndarray:
    """Steps 1-5: the int16 mono 16 kHz samples that ffmpeg would have written to the original's temp.wav."""
    mixer = _MonoMixer()
    if is_audio_path(source):
        if sample_rate is not None:
            raise Audio2HeadError(
                f"sample_rate={sample_rate} was given with a file path; the file's own rate is used. "
                "Remove the sample_rate argument.")
        rate = None
        for samples, frame_rate, names in decoded_frames(source, with_layout=True):
            if rate is not None and frame_rate != rate:
                raise Audio2HeadError(
                    f"The sample rate of {source} changes from {rate} to {frame_rate} Hz mid-stream; convert it to "
                    "one rate first (e.g. with ffmpeg).")
            rate = frame_rate
            mixer.add(samples, names)
        rate = FEATURE_SAMPLE_RATE if rate is None else rate
    else:
        samples, rate = in_memory_samples(source, sample_rate)
        check_duration(samples.shape[1], rate)
        for start in range(0, samples.shape[1], _MIX_BLOCK_SAMPLES):
            mixer.add(samples[:, start:start + _MIX_BLOCK_SAMPLES])
    mono = mixer.finish()
    check_duration(mono.size, rate)
    if mono.size == 0:
        raise Audio2HeadError("The audio is empty (0 samples). Give a recording with speech in it.")
    resampled = resample_to_feature_rate(mono, rate)
    pcm, limited = _round_to_pcm16(resampled)
    if mixer.clipped or limited:
        warnings.warn(
            f"The audio is clipped: {mixer.clipped} input samples sit at or beyond full scale and {limited} "
            "samples had to be limited to the 16-bit range after resampling (as ffmpeg does). Clipping distorts "
            "the features; lower the gain or re-export the audio without clipping. Float audio must hold samples "
            "in [-1, 1] (divide 16-bit values by 32768).", A2HWarning, stacklevel=2)
    return pcm


def normalise_peak(pcm: np.ndarray) -> np.ndarray:
    """Step 6, on 16-bit samples, with the original's exact arithmetic: (x - mean(x)) / max|x - mean(x)|.

    Digital silence (all samples equal) would be 0 / 0 = NaN in the original; it is returned as zeros instead.
    """
    centred = pcm - np.mean(pcm)
    peak = np.max(np.abs(centred))
    if peak == 0:
        warnings.warn(
            "The audio is digital silence: all samples are equal after conversion to 16-bit 16 kHz (a constant DC "
            "offset counts as silence). It is treated as silence (zeros: no voice, so a nearly still head); "
            "check the audio input if this is unexpected.", A2HWarning, stacklevel=2)
        return np.zeros(pcm.shape, dtype=np.float64)
    return centred / peak


def resample_to_feature_rate(mono: np.ndarray, rate: int) -> np.ndarray:
    """Resample float64 mono audio from `rate` to 16 kHz as ffmpeg's default resampler does (identity at 16 kHz).

    Output sample j sits at input position j * rate / 16000 and is a Kaiser-windowed sinc of the input around it,
    with ffmpeg's filter length, cutoff, normalisation and edge handling (the input is mirrored at both ends).
    """
    if rate == FEATURE_SAMPLE_RATE:
        return mono
    divisor = math.gcd(rate, FEATURE_SAMPLE_RATE)
    phases, step = FEATURE_SAMPLE_RATE // divisor, rate // divisor  # output j at input (j * step) / phases
    factor = min(FEATURE_SAMPLE_RATE * RESAMPLE_CUTOFF / rate, 1.0)  # cutoff relative to the input Nyquist
    taps = 2 * math.ceil(RESAMPLE_FILTER_SIZE / (2 * factor))  # ffmpeg rounds the filter length up to even
    center = (taps - 1) // 2
    norm = _kaiser_sinc(np.arange(taps) - center, factor, taps).sum()  # ffmpeg normalises by phase 0's sum
    out_count = _ffmpeg_output_count(mono.size, phases, step, taps, center)
    if phases <= RESAMPLE_MAX_PHASES:
        return _polyphase(mono, phases, step, factor, taps, center, norm, out_count)
    return _direct(mono, phases, step, factor, taps, center, norm, out_count)


def _ffmpeg_output_count(size: int, phases: int, step: int, taps: int, center: int) -> int:
    """How many samples ffmpeg's resampler emits for `size` input samples (matched on 160 random lengths, 8 rates).

    Before the final flush it has produced every output whose whole filter fits in the input; the flush then
    mirrors half of the unconsumed samples (at most half a filter) past the end, and emits the outputs that fit.
    Harvest's F0 depends slightly on the signal length, so the count matters.
    """
    first_unfitted = max(-(-(size + 1 + center - taps) * phases // step), 0)
    unconsumed = size - first_unfitted * step // phases + center
    mirrored = (min(unconsumed, taps) + 1) // 2
    end = size + mirrored + 1 + center - taps  # outputs at positions before this fit after the flush
    return max(-(-end * phases // step), 0)


def _kaiser_sinc(offsets: np.ndarray, factor: float, taps: int) -> np.ndarray:
    """ffmpeg's filter taps at `offsets` input samples from the output position (before normalisation)."""
    x = np.pi * offsets * factor
    safe = np.where(x == 0, 1.0, x)
    sinc = np.where(x == 0, 1.0, np.sin(safe) / safe)
    window_position = 2.0 * x / (factor * taps * np.pi)
    window = scipy.special.i0(RESAMPLE_KAISER_BETA * np.sqrt(np.maximum(1.0 - window_position ** 2, 0.0)))
    return sinc * window


def _mirror_pad(mono: np.ndarray, left: int, right: int) -> np.ndarray:
    """Mirror the start without repeating the first sample and the end repeating the last one, as ffmpeg does."""
    head = mono[:left + 1]  # only these samples can be mirrored into the left pad
    tail = mono[mono.size - min(right, mono.size):]
    return np.concatenate([np.pad(head, (left, 0), mode="reflect")[:left], mono,
                           np.pad(tail, (0, right), mode="symmetric")[tail.size:]])


def _polyphase(mono, phases, step, factor, taps, center, norm, out_count) -> np.ndarray:
    """Exact-ratio resampling as a matrix product: each block of `step` inputs gives `phases` outputs."""
    first_input = (np.arange(phases) * step) // phases  # input index at or before output r of a block
    fraction = (np.arange(phases) * step) % phases / phases
    kernel_length = int(first_input[-1]) + taps
    kernels = np.zeros((phases, kernel_length))
    for phase in range(phases):
        offsets = np.arange(taps) - center - fraction[phase]
        kernels[phase, first_input[phase]:first_input[phase] + taps] = _kaiser_sinc(offsets, factor, taps) / norm
    blocks = -(-out_count // phases)
    padded = _mirror_pad(mono, center, max((blocks - 1) * step + kernel_length - center - mono.size, 0))
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel_length)[::step][:blocks]
    out = np.empty((blocks, phases))
    rows = max(1, _RESAMPLE_BLOCK_VALUES // kernel_length)
    for start in range(0, blocks, rows):
        np.matmul(windows[start:start + rows], kernels.T, out=out[start:start + rows])
    return out.reshape(-1)[:out_count]


def _direct(mono, phases, step, factor, taps, center, norm, out_count) -> np.ndarray:
    """Rate ratios beyond ffmpeg's exact phase limit: taps computed at each output's exact position, in chunks.

    ffmpeg interpolates between 1024 precomputed phases here; the two differ by far less than one 16-bit step.
    """
    padded = _mirror_pad(mono, center, taps + step)
    out = np.empty(out_count)
    rows = max(1, _RESAMPLE_BLOCK_VALUES // taps)
    for start in range(0, out_count, rows):
        position = np.arange(start, min(start + rows, out_count)) * step
        first_input, fraction = position // phases, position % phases / phases
        offsets = np.arange(taps) - center - fraction[:, None]
        windows = padded[first_input[:, None] + np.arange(taps)]
        out[start:start + position.size] = np.einsum("ij,ij->i", windows, _kaiser_sinc(offsets, factor, taps)) / norm
    return out


def _round_to_pcm16(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Round float samples to int16 like ffmpeg's flt->s16 conversion: rint(x * 32768), limited to int16.

    Returns the int16 samples and how many had to be limited.
    """
    scaled = np.rint(samples * PCM16_SCALE)
    limited = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16), limited


class _MonoMixer:
    """Steps 1-3, block by block, so that a long multichannel file is never held in float64 with all channels."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []  # mono float64 blocks in order, each about _MIX_BLOCK_SAMPLES long
        self.pending: list[np.ndarray] = []  # mono float64 pieces after the blocks, not yet joined into one
        self.pending_samples = 0  # samples in `pending`
        self.non_finite = 0  # NaN/Inf samples replaced by 0
        self.clipped = 0  # input samples on a flat top at full scale, or beyond it

    def add(self, samples: np.ndarray, channel_names=None) -> None:
        """Add a [C, n] block of samples (any supported dtype); named channels (a file's layout) are mixed with
        FFmpeg's `-ac 1` weights, unnamed ones averaged."""
        block, bad_count = finite_float64(samples)
        self.non_finite += bad_count
        self.clipped += _count_clipped(block)
        if channel_names is not None and block.shape[0] > 2:
            self.pending.append((downmix_matrix(channel_names, 1) @ block)[0])
        else:
            self.pending.append(block.mean(axis=0))
        self.pending_samples += self.pending[-1].size
        if self.pending_samples >= _MIX_BLOCK_SAMPLES:
            self._join_pending()

    def _join_pending(self) -> None:
        # Decoders give frames of about a thousand samples. Joining them into blocks as they come lets the next
        # frames reuse the memory of the last ones; kept apart, they would fill the heap, which glibc does not give
        # back after the join (10 minutes at 44.1 kHz: about 200 MB).
        if self.pending:
            self.blocks.append(self.pending[0] if len(self.pending) == 1 else np.concatenate(self.pending))
            self.pending, self.pending_samples = [], 0

    def finish(self) -> np.ndarray:
        self._join_pending()
        if self.non_finite:
            warnings.warn(
                f"The audio contains {self.non_finite} NaN or infinite samples; they were replaced by 0. "
                "Check the node or file that produced the audio.", A2HWarning, stacklevel=3)
        blocks, self.blocks = self.blocks[::-1], []
        mono = np.empty(sum(block.size for block in blocks))
        position = 0
        while blocks:  # each block is let go as soon as it is copied: at most one block more than the result
            block = blocks.pop()
            mono[position:position + block.size] = block
            position += block.size
        return mono


def _count_clipped(block: np.ndarray) -> int:
    """Samples beyond full scale, plus full-scale samples with a full-scale neighbour in the same channel."""
    magnitude = np.abs(block)
    at_rail = magnitude >= _FULL_SCALE
    flat_top = np.zeros_like(at_rail)
    flat_top[:, 1:] |= at_rail[:, 1:] & at_rail[:, :-1]
    flat_top[:, :-1] |= at_rail[:, :-1] & at_rail[:, 1:]
    return int(np.count_nonzero(flat_top | (magnitude > 1.0)))
