# Harvest F0 estimator, ported to array code (numpy/scipy) from WORLD by M. Morise.
#
# The algorithm and its constants come from WORLD (https://github.com/mmorise/World, src/harvest.cpp), which is
# distributed under the following licence:
#
# -----------------------------------------------------------------
#           WORLD: High-quality speech analysis,
#           manipulation and synthesis system
#           developed by M. Morise
#           http://www.kisc.meiji.ac.jp/~mmorise/world/english/
# -----------------------------------------------------------------
#
#  Copyright (c) 2010  M. Morise
#
# All rights reserved.
#
# Redistribution and use in source and binary forms, with or
# without modification, are permitted provided that the following
# conditions are met:
#
# - Redistributions of source code must retain the above copyright
#   notice, this list of conditions and the following disclaimer.
# - Redistributions in binary form must reproduce the above
#   copyright notice, this list of conditions and the following
#   disclaimer in the documentation and/or other materials provided
#   with the distribution.
# - Neither the name of the M. Morise nor the names of its
#   contributors may be used to endorse or promote products derived
#   from this software without specific prior written permission.
#
# THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND
# CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES,
# INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF
# MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
# DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT OWNER OR CONTRIBUTORS
# BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
# EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED
# TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
# DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON
# ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
# OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
# OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
# POSSIBILITY OF SUCH DAMAGE.
# -----------------------------------------------------------------
"""Harvest pitch tracker (WORLD), reproducing ``pyworld.harvest`` without a compiled extension.

Stages (Morise, "Harvest: A high-performance fundamental frequency estimator from speech signals", 2017):

1. decimate the input to about 8 kHz and remove its mean;
2. filter it through ~150 band-pass channels (Nuttall-windowed cosines, 40 per octave); in each channel, the
   intervals between four kinds of events (rising and falling zero crossings, peaks, dips) give an F0 estimate
   that is kept only near the channel's centre frequency;
3. per 1 ms frame, runs of at least 10 neighbouring channels that agree become F0 candidates, which are shared with
   the 3 frames on either side and refined by instantaneous frequency on up to 6 harmonics (with a score);
4. the best-scoring candidate per frame is cleaned up (jumps, short voiced runs), voiced runs are extended along
   the candidates, overlapping runs merged by score, short gaps bridged, and the contour smoothed by a zero-phase
   low-pass filter;
5. the 1 ms contour is sampled at the requested frame period.

Everything that touches every sample or every frame is done with batched numpy/scipy array code (block FFT
convolution shared by all channels, direct DFTs at the harmonic bins as matrix products); only the per-section
contour repair (a few hundred voiced runs per minute) loops in Python. Each stage agrees with WORLD's C++ to
floating-point rounding (F0 to ~1e-9 cents). One input is decided by rounding noise in WORLD itself: in stretches of
exact digital silence a band-pass output is a constant plus FFT rounding noise, whose peaks and dips become events;
there a few frames at the edges of the silence can differ from pyworld.
"""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import os
from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.signal

try:  # optional: keeps BLAS single-threaded while Harvest runs its own threads (spinning BLAS threads halve speed)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - without it Harvest is only slower
    threadpool_limits = None

__all__ = ["harvest", "num_frames"]

_TARGET_FS = 8000.0  # Harvest works on the signal decimated to about this rate
_CHANNELS_PER_OCTAVE = 40.0  # band-pass channels per octave
_BASIC_FRAME_PERIOD_MS = 1  # the contour is always estimated at 1 ms, then sampled at the requested period
_MIN_CHANNELS_PER_CANDIDATE = 10  # a candidate needs this many neighbouring channels that agree
_SPREAD_FRAMES = 3  # candidates are shared with this many frames on each side
_MAX_HARMONICS = 6  # harmonics used to refine a candidate
_MIN_SCORE = 2.5  # refined candidates scoring below this are dropped
_SAFE_GUARD = 1e-12  # WORLD's guard against division by zero
_LOG2 = 0.69314718055994529  # WORLD's ln(2) constant

# Decimation low-pass filters (3rd-order IIR, one per decimation ratio), as (feedback a1..a3, feed-forward b0, b1);
# the filter is y = b0*w[n] + b1*w[n-1] + b1*w[n-2] + b0*w[n-3] with w[n] = x[n] + a1*w[n-1] + a2*w[n-2] + a3*w[n-3].
_DECIMATION_FILTERS = {
    2: ((0.041156734567757189, -0.42599112459189636, 0.041037215479961225),
        (0.16797464681802227, 0.50392394045406674)),
    3: ((0.95039378983237421, -0.67429146741526791, 0.15412211621346475),
        (0.071221945171178636, 0.21366583551353591)),
    4: ((1.4499664446880227, -0.98943497080950582, 0.24578252340690215),
        (0.036710750339322612, 0.11013225101796784)),
    5: ((1.7610939654280557, -1.2554914843859768, 0.3237186507788215),
        (0.021334858522387423, 0.06400457556716227)),
    6: ((1.9715352749512141, -1.4686795689225347, 0.3893908434965701),
        (0.013469181309343825, 0.040407543928031475)),
    7: ((2.1225239019534703, -1.6395144861046302, 0.44469707800587366),
        (0.0090366882681608418, 0.027110064804482525)),
    8: ((2.2357462340187593, -1.7780899984041358, 0.49152555365968692),
        (0.0063522763407111993, 0.019056829022133598)),
    9: ((2.3236003491759578, -1.8921545617463598, 0.53148928133729068),
        (0.0046331164041389372, 0.013899349212416812)),
    10: ((2.3936475118069387, -1.9873904075111861, 0.5658879979027055),
         (0.0034818622251927556, 0.010445586675578267)),
    11: ((2.450743295230728, -2.06794904601978, 0.59574774438332101),
         (0.0026822508007163792, 0.0080467524021491377)),
    12: ((2.4981398605924205, -2.1368928194784025, 0.62187513816221485),
         (0.0021097275904709001, 0.0063291827714127002)),
}

