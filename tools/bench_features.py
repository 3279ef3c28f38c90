"""Time the audio front end stage by stage, and its peak memory on long audio.

    python tools/bench_features.py                       # 10 s and 60 s, plus peak memory for 1 and 10 minutes
    python tools/bench_features.py --audio speech.mp3    # a real file instead of the synthetic speech-like signal
    python tools/bench_features.py --seconds 10 --memory-minutes   # timing only

The synthetic input is 44.1 kHz stereo float (so decoding, downmix and resampling are exercised): a2h_devkit's
speech-like signal, a harmonic tone with a gliding F0 in syllable-long bursts with pauses, over a noise floor.
Stages: load (float64, downmix, resample, 16-bit grid, normalise), mfcc+logfbank (computed together), harvest
(a2h_core.audio.harvest), interpolation; then the whole extract_features call, and pyworld.harvest on the same
signal when pyworld is installed. Memory is the peak of numpy/Python allocations (tracemalloc) during one
extract_features call, measured in a fresh process per length.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from a2h_devkit.speech import speech_like
from a2h_devkit.timing import timed

RATE = 44100  # synthetic input rate (resampled to 16 kHz by the front end)


def bench_stages(samples: np.ndarray, rate: int | None, label: str) -> None:
    import python_speech_features

    from a2h_core.audio.decode import load_audio
    from a2h_core.audio.features import extract_features, interpolate_unvoiced, mel_features
    from a2h_core.audio.harvest import harvest

    signal, t_load = timed(load_audio, samples, rate)
    _, t_psf_mfcc = timed(python_speech_features.mfcc, signal, 16000)
    _, t_psf_fbank = timed(python_speech_features.logfbank, signal, 16000)
    _, t_mel = timed(mel_features, signal)
    (f0, _), t_harvest = timed(harvest, signal, 16000, frame_period=10.0)
    _, t_interp = timed(interpolate_unvoiced, f0, f0 != 0)
    features, t_total = timed(extract_features, samples, rate)
    print(f"{label}: extract_features {t_total:.2f} s  ({features.values.shape[0]} rows, "
          f"{features.num_frames} frames, {100 * features.voiced.mean():.0f}% voiced)")
    stages = {"load": t_load, "mfcc+logfbank": t_mel, "harvest": t_harvest, "interpolation": t_interp}
    total = sum(stages.values())
    print("    " + ", ".join(f"{name} {seconds:.3f} s ({100 * seconds / total:.0f}%)"
                             for name, seconds in stages.items()))
    print(f"    (python_speech_features called separately: mfcc {t_psf_mfcc:.3f} s + logfbank {t_psf_fbank:.3f} s)")
    try:
        import pyworld
    except ImportError:
        print("    pyworld not installed: no reference harvest time")
        return
    _, t_pyworld = timed(pyworld.harvest, signal, 16000, frame_period=10.0)
    print(f"    pyworld.harvest {t_pyworld:.2f} s (a2h_core.audio.harvest {t_harvest:.2f} s)")


def memory_child(minutes: float) -> None:
    """Run in a fresh process: peak allocations of one extract_features call on `minutes` of audio."""
    import resource
    import tracemalloc

    from a2h_core.audio.features import extract_features

    samples = speech_like(60 * minutes, RATE, channels=2)
    input_mb = samples.nbytes / 2 ** 20
    tracemalloc.start()
    _, seconds = timed(extract_features, samples, RATE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{minutes:g} min: extract_features {seconds:.1f} s, peak allocations {peak / 2 ** 20:.0f} MiB "
          f"({peak / 2 ** 20 / minutes:.0f} MiB per minute; input array {input_mb:.0f} MiB not counted), "
          f"process max RSS {max_rss:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, help="time this file (whole) instead of the synthetic signal")
    parser.add_argument("--seconds", type=float, nargs="*", default=[10, 60], help="synthetic lengths to time")
    parser.add_argument("--memory-minutes", type=float, nargs="*", default=[1, 10],
                        help="lengths (minutes) for the peak-memory runs; none to skip")
    parser.add_argument("--memory-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    print(f"CPU threads available: {len(os.sched_getaffinity(0))}")
    if args.audio:
        bench_stages(str(args.audio), None, str(args.audio))
    else:
        bench_stages(speech_like(1.0, RATE, channels=2), RATE, "warm-up (1 s)")
        for seconds in args.seconds:
            bench_stages(speech_like(seconds, RATE, channels=2), RATE, f"{seconds:g} s of 44.1 kHz stereo")
    for minutes in args.memory_minutes:
        subprocess.run([sys.executable, __file__, "--memory-child", str(minutes)], check=True)


if __name__ == "__main__":
    main()
