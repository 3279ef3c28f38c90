"""Compare our Harvest port (`a2h_core.audio.harvest`) with pyworld.harvest, side by side.

    python tools/compare_harvest.py                 # fidelity table + timing for 10 s and 60 s
    python tools/compare_harvest.py --no-timing     # fidelity only
    python tools/compare_harvest.py --timing-seconds 10 60 600

For every signal (espeak-ng speech in several voices, speeds, pitches and languages, and synthetic signals) it
prints: the share of frames whose voicing agrees, the median / 95th percentile / maximum F0 error in cents after the
unvoiced frames are filled as the original does (linear between voiced neighbours, edges held), and the largest
absolute difference of the raw F0 in Hz. Needs pyworld; speech rows need espeak-ng (skipped when absent).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import scipy.signal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _espeak import espeak  # noqa: E402

from a2h_core.audio.features import interpolate_unvoiced  # noqa: E402
from a2h_core.audio.harvest import harvest  # noqa: E402

SAMPLE_RATE = 16000
FRAME_PERIOD_MS = 10.0

SPEECH = [  # (voice, words per minute, pitch 0-99, text)
    ("en-us", 160, 50, "The quick brown fox jumps over the lazy dog. Where are you going today?"),
    ("en+f3", 140, 70, "She sells sea shells by the sea shore, and the shells she sells are surely seashells."),
    ("en-gb", 220, 30, "It was a bright cold day in April, and the clocks were striking thirteen."),
    ("de", 150, 40, "Der schnelle braune Fuchs springt über den faulen Hund. Wie geht es dir heute?"),
    ("fr+f2", 170, 60, "Le vif renard brun saute par-dessus le chien paresseux. Comment allez-vous?"),
    ("es", 130, 20, "El veloz murciélago hindú comía feliz cardillo y kiwi. ¿Dónde está la biblioteca?"),
    ("it+m3", 180, 80, "Ma la volpe, col suo balzo, ha raggiunto il quieto Fido. Che bella giornata!"),
    ("ja", 180, 50, "今日はいい天気ですね。"),
]


def speak(voice: str, speed: int, pitch: int, text: str, workdir: Path) -> np.ndarray:
    """espeak-ng speech as float64 at 16 kHz (scipy polyphase resampling from espeak's 22.05 kHz)."""
    path = espeak(workdir / f"{voice}-{speed}-{pitch}.wav", voice, speed, pitch, text, capture_output=True)
    rate, samples = scipy.io.wavfile.read(path)
    signal = samples.astype(np.float64) / 32768.0
    divisor = np.gcd(SAMPLE_RATE, rate)
    return scipy.signal.resample_poly(signal, SAMPLE_RATE // divisor, rate // divisor)


def synthetic_signals(seconds: float = 3.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Sine, sawtooth, sweep, noise, silence (and speech-like harmonic glide with noise) at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    glide = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    glide_phase = 2 * np.pi * np.cumsum(glide) / SAMPLE_RATE
    return {
        "sine 220 Hz": 0.5 * np.sin(2 * np.pi * 220 * t),
        "sawtooth 130 Hz": 0.4 * scipy.signal.sawtooth(2 * np.pi * 130 * t),
        "sweep 80-600 Hz": 0.5 * scipy.signal.chirp(t, 80, t[-1], 600, method="logarithmic"),
        "white noise": 0.3 * rng.standard_normal(t.size),
        "silence": np.zeros(t.size),
        "harmonic glide + noise": sum(np.sin(k * glide_phase) / k for k in range(1, 8)) * 0.2
        + 0.01 * rng.standard_normal(t.size),
    }


def compare(ours: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Voicing agreement and F0 error (cents, after the original's interpolation of unvoiced frames)."""
    cents = _filled_cents(ours, reference)
    if cents.size == 0:
        cents = np.zeros(1)
    return {
        "voicing_agreement": float(np.mean((ours > 0) == (reference > 0))),
        "voiced_share": float(np.mean(reference > 0)),
        "median_cents": float(np.median(cents)),
        "p95_cents": float(np.percentile(cents, 95)),
        "max_cents": float(cents.max()),
        "max_abs_hz": float(np.max(np.abs(ours - reference))),
    }


def _filled_cents(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-frame |error| in cents after filling unvoiced frames on both sides (empty if neither has pitch)."""
    filled_ours = interpolate_unvoiced(ours, ours > 0)
    filled_ref = interpolate_unvoiced(reference, reference > 0)
    if (filled_ours > 0).any() != (filled_ref > 0).any():
        return np.full(ours.size, np.inf)  # one side found pitch, the other none at all
    both = (filled_ours > 0) & (filled_ref > 0)
    return 1200.0 * np.abs(np.log2(filled_ours[both] / filled_ref[both]))


def fidelity_signals(workdir: Path) -> dict[str, np.ndarray]:
    signals = {}
    if shutil.which("espeak-ng"):
        for voice, speed, pitch, text in SPEECH:
            speech = speak(voice, speed, pitch, text, workdir)
            signals[f"espeak {voice} s{speed} p{pitch}"] = speech
            # Real recordings have a noise floor; espeak has digital silence between words (see the notes below).
            noise = np.random.default_rng(speed + pitch).standard_normal(speech.size)
            signals[f"espeak {voice} s{speed} p{pitch} +noise"] = speech + 3e-4 * noise
    else:
        print("espeak-ng not found: speech rows skipped (apt-get install espeak-ng)")
    signals.update(synthetic_signals())
    return signals


def print_fidelity(signals: dict[str, np.ndarray]) -> None:
    import pyworld

    header = f"{'signal':42s} {'sec':>5s} {'voiced':>7s} {'agree %':>8s} {'median c':>9s} {'p95 c':>9s} " \
             f"{'max c':>9s} {'max |Hz|':>9s}"
    print(header)
    print("-" * len(header))
    rows, all_ours, all_reference = [], [], []
    for name, signal in signals.items():
        ours, _ = harvest(signal, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)
        reference, _ = pyworld.harvest(signal, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)
        all_ours.append(ours)
        all_reference.append(reference)
        row = compare(ours, reference)
        rows.append((name, signal.size, row))
        print(f"{name:42s} {signal.size / SAMPLE_RATE:5.1f} {100 * row['voiced_share']:6.1f}% "
              f"{100 * row['voicing_agreement']:8.3f} {row['median_cents']:9.2e} {row['p95_cents']:9.2e} "
              f"{row['max_cents']:9.2e} {row['max_abs_hz']:9.2e}")
    frames = np.array([size for _, size, _ in rows], dtype=np.float64)
    agreement = np.array([row["voicing_agreement"] for _, _, row in rows])
    print(f"\nall signals: voicing agreement {100 * np.sum(agreement * frames) / frames.sum():.3f}% "
          f"(worst {100 * agreement.min():.3f}%), worst median {max(r['median_cents'] for _, _, r in rows):.2e} "
          f"cents, worst p95 {max(r['p95_cents'] for _, _, r in rows):.2e} cents")
    cents = np.concatenate([_filled_cents(a, b) for a, b in zip(all_ours, all_reference)])
    print(f"all frames pooled: median {np.median(cents):.2e} cents, p95 {np.percentile(cents, 95):.2e} cents, "
          f"p99 {np.percentile(cents, 99):.2e} cents over {cents.size} frames")


def print_timing(seconds_list: list[float], workdir: Path) -> None:
    import pyworld

    if shutil.which("espeak-ng"):
        pieces = [speak(voice, speed, pitch, text, workdir) for voice, speed, pitch, text in SPEECH[:4]]
        base = np.concatenate(pieces)
    else:
        base = synthetic_signals(10.0)["harmonic glide + noise"]
    base = base + 3e-4 * np.random.default_rng(1).standard_normal(base.size)
    print(f"\ntiming on {os.cpu_count()} CPU cores (wall clock, best of runs; load average "
          f"{os.getloadavg()[0]:.1f})")
    print(f"{'audio':>8s} {'ours s':>8s} {'pyworld s':>10s} {'speed-up':>9s} {'agree %':>8s} {'median c':>9s}")
    for seconds in seconds_list:
        signal = np.tile(base, int(np.ceil(seconds * SAMPLE_RATE / base.size)))[:int(seconds * SAMPLE_RATE)]
        ours_time, ours = _best_time(lambda: harvest(signal, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)[0],
                                     2 if seconds <= 60 else 1)
        reference_time, reference = _best_time(
            lambda: pyworld.harvest(signal, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)[0], 1)
        row = compare(ours, reference)
        print(f"{seconds:7.0f}s {ours_time:8.2f} {reference_time:10.2f} {reference_time / ours_time:8.1f}x "
              f"{100 * row['voicing_agreement']:8.3f} {row['median_cents']:9.2e}")


def _best_time(run, repeats: int):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-timing", action="store_true", help="skip the 10 s / 60 s timing")
    parser.add_argument("--no-fidelity", action="store_true", help="skip the per-signal fidelity table")
    parser.add_argument("--timing-seconds", type=float, nargs="+", default=[10.0, 60.0],
                        help="audio lengths to time (default 10 60)")
    args = parser.parse_args()
    try:
        import pyworld  # noqa: F401
    except ImportError:
        print("pyworld is not installed: nothing to compare with (pip install pyworld)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if not args.no_fidelity:
            print_fidelity(fidelity_signals(workdir))
        if not args.no_timing:
            print_timing(args.timing_seconds, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