# Zero-lag 2nd-order Butterworth low-pass used to smooth the final contour: (feedback a1, a2), (b0, b1).
_SMOOTHING_FILTER = ((1.7347257688092754, -0.76600660094326412), (0.0078202080334971724, 0.015640416066994345))
_SMOOTHING_PAD = 300  # frames of zeros around the contour before smoothing
_SMOOTHING_SETTLE = 1000  # frames of held input before/after a run after which the filter state is settled


_REFINE_FRAMES_PER_CHUNK = 5000  # 1 ms frames refined per chunk: bounded memory, and a progress step (a cancel
# point) every few tenths of a second

Progress = Callable[[int, int], None]  # progress(done, total); may raise to stop


class _StageProgress:
    """Counts the steps of the slow stages and hands (done, total) to an optional callback."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def step(self) -> None:
        self.done += 1
        self.check()

    def check(self) -> None:
        """Report the count as it is: between the counted steps, a chance to stop."""
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)


def _workers() -> int:
    """Threads for the array work (numpy, scipy.fft and BLAS release the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))


def num_frames(num_samples: int, fs: int, frame_period: float) -> int:
    """Number of frames Harvest returns for a signal of ``num_samples`` samples."""
    return int(1000.0 * num_samples / fs / frame_period) + 1


def harvest(x: np.ndarray, fs: int, frame_period: float = 10.0, f0_floor: float = 71.0,
            f0_ceil: float = 800.0, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """F0 contour of a mono signal, as ``pyworld.harvest(x, fs, f0_floor, f0_ceil, frame_period)``.

    Returns ``(f0, temporal_positions)``, both float64 of length ``num_frames(len(x), fs, frame_period)``: F0 in Hz
    (0 where unvoiced) and frame times in seconds (frame i at ``i * frame_period / 1000``).
    progress(done, total), if given, counts the band-pass channels and then the refinement chunks, the two stages
    that take nearly all the time (and once with 0 done after the decimation); an exception raised in it stops the
    estimation there.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"harvest needs a 1-D signal of at least 2 samples, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("harvest needs finite samples; replace NaN/Inf first")
    if fs != int(fs) or int(fs) <= 0 or frame_period <= 0 or not 0 < f0_floor < f0_ceil:
        raise ValueError(f"invalid harvest parameters fs={fs}, frame_period={frame_period}, "
                         f"f0_floor={f0_floor}, f0_ceil={f0_ceil}")
    fs = int(fs)

    if threadpool_limits is None:
        basic_f0 = _harvest_basic(x, fs, f0_floor, f0_ceil, progress)
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            basic_f0 = _harvest_basic(x, fs, f0_floor, f0_ceil, progress)
    count = num_frames(x.size, fs, frame_period)
    temporal_positions = np.arange(count) * frame_period / 1000.0
    if frame_period == _BASIC_FRAME_PERIOD_MS:
        return basic_f0, temporal_positions
    basic_index = np.minimum(basic_f0.size - 1, _matlab_round(temporal_positions * 1000.0).astype(np.int64))
    return basic_f0[basic_index], temporal_positions


# ---------------------------------------------------------------------------------------------------------------
# Whole estimator at 1 ms
# ---------------------------------------------------------------------------------------------------------------

def _harvest_basic(x: np.ndarray, fs: int, f0_floor: float, f0_ceil: float,
                   progress: Progress | None = None) -> np.ndarray:
    boundary_f0 = _channel_frequencies(f0_floor, f0_ceil)

    f0_length = num_frames(x.size, fs, _BASIC_FRAME_PERIOD_MS)
    times = np.arange(f0_length) * _BASIC_FRAME_PERIOD_MS / 1000.0
    report = _StageProgress(progress, boundary_f0.size - 2 + -(-f0_length // _REFINE_FRAMES_PER_CHUNK))

    ratio = max(min(int(_matlab_round(fs / _TARGET_FS)), 12), 1)
    actual_fs = fs / ratio
    y = _decimate_for_harvest(x, ratio)
    y = y - y.mean()
    report.check()

    candidates = _official_candidates(y, actual_fs, boundary_f0, times, f0_floor, f0_ceil, report)
    candidates = _spread_candidates(candidates)
    scores = _refine_candidates(y, actual_fs, times, candidates, f0_floor, f0_ceil, report)
    _remove_unreliable_candidates(candidates, scores)

    contour = _best_candidate(candidates, scores)
    contour = _remove_jumps(contour, 0.008)
    contour = _remove_short_runs(contour, 6)
    contour = _extend_and_merge(contour, candidates, scores, 0.18)
    contour = _bridge_short_gaps(contour, 9)
    return _smooth_contour(contour)


def _channel_frequencies(f0_floor: float, f0_ceil: float) -> np.ndarray:
    """Centre frequencies of the band-pass channels: 40 per octave, from just above 0.9 floor to 1.1 ceiling."""
    adjusted_floor = f0_floor * 0.9
    adjusted_ceil = f0_ceil * 1.1
    num_channels = 1 + int(np.log(adjusted_ceil / adjusted_floor) / _LOG2 * _CHANNELS_PER_OCTAVE)
    return adjusted_floor * 2.0 ** (np.arange(1, num_channels + 1) / _CHANNELS_PER_OCTAVE)


def _matlab_round(value):
    """Round half away from zero (WORLD's ``matlab_round``)."""
    value = np.asarray(value, dtype=np.float64)
    return np.copysign(np.floor(np.abs(value) + 0.5), value)


def _decimate_for_harvest(x: np.ndarray, ratio: int) -> np.ndarray:
    """Low-pass (forward-backward IIR) and keep every ``ratio``-th sample, as WORLD does before Harvest."""
    if ratio == 1:
        return x.copy()
    length = -(-x.size // ratio)
    # WORLD holds the first/last sample for ~140 samples so that the filter's edge transients stay outside.
    lag = int(np.ceil(140.0 / ratio) * ratio)
    held = np.concatenate([np.full(lag, x[0]), x, np.full(lag, x[-1])])
    # decimate(): 9 samples of odd reflection at each end, zero-phase filtering, then sub-sampling from the end.
    pad = 9
    extended = np.concatenate([2 * held[0] - held[pad:0:-1], held, 2 * held[-1] - held[-2:-pad - 2:-1]])
    (a1, a2, a3), (b0, b1) = _DECIMATION_FILTERS[ratio]
    b, a = [b0, b1, b1, b0], [1.0, -a1, -a2, -a3]
    filtered = scipy.signal.lfilter(b, a, scipy.signal.lfilter(b, a, extended)[::-1])[::-1]
    n = held.size
    first = ratio - ratio * ((n - 1) // ratio + 1) + n
    decimated = filtered[first + pad - 1:n + pad - 1:ratio]
    return decimated[lag // ratio:lag // ratio + length].copy()


# ---------------------------------------------------------------------------------------------------------------
# Stage 2-3: band-pass channels -> per-frame F0 candidates
# ---------------------------------------------------------------------------------------------------------------

def _official_candidates(y: np.ndarray, fs: float, boundary_f0: np.ndarray, times: np.ndarray,
                         f0_floor: float, f0_ceil: float, report: _StageProgress) -> np.ndarray:
    """Per frame, the mean F0 of each run of >= 10 neighbouring channels with an estimate: [frames, n]."""
    num_channels = boundary_f0.size
    frames = times.size
    run_sum = np.zeros(frames)
    run_len = np.zeros(frames, dtype=np.int64)
    found = np.zeros((frames, num_channels // (_MIN_CHANNELS_PER_CANDIDATE + 1) + 1))
    found_count = np.zeros(frames, dtype=np.int64)

    def add_channel(channel_f0: np.ndarray) -> None:
        nonlocal run_sum, run_len
        voiced = channel_f0 > 0
        rows = np.flatnonzero(~voiced & (run_len >= _MIN_CHANNELS_PER_CANDIDATE))
        if rows.size:
            found[rows, found_count[rows]] = run_sum[rows] / run_len[rows]
            found_count[rows] += 1
        run_sum = np.where(voiced, run_sum + channel_f0, 0.0)
        run_len = np.where(voiced, run_len + 1, 0)

    # WORLD never lets the first and the last channel take part (they count as unvoiced everywhere), so they are
    # not computed: the runs start at the second channel, and an all-unvoiced last channel closes them.
    for channel_f0 in _channel_estimates(y, fs, boundary_f0, range(1, num_channels - 1), times, f0_floor, f0_ceil):
        add_channel(channel_f0)
        report.step()
    add_channel(np.zeros(frames))
    return found[:, :found_count.max(initial=0)]


def _channel_estimates(y: np.ndarray, fs: float, boundary_f0: np.ndarray, channels: range, times: np.ndarray,
                       f0_floor: float, f0_ceil: float, blocks_per_piece: int = 32):
    """Yield the F0 estimate per frame (or 0) of each of the band-pass `channels` in order (indices of boundary_f0).

    Each channel is ``y`` convolved with a cosine at the channel's frequency under a Nuttall window of four of its
    periods; WORLD does this as one long FFT per channel. Here one overlap-save block spectrum of ``y`` is shared
    by all channels, which gives the same linear convolution with far less work. A channel's output is produced
    `blocks_per_piece` blocks at a time and reduced to its zero crossings piece by piece, so the work memory of a
    channel does not grow with the length of the signal; every output sample comes from the same block transform
    whatever the piece size, so the estimates do not depend on it.
    """
    half_lengths = _matlab_round(fs / boundary_f0 * 2.0).astype(np.int64)
    longest = int(half_lengths.max())
    taps = 2 * longest + 1
    block = int(2 ** np.ceil(np.log2(max(16 * taps, 4096))))
    step = block - (taps - 1)
    num_blocks = -(-y.size // step)
    # WORLD keeps convolution sample n + half + 1 as output n; with every filter centred in `taps` taps that is
    # sample n + longest + 1 of the full convolution for all channels.
    start = longest + 1
    padded = np.zeros(start + num_blocks * step + (taps - 1))
    padded[taps - 1:taps - 1 + y.size] = y
    segments = np.lib.stride_tricks.sliding_window_view(padded[start:], block)[::step][:num_blocks]
    # Filters are symmetric: with each one centred on sample `longest` its spectrum is a real response times the
    # delay of `longest` samples, which is applied to the shared signal spectrum once.
    delay = np.exp(-2j * np.pi * np.arange(block // 2 + 1) * longest / block)
    delayed = (scipy.fft.rfft(segments, axis=-1, workers=-1) * delay).view(np.float64).reshape(
        num_blocks, block // 2 + 1, 2)
    del padded, segments

    filters = np.zeros((len(channels), block))
    for row, channel in enumerate(channels):
        half, f0 = half_lengths[channel], boundary_f0[channel]
        offsets = np.arange(-half, half + 1)
        filters[row, offsets % block] = _nuttall(2 * half + 1) * np.cos(2 * np.pi * f0 * offsets / fs)
    responses = scipy.fft.rfft(filters, axis=-1, workers=-1).real
    del filters

    def channel_pieces(row: int):
        """The channel's output samples, `blocks_per_piece` overlap-save blocks at a time."""
        for first in range(0, num_blocks, blocks_per_piece):
            last = min(first + blocks_per_piece, num_blocks)
            products = (delayed[first:last] * responses[row, :, None]).view(np.complex128)[..., 0]
            blocks = scipy.fft.irfft(products, n=block, axis=-1)
            yield blocks[:, taps - 1:].reshape(-1)[:y.size - first * step]

    def estimate(row: int) -> np.ndarray:
        return _channel_f0(channel_pieces(row), fs, boundary_f0[channels[row]], times, f0_floor, f0_ceil)

    # Channels run on a few threads (numpy and pocketfft release the GIL); results are consumed in order and at
    # most `workers` + 1 channels are in flight, so memory does not grow with the number of channels.
    workers = _workers()
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        pending = collections.deque()
        for row in range(len(channels)):
            pending.append(pool.submit(estimate, row))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # a consumer that stops early (a cancelled extraction) waits for the running channels only
        pool.shutdown(wait=True, cancel_futures=True)


def _nuttall(length: int) -> np.ndarray:
    phase = np.arange(length) / (length - 1.0)
    return (0.355768 - 0.487396 * np.cos(2.0 * np.pi * phase) + 0.144232 * np.cos(4.0 * np.pi * phase)
            - 0.012604 * np.cos(6.0 * np.pi * phase))


def _channel_f0(pieces, fs: float, boundary_f0: float, times: np.ndarray, f0_floor: float,
                f0_ceil: float) -> np.ndarray:
    """F0 per frame from the event intervals of one band-pass channel, given as consecutive pieces of its output;
    0 where the estimate is far from the channel."""
    # Falling and rising zero crossings of the signal, then of its slope (peaks and dips).
    events = _event_positions(pieces)
    if any(positions.size < 4 for positions in events):  # fewer than 3 intervals of some kind
        return np.zeros(times.size)
    # The mean of the four estimates, summed in order in place (one frame-long array at a time, not four).
    f0 = _interp1_extrapolate(*_intervals(events[0], fs), times)
    for positions in events[1:]:
        f0 += _interp1_extrapolate(*_intervals(positions, fs), times)
    f0 /= 4.0
    keep = (f0 <= boundary_f0 * 1.1) & (f0 >= boundary_f0 * 0.9) & (f0 <= f0_ceil) & (f0 >= f0_floor)
    return np.where(keep, f0, 0.0)


def _event_positions(pieces) -> list[np.ndarray]:
    """Sample positions of the falling and rising zero crossings of a signal, then of its slope.

    The signal comes as consecutive pieces. The last two samples of each piece are carried into the next one, so
    every pair of neighbouring samples (and of neighbouring slope values) is examined exactly once, with the same
    arithmetic as on the whole signal: the positions do not depend on where the pieces end.
    """
    found: list[list[np.ndarray]] = [[], [], [], []]
    carried = np.zeros(0)
    offset = 0  # index in the whole signal of the first sample of `piece`
    for new in pieces:
        piece = np.concatenate([carried, new])
        slope = piece[1:] - piece[:-1]
        # The pair of the two carried samples was examined with the previous piece; their slope value was not.
        for kind, (values, first) in enumerate(((piece, max(carried.size - 1, 0)), (slope, 0))):
            falling, rising = _zero_crossings(values, first, offset)
            found[2 * kind].append(falling)
            found[2 * kind + 1].append(rising)
        carried = piece[-2:].copy()
        offset += piece.size - carried.size
    return [np.concatenate(positions) if positions else np.zeros(0) for positions in found]


def _zero_crossings(values: np.ndarray, first: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Falling, then rising zero crossings between values[i] and values[i + 1] for i >= first, as positions
    (i + offset plus the linearly interpolated fraction).

    A falling crossing is a positive sample followed by one <= 0; a rising one a negative sample followed by one
    >= 0.
    """
    sign = (values > 0).view(np.int8) - (values < 0).view(np.int8)
    change = np.flatnonzero(sign[first:-1] != sign[first + 1:]) + first
    before = sign[change]
    change = change[before != 0]  # leaving 0 is no crossing
    falling = before[before != 0] == 1
    prev = values[change]
    fine = (change + (offset + 1)) - prev / (values[change + 1] - prev)
    return fine[falling], fine[~falling]


def _intervals(positions: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre times (s) and rates (Hz) of the intervals between successive events at the given sample positions."""
    return (positions[:-1] + positions[1:]) / 2.0 / fs, fs / (positions[1:] - positions[:-1])


def _interp1_extrapolate(x: np.ndarray, y: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation that extrapolates the end segments (WORLD's ``interp1``); x increasing."""
    out = np.interp(xi, x, y)
    for outside, k in ((xi < x[0], 1), (xi >= x[-1], x.size - 1)):
        if outside.any():
            s = (xi[outside] - x[k - 1]) / (x[k] - x[k - 1])
            out[outside] = y[k - 1] + s * (y[k] - y[k - 1])
    return out


def _spread_candidates(candidates: np.ndarray) -> np.ndarray:
    """Candidates of frames i-1..i-3 and then i+1..i+3 are appended to frame i (zeros beyond the ends)."""
    frames, n = candidates.shape
    spread = np.zeros((frames, n * (2 * _SPREAD_FRAMES + 1)))
    spread[:, :n] = candidates
    for shift in range(1, min(_SPREAD_FRAMES, frames - 1) + 1):
        spread[shift:, n * shift:n * (shift + 1)] = candidates[:frames - shift]
        spread[:frames - shift, n * (shift + _SPREAD_FRAMES):n * (shift + _SPREAD_FRAMES + 1)] = candidates[shift:]
    return spread


# ---------------------------------------------------------------------------------------------------------------
# Stage 3: instantaneous-frequency refinement of every candidate
# ---------------------------------------------------------------------------------------------------------------

def _refine_candidates(y: np.ndarray, fs: float, times: np.ndarray, candidates: np.ndarray, f0_floor: float,
                       f0_ceil: float, report: _StageProgress) -> np.ndarray:
    """Refine each candidate F0 (in place) from the instantaneous frequency of its harmonics; returns the scores.

    For a candidate at frame time t, WORLD windows the signal around t with a Blackman window of three candidate
    periods and takes two FFTs (window and its derivative). Only up to six bins of them are read, so here the DFT
    is evaluated at those bins only, as one matrix product per window length over all frames that need it.
    Frames are processed in chunks so that memory does not grow with the length of the signal.
    """
    scores = np.zeros_like(candidates)
    for lo in range(0, candidates.shape[0], _REFINE_FRAMES_PER_CHUNK):
        hi = min(lo + _REFINE_FRAMES_PER_CHUNK, candidates.shape[0])
        _refine_chunk(y, fs, times[lo:hi], candidates[lo:hi], f0_floor, f0_ceil, scores[lo:hi])
        report.step()
    return scores


def _refine_chunk(y: np.ndarray, fs: float, times: np.ndarray, candidates: np.ndarray, f0_floor: float,
                  f0_ceil: float, scores: np.ndarray, elements_per_chunk: int = 1 << 21) -> None:
    """Refine the candidates of a run of frames in place and write their scores (a view of the same shape)."""
    width = candidates.shape[1]
    flat_index = np.flatnonzero(candidates.ravel() > 0)
    if flat_index.size == 0:
        return
    f0 = candidates.ravel()[flat_index]
    t = times[flat_index // width]
    half = (1.5 * fs / f0 + 1.0).astype(np.int64)
    first_sample = _matlab_round((t + (-half) / fs) * fs + 0.001).astype(np.int64) - 1

    # The stretch of signal these windows cover (only it: a copy of the whole signal per chunk would make the
    # work grow with the square of its length); samples before/after the signal repeat its first/last value
    # (WORLD clamps the indices). Sample first_sample + k of a window is padded[first_sample + margin + k].
    margin = -int(first_sample.min())
    padded = y[np.clip(np.arange(-margin, int((first_sample + 2 * half).max()) + 1), 0, y.size - 1)]
    # Candidates sharing a window length and a sub-sample phase of t share one window (at 16 kHz input the phase
    # is the same for every frame); within such a group, candidates at the same frame share the windowed signal.
    # Everything below works on the candidates sorted by (window length, phase, first sample).
    phase = np.rint((first_sample - t * fs + half + 4.0) * 1e6).astype(np.int64)
    start_bits = int(padded.size).bit_length()
    key = (half << (start_bits + 24)) | (phase << start_bits) | (first_sample + margin)
    order = np.argsort(key)
    flat_index, f0, t, half, first_sample, key = (a[order] for a in (flat_index, f0, t, half, first_sample, key))
    new_row = np.concatenate([[True], key[1:] != key[:-1]])
    row_of = np.cumsum(new_row) - 1
    row_starts = first_sample[new_row] + margin
    group_key = key >> start_bits
    group_edges = np.flatnonzero(np.concatenate([[True], group_key[1:] != group_key[:-1], [True]]))

    fft_size = 2 ** (2 + (np.log(half * 2.0 + 1.0) / _LOG2).astype(np.int64))
    refined_f0 = np.empty(f0.size)
    score = np.empty(f0.size)

    def refine_group(lo: int, hi: int) -> None:
        h = int(half[lo])
        n = int(fft_size[lo])
        length = 2 * h + 1
        group_f0 = f0[lo:hi]
        harmonics = np.minimum((fs / 2.0 / group_f0).astype(np.int64), _MAX_HARMONICS)
        used = np.arange(1, _MAX_HARMONICS + 1) <= harmonics[:, None]
        bins = np.floor((group_f0 * n / fs)[:, None] * np.arange(1.0, _MAX_HARMONICS + 1) + 0.5).astype(np.int64)
        bins[~used] = 0
        main_window, diff_window = _refinement_windows(first_sample[lo], t[lo], h, fs)
        present = np.zeros(n // 2 + 1, dtype=bool)
        present[bins] = True
        group_bins = np.flatnonzero(present)
        nb = group_bins.size
        angle = 2.0 * np.pi * (np.outer(np.arange(length), group_bins) % n) / n
        cos, sin = np.cos(angle), np.sin(angle)
        # Columns: Re/Im of the windowed DFT for the main window, then for the derivative window.
        basis = np.concatenate([main_window[:, None] * cos, -main_window[:, None] * sin,
                                diff_window[:, None] * cos, -diff_window[:, None] * sin], axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(padded, length)
        row_lo, row_hi = row_of[lo], row_of[hi - 1] + 1
        spectra = np.empty((row_hi - row_lo, 4 * nb))
        chunk = max(1, elements_per_chunk // length)
        for first in range(row_lo, row_hi, chunk):
            last = min(first + chunk, row_hi)
            spectra[first - row_lo:last - row_lo] = windows[row_starts[first:last]] @ basis
        index = (row_of[lo:hi, None] - row_lo) * (4 * nb) + (np.cumsum(present) - 1)[bins]
        flat = spectra.ravel()
        main_re, main_im = flat.take(index), flat.take(index + nb)
        diff_re, diff_im = flat.take(index + 2 * nb), flat.take(index + 3 * nb)
        power = main_re * main_re + main_im * main_im
        cross = main_re * diff_im - main_im * diff_re

        with np.errstate(divide="ignore", invalid="ignore"):
            frequency = bins * fs / float(n) + cross / power * fs / 2.0 / np.pi
        frequency[power == 0.0] = 0.0
        amplitude = np.sqrt(power)
        numerator = np.zeros(hi - lo)
        denominator = np.zeros(hi - lo)
        deviation = np.zeros(hi - lo)
        for m in range(_MAX_HARMONICS):  # summed harmonic by harmonic, in WORLD's order
            weighted, weight = amplitude[:, m] * frequency[:, m], amplitude[:, m] * (m + 1.0)
            off_by = np.abs((frequency[:, m] / (m + 1.0) - group_f0) / group_f0)
            if not used[:, m].all():
                weighted[~used[:, m]] = weight[~used[:, m]] = off_by[~used[:, m]] = 0.0
            numerator += weighted
            denominator += weight
            deviation += off_by
        refined = numerator / (denominator + _SAFE_GUARD)
        group_score = 1.0 / (deviation / harmonics + _SAFE_GUARD)
        rejected = (refined < f0_floor) | (refined > f0_ceil) | (group_score < _MIN_SCORE)
        refined[rejected] = 0.0
        group_score[rejected] = 0.0
        refined_f0[lo:hi] = refined
        score[lo:hi] = group_score

    with concurrent.futures.ThreadPoolExecutor(_workers()) as pool:
        for done in [pool.submit(refine_group, lo, hi) for lo, hi in itertools.pairwise(group_edges)]:
            done.result()

    candidates.reshape(-1)[flat_index] = refined_f0
    scores.reshape(-1)[flat_index] = score


def _refinement_windows(first_sample: int, t: float, half: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Blackman window centred on time t over samples first_sample.., and its (negated) central difference."""
    window_length = (2.0 * half + 1.0) / fs
    offset = (first_sample + np.arange(2 * half + 1)) / fs - t
    main = (0.42 + 0.5 * np.cos(2.0 * np.pi * offset / window_length)
            + 0.08 * np.cos(4.0 * np.pi * offset / window_length))
    diff = np.empty_like(main)
    diff[0] = -main[1] / 2.0
    diff[1:-1] = -(main[2:] - main[:-2]) / 2.0
    diff[-1] = main[-2] / 2.0
    return main, diff


def _remove_unreliable_candidates(candidates: np.ndarray, scores: np.ndarray, rows_per_chunk: int = 16384) -> None:
    """Zero candidates with no candidate within 5 % in the previous or the next frame (in place)."""
    frames, width = candidates.shape
    if frames < 3 or width == 0:
        return
    # A candidate usually continues in the neighbouring frames in the same column, or (for the candidates spread
    # from frame s) in the column that holds frame s's candidates there. Those are kept at once, by a test with a
    # margin (|r - c| <= 0.0499 r implies |r - c| / r <= 0.05); the rest are decided exactly on whole rows.
    following_columns, preceding_columns = _spread_neighbour_columns(width)
    drop_rows, drop_columns = [], []
    for lo in range(1, frames - 1, rows_per_chunk):  # decided on the unmodified candidates, applied at the end
        hi = min(lo + rows_per_chunk, frames - 1)
        reference, following, preceding = candidates[lo:hi], candidates[lo + 1:hi + 1], candidates[lo - 1:hi - 1]
        limit = reference * 0.0499
        open_ = (reference != 0) & (np.abs(reference - following) > limit)
        open_ &= np.abs(reference - preceding) > limit
        for neighbour, columns in ((following, following_columns), (preceding, preceding_columns)):
            if columns is not None:
                own, other = columns
                open_[:, own] &= np.abs(reference[:, own] - neighbour[:, other]) > limit[:, own]
        rows, columns = np.nonzero(open_)
        value = reference[rows, columns][:, None]
        # Compared with whole neighbouring rows. min |r - c| / r over c equals (min |r - c|) / r: correctly rounded
        # division is monotonic.
        gap = np.minimum(np.abs(value - following[rows]).min(axis=1), np.abs(value - preceding[rows]).min(axis=1))
        unreliable = gap / value[:, 0] > 0.05
        drop_rows.append(rows[unreliable] + lo)
        drop_columns.append(columns[unreliable])
    drop = (np.concatenate(drop_rows), np.concatenate(drop_columns))
    candidates[drop] = 0.0
    scores[drop] = 0.0


def _spread_neighbour_columns(width: int):
    """Columns (own, neighbour's) where frame i+1 (first) and frame i-1 (second) hold the candidates that frame i
    has in its column, for the layout of ``_spread_candidates``; None when the width is not that layout."""
    blocks = 2 * _SPREAD_FRAMES + 1
    if width % blocks:
        return None, None
    n = width // blocks
    offsets = [0] + [-k for k in range(1, _SPREAD_FRAMES + 1)] + list(range(1, _SPREAD_FRAMES + 1))
    block_of = {offset: block for block, offset in enumerate(offsets)}
    pairs = []
    for step in (-1, 1):  # the next frame sees source frame s at offset one lower, the previous one higher
        own, other = [], []
        for block, offset in enumerate(offsets):
            if offset + step in block_of:
                own.extend(range(block * n, (block + 1) * n))
                other.extend(range(block_of[offset + step] * n, (block_of[offset + step] + 1) * n))
        pairs.append((np.array(own), np.array(other)))
    return pairs[0], pairs[1]


# ---------------------------------------------------------------------------------------------------------------
# Stage 4: contour selection and repair
# ---------------------------------------------------------------------------------------------------------------

def _best_candidate(candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
    if candidates.shape[1] == 0:
        return np.zeros(candidates.shape[0])
    best = np.argmax(scores, axis=1)
    rows = np.arange(candidates.shape[0])
    return np.where(scores[rows, best] > 0, candidates[rows, best], 0.0)


def _remove_jumps(f0: np.ndarray, allowed_range: float) -> np.ndarray:
    """Zero frames whose F0 departs from both the linear prediction and the previous frame."""
    out = np.zeros_like(f0)
    current, prev, prev2 = f0[2:], f0[1:-1], f0[:-2]
    prediction = prev * 2 - prev2
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = (np.abs((current - prediction) / prediction) > allowed_range) & (
            np.abs(current - prev) / prev > allowed_range)
    out[2:] = np.where(jump | (current == 0.0), 0.0, current)
    return out


def _voiced_runs(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last frame of each voiced run; the first and last frames never count as voiced."""
    voiced = f0 > 0
    if voiced.size:
        voiced[0] = voiced[-1] = False
    change = np.diff(voiced.astype(np.int8))
    return np.flatnonzero(change == 1) + 1, np.flatnonzero(change == -1)


def _remove_short_runs(f0: np.ndarray, minimum: int) -> np.ndarray:
    out = f0.copy()
    for start, end in zip(*_voiced_runs(f0)):
        if end - start < minimum:
            out[start:end + 1] = 0.0
    return out


def _extend_runs(f0: np.ndarray, starts: np.ndarray, ends: np.ndarray, candidates: np.ndarray,
                 allowed_range: float, direction: int) -> tuple[np.ndarray, np.ndarray]:
    """Follow the candidates from one end of every run at once while they stay close to the last value.

    From the run's end, each step takes the candidate of the next frame closest to the last accepted F0 (relative
    error <= allowed_range; on ties the later candidate), for at most 100 frames and until 4 steps in a row find
    none. Returns the accepted values [runs, 101] (0 = none; step s lands on frame origin + direction*(s+1)) and
    the new end of each run.
    """
    frames = f0.size
    origin = ends if direction > 0 else starts
    limit = np.minimum(frames - 2, ends + 100) if direction > 0 else np.maximum(1, starts - 100)
    steps = np.abs(limit - origin) + 1
    reference = f0[origin].copy()
    new_end = origin.copy()
    misses = np.zeros(origin.size, dtype=np.int64)
    values = np.zeros((origin.size, 101))
    active = np.flatnonzero(steps > 0)
    step = 0
    while active.size:
        frame = origin[active] + direction * (step + 1)
        options = candidates[frame]
        ref = reference[active, None]
        error = np.abs(ref - options) / ref
        error[error > allowed_range] = np.inf
        last_best = options.shape[1] - 1 - np.argmin(error[:, ::-1], axis=1)
        found = np.isfinite(error[np.arange(active.size), last_best])
        value = np.where(found, options[np.arange(active.size), last_best], 0.0)
        values[active, step] = value
        reference[active] = np.where(found, value, reference[active])
        new_end[active] = np.where(found, frame, new_end[active])
        misses[active] = np.where(found, 0, misses[active] + 1)
        step += 1
        active = active[(misses[active] < 4) & (steps[active] > step)]
    return values, new_end


def _extend_and_merge(f0: np.ndarray, candidates: np.ndarray, scores: np.ndarray,
                      allowed_range: float) -> np.ndarray:
    """Extend every voiced run along the candidates, keep the long ones and merge overlaps by score."""
    frames = f0.size
    starts, ends = _voiced_runs(f0)
    if starts.size == 0 or candidates.shape[1] == 0:
        return f0.copy()
    forward, new_ends = _extend_runs(f0, starts, ends, candidates, allowed_range, 1)
    backward, new_starts = _extend_runs(f0, starts, ends, candidates, allowed_range, -1)

    # Each extended run is kept as (first frame, values up to its new end); it is 0 elsewhere.
    kept_tracks, kept_bounds = [], []
    # Keep runs longer than 2200 / mean F0 frames. WORLD's running mean is not reset between runs; kept as is.
    running = np.float64(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for run in range(starts.size):
            start, end = int(starts[run]), int(ends[run])
            new_start, new_end = int(new_starts[run]), int(new_ends[run])
            values = np.concatenate([backward[run, :start - new_start][::-1], f0[start:end + 1],
                                     forward[run, :new_end - end]])
            running = np.cumsum(np.concatenate([[running], values[:-1]]))[-1] / np.float64(new_end - new_start)
            if 2200.0 / running < new_end - new_start:
                kept_tracks.append((new_start, values))
                kept_bounds.append([new_start, new_end])
    if not kept_tracks:
        return f0.copy()
    return _merge_runs(frames, kept_tracks, kept_bounds, candidates, scores)


def _track_values(track: tuple[int, np.ndarray], lo: int, hi: int) -> np.ndarray:
    """Values of a sparse run track over frames lo..hi (0 outside the run)."""
    first, values = track
    out = np.zeros(max(0, hi - lo + 1))
    a, b = max(lo, first), min(hi, first + values.size - 1)
    if b >= a:
        out[a - lo:b - lo + 1] = values[a - first:b - first + 1]
    return out


def _sorted_run_order(bounds: list[list[int]]) -> list[int]:
    """WORLD's ordering of runs by start frame (an exchange sort; reproduced for identical tie handling)."""
    order = list(range(len(bounds)))
    for i in range(1, len(order)):
        for j in range(i - 1, -1, -1):
            if bounds[order[j]][0] > bounds[order[i]][0]:
                order[i], order[j] = order[j], order[i]
            else:
                break
    return order


def _run_score(values: np.ndarray, lo: int, candidates: np.ndarray, scores: np.ndarray) -> float:
    """Sum over frames lo.. of the best score of a candidate equal to the given F0 values."""
    hi = lo + values.size
    matching = np.where(candidates[lo:hi] == values[:, None], scores[lo:hi], 0.0)
    per_frame = np.maximum(matching.max(axis=1, initial=0.0), 0.0)
    return float(np.cumsum(np.concatenate([[0.0], per_frame]))[-1])


def _merge_runs(frames: int, tracks: list[tuple[int, np.ndarray]], bounds: list[list[int]],
                candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
    order = _sorted_run_order(bounds)
    merged = _track_values(tracks[0], 0, frames - 1)
    # WORLD tracks the merged span in the first run's bound slot; it is updated as later runs are merged.
    span = bounds[0]
    for index in order[1:]:
        start, end = bounds[index]
        if start - span[1] > 0:
            merged[start:end + 1] = _track_values(tracks[index], start, end)
            span[0], span[1] = start, end
            continue
        if span[0] <= start and span[1] >= end:
            continue
        own = _run_score(merged[start:span[1] + 1], start, candidates, scores)
        other = _run_score(_track_values(tracks[index], start, span[1]), start, candidates, scores)
        lo = span[1] if own > other else start
        merged[lo:end + 1] = _track_values(tracks[index], lo, end)
        span[1] = end
    return merged


def _bridge_short_gaps(f0: np.ndarray, threshold: int) -> np.ndarray:
    """Fill unvoiced gaps shorter than threshold frames with a line between the neighbouring runs (offset 1 Hz)."""
    out = f0.copy()
    starts, ends = _voiced_runs(f0)
    for end, next_start in zip(ends[:-1], starts[1:]):
        distance = next_start - end - 1
        if distance >= threshold:
            continue
        low = f0[end] + 1
        high = f0[next_start] - 1
        slope = (high - low) / (distance + 1.0)
        out[end + 1:next_start] = low + slope * np.arange(1, distance + 1)
    return out


def _smooth_contour(f0: np.ndarray) -> np.ndarray:
    """Zero-phase Butterworth smoothing of each voiced run, its ends held constant outside it."""
    pad = _SMOOTHING_PAD
    padded = np.concatenate([np.zeros(pad), f0, np.zeros(pad)])
    smoothed = np.zeros(f0.size)
    (a1, a2), (b0, b1) = _SMOOTHING_FILTER
    b, a = [b0, b1, b0], [1.0, -a1, -a2]
    settle = _SMOOTHING_SETTLE
    for start, end in zip(*_voiced_runs(padded)):
        # WORLD filters the whole padded contour with the run's end values held outside it; the filter forgets
        # its start within a few hundred frames, so a window of `settle` held frames each side gives the same.
        lo, hi = max(0, start - settle), min(padded.size, end + 1 + settle)
        segment = padded[lo:hi].copy()
        segment[:start - lo] = padded[start]
        segment[end + 1 - lo:] = padded[end]
        filtered = scipy.signal.lfilter(b, a, scipy.signal.lfilter(b, a, segment)[::-1])[::-1]
        smoothed[start - pad:end + 1 - pad] = filtered[start - lo:end + 1 - lo]
    return smoothed
