"""Our Harvest port against pyworld.harvest (the original's pitch tracker) and against known pitches.

Fidelity targets (issue 3): voicing agrees with pyworld on >= 99.5 % of frames, and the F0 after the original's
filling of unvoiced frames has a median error <= 1 cent. In practice the port agrees to ~1e-9 cents wherever the
input has a noise floor; on synthetic digital silence WORLD's own FFT rounding noise decides a few frames at the
edges of silent stretches, which no reimplementation can reproduce bit for bit.
"""
import shutil
import subprocess

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal

from a2h_core.audio.features import interpolate_unvoiced
from a2h_core.audio.harvest import harvest, num_frames

try:
    import pyworld
except ImportError:  # the comparisons skip; the self-contained tests still run
    pyworld = None

needs_pyworld = pytest.mark.skipif(pyworld is None, reason="pyworld not installed (pip install pyworld)")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (apt-get install espeak-ng)")

FS = 16000


def _cents_after_filling(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    filled_ours = interpolate_unvoiced(ours, ours > 0)
    filled_ref = interpolate_unvoiced(reference, reference > 0)
    both = (filled_ours > 0) & (filled_ref > 0)
    assert (filled_ours > 0).any() == (filled_ref > 0).any(), "one side found pitch, the other none"
    return 1200.0 * np.abs(np.log2(filled_ours[both] / filled_ref[both])) if both.any() else np.zeros(1)


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


def _synthetic(name: str, seconds: float = 2.0, fs: int = FS) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * fs)) / fs
    if name == "sine":
        return 0.5 * np.sin(2 * np.pi * 220 * t)
    if name == "sawtooth":
        return 0.4 * scipy.signal.sawtooth(2 * np.pi * 130 * t)
    if name == "sweep":
        return 0.5 * scipy.signal.chirp(t, 80, t[-1], 600, method="logarithmic")
    if name == "noise":
        return 0.3 * rng.standard_normal(t.size)
    if name == "silence":
        return np.zeros(t.size)
    if name == "glide":  # a vowel-like harmonic tone whose pitch moves 80-160 Hz, over a faint noise floor
        phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / fs
        return 0.2 * sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.01 * rng.standard_normal(t.size)
    raise ValueError(name)


def _speak(tmp_path, voice: str, speed: int, pitch: int, text: str) -> np.ndarray:
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                   check=True, capture_output=True)
    rate, samples = scipy.io.wavfile.read(path)
    divisor = np.gcd(FS, rate)
    return scipy.signal.resample_poly(samples.astype(np.float64) / 32768.0, FS // divisor, rate // divisor)


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


# --- against pyworld -------------------------------------------------------------------------------------------

@needs_pyworld
@pytest.mark.parametrize("name", ["sine", "sawtooth", "sweep", "noise", "silence", "glide"])
def test_synthetic_matches_pyworld(name):
    _assert_matches_pyworld(_synthetic(name), exact_p95_cents=1e-3)


SPEECH = [  # (voice, words per minute, pitch 0-99, text): voices, speeds, pitches and languages
    ("en-us", 170, 50, "The quick brown fox jumps over the lazy dog."),
    ("en+f3", 140, 75, "She sells sea shells by the sea shore."),
    ("de", 210, 30, "Wie geht es dir heute, mein Freund?"),
    ("fr+f2", 130, 85, "Le vif renard brun saute par-dessus le chien."),
]


@needs_pyworld
@needs_espeak
@pytest.mark.parametrize("voice, speed, pitch, text", SPEECH)
def test_espeak_speech_with_noise_floor_matches_pyworld(tmp_path, voice, speed, pitch, text):
    speech = _speak(tmp_path, voice, speed, pitch, text)
    # Real recordings have a noise floor; with it the port reproduces WORLD to rounding.
    noise = np.random.default_rng(speed).standard_normal(speech.size)
    _assert_matches_pyworld(speech + 3e-4 * noise, exact_p95_cents=1e-3)


@needs_pyworld
@needs_espeak
def test_espeak_speech_with_digital_silence_matches_pyworld(tmp_path):
    # espeak-ng leaves exact digital silence between words. There WORLD's band-pass outputs are a constant plus
    # FFT rounding noise whose peaks and dips decide a few frames at the edges of the silences, in WORLD as here,
    # so single frames may differ; the targets hold over the whole set.
    ours, reference = [], []
    for voice, speed, pitch, text in SPEECH:
        speech = _speak(tmp_path, voice, speed, pitch, text)
        ours.append(harvest(speech, FS)[0])
        reference.append(pyworld.harvest(speech, FS, frame_period=10.0)[0])
    agreement = np.mean((np.concatenate(ours) > 0) == (np.concatenate(reference) > 0))
    cents = np.concatenate([_cents_after_filling(a, b) for a, b in zip(ours, reference)])
    assert agreement >= 0.995, f"voicing agrees on only {100 * agreement:.2f}% of frames"
    assert np.median(cents) <= 1.0, f"median error {np.median(cents):.3g} cents"


@needs_pyworld
@pytest.mark.parametrize("fs", [8000, 11025, 22050, 44100, 48000])
def test_other_sample_rates_match_pyworld(fs):
    _assert_matches_pyworld(_synthetic("glide", seconds=1.5, fs=fs), fs=fs, exact_p95_cents=1e-3)


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
    _assert_matches_pyworld(_synthetic("glide", seconds=1.0), frame_period=frame_period, exact_p95_cents=1e-3)
