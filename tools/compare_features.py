"""Compare a2h_core's audio features with the original Audio2Head's, side by side.

    python tools/compare_features.py --original /path/to/Audio2Head                 # espeak-ng test speech
    python tools/compare_features.py --original /path/to/Audio2Head a.wav b.mp3     # your own files

The original path is the one `inference.py` takes: `ffmpeg -i IN -async 1 -ac 1 -vn -acodec pcm_s16le -ar 16000`
to a temporary wav, then its `get_audio_feature_from_audio` (scipy wavfile, python_speech_features, pyworld). It is
imported from the given checkout at run time; nothing of it is copied. Needs ffmpeg and pyworld (and espeak-ng for
the default test speech).

For each input it prints, against the original on the same input:
- `pcm`: our 16-bit 16 kHz samples vs ffmpeg's (largest difference in LSB, share of samples that differ);
- `full chain`: our features of the input file vs the original's;
- `same wav`: our features of ffmpeg's 16 kHz wav vs the original's (isolates Harvest and the feature code);
each with the row counts, the largest MFCC / log filter bank differences, voicing agreement and F0 error in cents
(median, 95th percentile, maximum over all rows, after interpolation).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from a2h_core.audio.decode import to_pcm16
from a2h_core.audio.features import extract_features
from a2h_devkit.original import import_original
from a2h_devkit.speech import ESPEAK_CLIPS, espeak


def ffmpeg_to_16k(source: Path, target: Path) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-async", "1", "-ac", "1", "-vn",
                    "-acodec", "pcm_s16le", "-ar", "16000", str(target)], check=True)


def espeak_inputs(folder: Path) -> list[Path]:
    """espeak-ng clips at its native 22.05 kHz, plus one re-encoded as 44.1 kHz stereo mp3."""
    paths = []
    for index, (voice, speed, pitch, text) in enumerate(ESPEAK_CLIPS):
        paths.append(espeak(folder / f"espeak_{index}_{voice.replace('+', '_')}.wav", voice, speed, pitch, text))
    mp3 = folder / "espeak_0_44k_stereo.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(paths[0]), "-ac", "2", "-ar", "44100", str(mp3)],
                   check=True)
    return [*paths, mp3]


def describe(ours: np.ndarray, reference: np.ndarray) -> str:
    rows = min(len(ours), len(reference))
    a, b = ours[:rows], reference[:rows]
    cents = 1200 * np.abs(np.log2(np.maximum(a[:, 39], 1e-9) / np.maximum(b[:, 39], 1e-9)))
    both_zero = (a[:, 39] == 0) & (b[:, 39] == 0)
    cents[both_zero] = 0.0
    return (f"rows {len(ours)}/{len(reference)}  mfcc {np.abs(a[:, :13] - b[:, :13]).max():.2e}  "
            f"logfbank {np.abs(a[:, 13:39] - b[:, 13:39]).max():.2e}  "
            f"voicing {100 * np.mean(a[:, 40] == b[:, 40]):.2f}%  F0 cents median {np.median(cents):.2e} "
            f"p95 {np.percentile(cents, 95):.2e} max {cents.max():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", required=True, type=Path, help="checkout of the original Audio2Head")
    parser.add_argument("audio", nargs="*", type=Path, help="audio files (default: espeak-ng test speech)")
    args = parser.parse_args()
    for tool in ["ffmpeg"] + ([] if args.audio else ["espeak-ng"]):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (e.g. apt-get install {tool})")
    original = import_original(args.original.resolve()).inference  # the original's inference.py: its features

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        inputs = args.audio or espeak_inputs(folder)
        for source in inputs:
            converted = folder / "original_16k.wav"
            ffmpeg_to_16k(source, converted)
            reference = original.get_audio_feature_from_audio(str(converted))
            ffmpeg_pcm = wavfile.read(converted)[1]
            our_pcm = to_pcm16(source)
            n = min(len(ffmpeg_pcm), len(our_pcm))
            difference = our_pcm[:n].astype(np.int64) - ffmpeg_pcm[:n]
            print(f"{source.name}: {len(ffmpeg_pcm) / 16000:.2f} s")
            print(f"  pcm         samples {len(our_pcm)}/{len(ffmpeg_pcm)}  max diff {np.abs(difference).max()} LSB, "
                  f"{100 * np.mean(difference != 0):.3f}% differ")
            print(f"  full chain  {describe(extract_features(source).values, reference)}")
            print(f"  same wav    {describe(extract_features(converted).values, reference)}")


if __name__ == "__main__":
    main()
