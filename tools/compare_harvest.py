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
from pathlib import Path

import numpy as np

from a2h_core.audio.harvest import harvest
from a2h_devkit.pitch import cents_after_filling
from a2h_devkit.speech import ESPEAK_CLIPS, SYNTHETIC_SIGNALS, espeak_16k, synthetic_signal
from a2h_devkit.timing import best_time

SAMPLE_RATE = 16000
FRAME_PERIOD_MS = 10.0


def compare(ours: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Voicing agreement and F0 error (cents, after the original's interpolation of unvoiced frames)."""
    cents = cents_after_filling(ours, reference)
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


def fidelity_signals(workdir: Path) -> dict[str, np.ndarray]:
    signals = {}
    if shutil.which("espeak-ng"):
        for voice, speed, pitch, text in ESPEAK_CLIPS:
            speech = espeak_16k(workdir, voice, speed, pitch, text)
            signals[f"espeak {voice} s{speed} p{pitch}"] = speech
            # Real recordings have a noise floor; espeak has digital silence between words (see the notes below).
            noise = np.random.default_rng(speed + pitch).standard_normal(speech.size)
            signals[f"espeak {voice} s{speed} p{pitch} +noise"] = speech + 3e-4 * noise
    else:
        print("espeak-ng not found: speech rows skipped (apt-get install espeak-ng)")
    signals.update({label: synthetic_signal(name, seconds=3.0) for name, label in SYNTHETIC_SIGNALS.items()})
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
    cents = np.concatenate([cents_after_filling(a, b) for a, b in zip(all_ours, all_reference)])
    print(f"all frames pooled: median {np.median(cents):.2e} cents, p95 {np.percentile(cents, 95):.2e} cents, "
          f"p99 {np.percentile(cents, 99):.2e} cents over {cents.size} frames")


def print_timing(seconds_list: list[float], workdir: Path) -> None:
    import pyworld

    if shutil.which("espeak-ng"):
        pieces = [espeak_16k(workdir, voice, speed, pitch, text) for voice, speed, pitch, text in ESPEAK_CLIPS[:4]]
        base = np.concatenate(pieces)
    else:
        base = synthetic_signal("glide", seconds=10.0)
    base = base + 3e-4 * np.random.default_rng(1).standard_normal(base.size)
    print(f"\ntiming on {os.cpu_count()} CPU cores (wall clock, best of runs; load average "
          f"{os.getloadavg()[0]:.1f})")
    print(f"{'audio':>8s} {'ours s':>8s} {'pyworld s':>10s} {'speed-up':>9s} {'agree %':>8s} {'median c':>9s}")
    for seconds in seconds_list:
        signal = np.tile(base, int(np.ceil(seconds * SAMPLE_RATE / base.size)))[:int(seconds * SAMPLE_RATE)]
        ours_time, ours = best_time(
            lambda signal=signal: harvest(signal, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)[0],
            2 if seconds <= 60 else 1)
        reference_time, reference = best_time(
            lambda signal=signal: pyworld.harvest(signal, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)[0], 1)
        row = compare(ours, reference)
        print(f"{seconds:7.0f}s {ours_time:8.2f} {reference_time:10.2f} {reference_time / ours_time:8.1f}x "
              f"{100 * row['voicing_agreement']:8.3f} {row['median_cents']:9.2e}")


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
