"""Test audio: a synthetic speech-like signal (no files or tools needed), 16-bit WAV writing, espeak-ng speech, and
the synthetic signals the pitch tracker is compared on."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

# (voice, words per minute, pitch 0-99, text): several voices, speeds, pitches and languages. The tests use the
# first four; tools/compare_harvest.py and tools/compare_features.py all of them.
ESPEAK_CLIPS = [
    ("en-us", 160, 50, "The quick brown fox jumps over the lazy dog. Where are you going today?"),
    ("en+f3", 140, 70, "She sells sea shells by the sea shore, and the shells she sells are surely seashells."),
    ("en-gb", 220, 30, "It was a bright cold day in April, and the clocks were striking thirteen."),
    ("de", 150, 40, "Der schnelle braune Fuchs springt über den faulen Hund. Wie geht es dir heute?"),
    ("fr+f2", 170, 60, "Le vif renard brun saute par-dessus le chien paresseux. Comment allez-vous?"),
    ("es", 130, 20, "El veloz murciélago hindú comía feliz cardillo y kiwi. ¿Dónde está la biblioteca?"),
    ("it+m3", 180, 80, "Ma la volpe, col suo balzo, ha raggiunto il quieto Fido. Che bella giornata!"),
    ("ja", 180, 50, "今日はいい天気ですね。"),
]

# The pitch tracker's synthetic test signals (see `synthetic_signal`), with a description for printed tables.
SYNTHETIC_SIGNALS = {
    "sine": "sine 220 Hz",
    "sawtooth": "sawtooth 130 Hz",
    "sweep": "sweep 80-600 Hz",
    "noise": "white noise",
    "silence": "silence",
    "glide": "harmonic glide + noise",
}


def speech_like(seconds: float = 1.0, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """[channels, samples] float64 within ±0.6: a voiced harmonic tone (7 harmonics) whose pitch glides between 100
    and 180 Hz, in syllable-long bursts with short pauses, over a faint noise floor. Enough for audio features, the
    pitch tracker and a soundtrack. Each channel is a little higher in pitch and has its own noise, so a downmix is
    not any one channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    syllables = np.sin(2 * np.pi * 3 * t) > -0.3
    rows = []
    for channel in range(channels):
        phase = 2 * np.pi * np.cumsum(140 + 10 * channel + 40 * np.sin(2 * np.pi * 1.5 * t)) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        rows.append(0.3 * voice * syllables + 0.01 * rng.standard_normal(t.size))
    return np.stack(rows)


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit integers (rounded, clipped at full scale)."""
    return np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """A 16-bit WAV of float samples, [samples] or [channels, samples]; returns the path."""
    from scipy.io import wavfile

    samples = np.asarray(samples)
    wavfile.write(path, rate, pcm16(samples if samples.ndim == 1 else samples.T))
    return Path(path)


def espeak(path: str | Path, voice: str, speed: int, pitch: int, text: str) -> Path:
    """Writes `text` spoken by espeak-ng (voice, words per minute, pitch 0-99) to the WAV `path` (espeak's native
    22.05 kHz) and returns the path; raises CalledProcessError (with espeak's output) when espeak-ng fails."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                   check=True, capture_output=True)
    return Path(path)


def espeak_16k(folder: str | Path, voice: str, speed: int, pitch: int, text: str, rate: int = 16000) -> np.ndarray:
    """espeak-ng speech as float64 at `rate` (scipy polyphase resampling from espeak's 22.05 kHz); the WAV is
    written into `folder`."""
    import scipy.io.wavfile
    import scipy.signal

    path = espeak(Path(folder) / f"{voice}-{speed}-{pitch}.wav", voice, speed, pitch, text)
    native, samples = scipy.io.wavfile.read(path)
    divisor = np.gcd(rate, native)
    return scipy.signal.resample_poly(samples.astype(np.float64) / 32768.0, rate // divisor, native // divisor)


def synthetic_signal(name: str, seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """One of SYNTHETIC_SIGNALS as float64 at `rate`: pure tones and a sweep, white noise, digital silence, and a
    speech-like harmonic glide (pitch 80-160 Hz) over a faint noise floor."""
    import scipy.signal

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
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
    if name == "glide":
        phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / rate
        return 0.2 * sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.01 * rng.standard_normal(t.size)
    raise ValueError(f"unknown test signal {name!r}; one of {sorted(SYNTHETIC_SIGNALS)}")
