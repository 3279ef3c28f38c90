"""Our Harvest port against pyworld.harvest (the original's pitch tracker) and against known pitches.

Fidelity targets (issue 3): voicing agrees with pyworld on >= 99.5 % of frames, and the F0 after the original's
filling of unvoiced frames has a median error <= 1 cent. In practice the port agrees to ~1e-9 cents wherever the
input has a noise floor; on synthetic digital silence WORLD's own FFT rounding noise decides a few frames at the
edges of silent stretches, which no reimplementation can reproduce bit for bit.
"""
import numpy as np
import pytest
import scipy.signal

from a2h_core.audio import harvest as harvest_module
from a2h_core.audio.harvest import harvest, num_frames
from a2h_devkit.pitch import cents_after_filling
from a2h_devkit.speech import ESPEAK_CLIPS, SYNTHETIC_SIGNALS, espeak_16k, speech_like, synthetic_signal

try:
    import pyworld
except ImportError:  # the comparisons skip; the self-contained tests still run
    pyworld = None

needs_pyworld = pytest.mark.skipif(pyworld is None, reason="pyworld not installed (pip install pyworld)")

FS = 16000


def _cents_after_filling(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """a2h_devkit's F0 error in cents; both sides must agree on whether there is any pitch at all."""
    cents = cents_after_filling(ours, reference)
    assert np.isfinite(cents).all(), "one side found pitch, the other none"
    return cents if cents.size else np.zeros(1)


def _assert_matches_pyworld(signal: np.ndarray, fs: int = FS, frame_period: float = 10.0,
                            exact_p95_cents: float | None = None) -> None:
    ours, ours_time = harvest(signal, fs, frame_period=frame_period)
    reference, reference_time = pyworld.harvest(signal, fs, frame_period=frame_period)
    assert ours.dtype == np.float64 and ours_time.dtype == np.float64
    assert ours.shape == reference.shape
    np.testing.assert_array_equal(ours_time, reference_time)
    agreement = np.mean((ours > 0) == (reference > 0))
    cents = _cents_after_filling(ours, reference)
    assert agreement >= 0.995, f"voicing agrees on only {100 * agreement:.2f}% of frames"
    assert np.median(cents) <= 1.0, f"median error {np.median(cents):.3g} cents"
    if exact_p95_cents is not None:  # signals with a noise floor: the port reproduces WORLD to rounding
        assert np.percentile(cents, 95) <= exact_p95_cents, f"p95 error {np.percentile(cents, 95):.3g} cents"


# --- self-contained behaviour ----------------------------------------------------------------------------------

@pytest.mark.parametrize("samples, fs, frame_period", [(32000, 16000, 10.0), (32001, 16000, 10.0),
                                                       (12345, 22050, 5.0), (800, 8000, 10.0),
                                                       (48000, 48000, 12.5)])
def test_frame_count_and_time_axis(samples, fs, frame_period):
    signal = 0.1 * np.random.default_rng(1).standard_normal(samples)
    f0, times = harvest(signal, fs, frame_period=frame_period)
    expected = int(1000.0 * samples / fs / frame_period) + 1
    assert num_frames(samples, fs, frame_period) == expected
    assert f0.shape == times.shape == (expected,)
    np.testing.assert_array_equal(times, np.arange(expected) * frame_period / 1000.0)
    assert np.all(f0 >= 0)


def test_silence_is_unvoiced():
    f0, _ = harvest(np.zeros(FS), FS)
    assert np.all(f0 == 0)


@pytest.mark.parametrize("pitch", [100.0, 180.0, 320.0])
def test_sawtooth_pitch_is_found(pitch):
    t = np.arange(2 * FS) / FS
    f0, _ = harvest(0.4 * scipy.signal.sawtooth(2 * np.pi * pitch * t), FS)
    voiced = f0[20:-20]
    assert np.all(voiced > 0)
    cents = np.abs(1200 * np.log2(voiced / pitch))
    assert np.median(cents) < 3.0 and np.max(cents) < 10.0  # Harvest's own accuracy on a clean tone


def test_f0_range_is_respected():
    t = np.arange(2 * FS) / FS
    f0, _ = harvest(0.4 * scipy.signal.sawtooth(2 * np.pi * 150 * t), FS, f0_floor=200.0, f0_ceil=600.0)
    assert np.all((f0 == 0) | ((f0 >= 200.0) & (f0 <= 600.0)))


@pytest.mark.parametrize("bad", [np.zeros((2, 100)), np.zeros(1), np.array([0.0, np.nan, 0.1]),
                                 np.array([0.0, np.inf, 0.1])])
def test_rejects_unusable_signals(bad):
    with pytest.raises(ValueError):
        harvest(bad, FS)


def test_integer_and_float_input_give_the_same_pitch():
    t = np.arange(FS) / FS
    tone = 0.4 * scipy.signal.sawtooth(2 * np.pi * 150 * t)
    as_int16 = np.round(tone * 32767).astype(np.int16)
    np.testing.assert_allclose(harvest(as_int16, FS)[0], harvest(as_int16 / 32767.0, FS)[0], rtol=1e-9)


# --- processing in pieces (bounded memory) gives the whole-signal result ---------------------------------------

def _crossings_one_by_one(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Falling / rising zero crossings, sample pair by sample pair: a positive sample then one <= 0 / a negative
    sample then one >= 0, placed by linear interpolation."""
    falling, rising = [], []
    for i in range(signal.size - 1):
        a, b = signal[i], signal[i + 1]
        if (a > 0 and b <= 0) or (a < 0 and b >= 0):
            (falling if a > 0 else rising).append((i + 1) - a / (b - a))
    return np.array(falling), np.array(rising)


def test_event_positions_do_not_depend_on_the_pieces():
    rng = np.random.default_rng(3)
    signal = rng.standard_normal(3000)
    signal[100:140] = 0.0  # a run of exact zeros: leaving 0 is no crossing
    signal[500:503] = [0.5, 0.0, -0.5]
    expected = [*_crossings_one_by_one(signal), *_crossings_one_by_one(signal[1:] - signal[:-1])]
    cuts = np.cumsum(rng.integers(1, 40, 300))
    for pieces in ([signal], np.split(signal, cuts[cuts < signal.size]), np.split(signal, signal.size)):
        # Element-wise arithmetic only, in the same order as on the whole signal: equal on any CPU.
        for ours, reference in zip(harvest_module._event_positions(pieces), expected, strict=True):
            np.testing.assert_array_equal(ours, reference)


def test_channel_estimates_do_not_depend_on_the_piece_size():
    y = speech_like(3.0, 8000)[0]  # Harvest's decimated rate: 4 overlap-save blocks
    boundary_f0 = harvest_module._channel_frequencies(71.0, 800.0)
    times = np.arange(num_frames(2 * y.size, 16000, 1.0)) / 1000.0
    arguments = (y, 8000.0, boundary_f0, range(boundary_f0.size), times, 71.0, 800.0)
    whole = list(harvest_module._channel_estimates(*arguments, blocks_per_piece=100))
    in_pieces = list(harvest_module._channel_estimates(*arguments, blocks_per_piece=1))
    assert len(in_pieces) == len(whole) == boundary_f0.size
    assert sum(np.count_nonzero(estimate) for estimate in whole) > 10 * times.size  # the test sees estimates
    # Each output sample comes from the same block transform either way; only the number of blocks per inverse FFT
    # call differs. pocketfft transforms each block alone with the same arithmetic, so the estimates are identical
    # in practice (features are compared bit for bit by tools/compare_features.py); the test allows rounding.
    for ours, reference in zip(in_pieces, whole):
        np.testing.assert_array_equal(ours > 0, reference > 0)
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=0)


# --- against pyworld -------------------------------------------------------------------------------------------

@needs_pyworld
@pytest.mark.parametrize("name", list(SYNTHETIC_SIGNALS))
def test_synthetic_matches_pyworld(name):
    _assert_matches_pyworld(synthetic_signal(name), exact_p95_cents=1e-3)


SPEECH = ESPEAK_CLIPS[:4]  # (voice, words per minute, pitch 0-99, text): voices, speeds, pitches and languages


@needs_pyworld
@pytest.mark.parametrize("voice, speed, pitch, text", SPEECH, ids=[clip[0] for clip in SPEECH])
def test_espeak_speech_with_noise_floor_matches_pyworld(tmp_path, espeak_ng, voice, speed, pitch, text):
    speech = espeak_16k(tmp_path, voice, speed, pitch, text)
    # Real recordings have a noise floor; with it the port reproduces WORLD to rounding.
    noise = np.random.default_rng(speed).standard_normal(speech.size)
    _assert_matches_pyworld(speech + 3e-4 * noise, exact_p95_cents=1e-3)


@needs_pyworld
def test_espeak_speech_with_digital_silence_matches_pyworld(tmp_path, espeak_ng):
    # espeak-ng leaves exact digital silence between words. There WORLD's band-pass outputs are a constant plus
    # FFT rounding noise whose peaks and dips decide a few frames at the edges of the silences, in WORLD as here,
    # so single frames may differ; the targets hold over the whole set.
    ours, reference = [], []
    for voice, speed, pitch, text in SPEECH:
        speech = espeak_16k(tmp_path, voice, speed, pitch, text)
        ours.append(harvest(speech, FS)[0])
        reference.append(pyworld.harvest(speech, FS, frame_period=10.0)[0])
    agreement = np.mean((np.concatenate(ours) > 0) == (np.concatenate(reference) > 0))
    cents = np.concatenate([_cents_after_filling(a, b) for a, b in zip(ours, reference)])
    assert agreement >= 0.995, f"voicing agrees on only {100 * agreement:.2f}% of frames"
    assert np.median(cents) <= 1.0, f"median error {np.median(cents):.3g} cents"


@needs_pyworld
@pytest.mark.parametrize("fs", [8000, 11025, 22050, 44100, 48000])
def test_other_sample_rates_match_pyworld(fs):
    _assert_matches_pyworld(synthetic_signal("glide", seconds=1.5, rate=fs), fs=fs, exact_p95_cents=1e-3)


@needs_pyworld
@pytest.mark.parametrize("samples", [2, 3, 7, 10, 40, 161, 1000])
@pytest.mark.parametrize("fs", [4000, 8000, 16000, 44100])
def test_very_short_signals_match_pyworld(samples, fs):
    signal = 0.1 * np.random.default_rng(samples).standard_normal(samples)
    ours, ours_time = harvest(signal, fs)
    reference, reference_time = pyworld.harvest(signal, fs, frame_period=10.0)
    np.testing.assert_array_equal(ours_time, reference_time)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=0)


@needs_pyworld
@pytest.mark.parametrize("frame_period", [1.0, 5.0, 12.5])
def test_other_frame_periods_match_pyworld(frame_period):
    _assert_matches_pyworld(synthetic_signal("glide", seconds=1.0), frame_period=frame_period, exact_p95_cents=1e-3)
