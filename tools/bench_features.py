"""Time the audio front end stage by stage, and measure its peak memory on long audio.

    python tools/bench_features.py                        # 10 s and 60 s (best of 3); peak memory, 1 and 10 min
    python tools/bench_features.py --seconds 60 --repeat 5 --memory-minutes   # timing only
    python tools/bench_features.py --seconds --memory-minutes 10               # memory only
    python tools/bench_features.py --audio speech.mp3     # a real file instead of the synthetic speech-like signal

Speed: the synthetic input is 44.1 kHz stereo float (so decoding, downmix and resampling are exercised):
a2h_devkit's speech-like signal, a harmonic tone with a gliding F0 in syllable-long bursts with pauses, over a noise
floor. extract_features is timed `--repeat` times and the fastest is printed (other processes on the machine only
ever add time), with the load average and the process's CPU time (all threads; less sensitive to other load).
Stages, timed once: load (float64, downmix, resample, 16-bit grid, normalise), mfcc+logfbank (computed together),
harvest (a2h_core.audio.harvest), interpolation; then pyworld.harvest on the same signal when pyworld is installed.

Memory: for each length, 20 s of the synthetic signal repeated is written as 16-bit WAV files, 16 kHz mono (the
original's input) and 44.1 kHz stereo (downmix and resampling too). A fresh process per file imports the audio
front end (not torch), extracts the features of the file as `python -m a2h_core features` does, and prints its
resident memory after the imports and its peak (the process's own high-water mark, VmHWM).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from a2h_devkit.speech import speech_like, write_wav
from a2h_devkit.timing import timed

RATE = 44100  # synthetic input rate for the timing (resampled to 16 kHz by the front end)
MEMORY_INPUTS = ((16000, 1), (44100, 2))  # (rate, channels) of the WAV files of the memory runs


def bench_stages(samples, rate: int | None, label: str, repeat: int) -> None:
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
    totals, cpu_times = [], []
    for _ in range(repeat):
        cpu_start = time.process_time()
        features, seconds = timed(extract_features, samples, rate)
        totals.append(seconds)
        cpu_times.append(time.process_time() - cpu_start)
    print(f"{label}: extract_features best {min(totals):.2f} s of {repeat} (all: "
          f"{', '.join(f'{seconds:.2f}' for seconds in totals)}; load average {os.getloadavg()[0]:.1f}; "
          f"CPU time, all threads, best {min(cpu_times):.2f} s)  "
          f"({features.values.shape[0]} rows, {features.num_frames} frames, "
          f"{100 * features.voiced.mean():.0f}% voiced)")
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


def memory_child(path: str) -> None:
    """Run in a fresh process: resident memory after the imports and at the peak of extracting `path`'s features."""
    from a2h_core.audio.features import extract_features
    from a2h_devkit.resident_memory import resident_mb

    imported = resident_mb()
    features, seconds = timed(extract_features, path)
    print(f"    {features.duration / 60:.1f} min: extract_features {seconds:.1f} s, peak resident memory "
          f"{resident_mb(peak=True):.0f} MiB ({imported:.0f} MiB after the imports)", flush=True)


def bench_memory(minutes: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for rate, channels in MEMORY_INPUTS:
            samples = speech_like(20.0, rate, channels)
            repeats = -(-int(60 * minutes * rate) // samples.shape[1])
            path = write_wav(Path(folder) / "long.wav",
                             np.tile(samples, repeats)[:, :int(60 * minutes * rate)], rate)
            del samples
            print(f"{minutes:g} min, {rate} Hz {'mono' if channels == 1 else f'{channels} channels'} WAV:", flush=True)
            subprocess.run([sys.executable, __file__, "--memory-child", str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, help="time this file (whole) instead of the synthetic signal")
    parser.add_argument("--seconds", type=float, nargs="*", default=[10, 60], help="synthetic lengths to time")
    parser.add_argument("--repeat", type=int, default=3, help="timed extract_features calls per length (best shown)")
    parser.add_argument("--memory-minutes", type=float, nargs="*", default=[1, 10],
                        help="lengths (minutes) for the peak-memory runs; none to skip")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    print(f"CPU threads available: {len(os.sched_getaffinity(0))}")
    if args.audio:
        bench_stages(str(args.audio), None, str(args.audio), args.repeat)
    else:
        bench_stages(speech_like(1.0, RATE, channels=2), RATE, "warm-up (1 s)", 1)
        for seconds in args.seconds:
            bench_stages(speech_like(seconds, RATE, channels=2), RATE, f"{seconds:g} s of 44.1 kHz stereo", args.repeat)
    for minutes in args.memory_minutes:
        bench_memory(minutes)


if __name__ == "__main__":
    main()
