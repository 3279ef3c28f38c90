"""Compare our SyncNet port and LSE scoring with the original syncnet_python, side by side.

    python tools/compare_syncnet.py --original /path/to/syncnet_python [--weights syncnet_v2.model] [--frames 60]

The original (joonson/syncnet_python: `SyncNetModel.py`, `SyncNetInstance.py`) is imported from the given checkout
at run time, with `.cuda()` made a no-op for the CPU; nothing of it is copied. Without `--weights`, both use the
same RANDOM weights (seeded, batch-norm statistics randomised), written in syncnet_v2.model's layout: the
comparison then checks the port and the protocol, not the published model. Needs ffmpeg and OpenCV.

It prints:
- `embeddings`: the largest difference between the original's `forward_lip` / `forward_aud` and our
  `lip_embedding` / `audio_embedding` on random inputs (the original loading its file with its `loadParameters`);
- `end to end`: a synthetic 25 fps 224 x 224 video with speech-like audio (peak-normalised to 16-bit full scale) is
  scored by the original's `SyncNetInstance.evaluate` (ffmpeg to JPEG frames and a 16 kHz wav, its own MFCC) and by
  our `LipSyncMetric` on the same decoded JPEG frames and the stored-feature MFCC of the same wav: AV offset,
  LSE-D (min distance) and LSE-C (confidence) of each, and their differences. The original prints its own lines
  (ffmpeg's, its frame-wise confidence) in between.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.io import wavfile
from torch import nn

from a2h_core.audio.features import extract_features
from a2h_core.training.lip_sync import LipSyncMetric, load_syncnet
from a2h_devkit.imports import importable
from a2h_devkit.metric_weights import random_syncnet_file
from a2h_devkit.speech import speech_like

SIZE, FPS, RATE = 224, 25, 16000


def import_original(root: Path) -> types.SimpleNamespace:
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the original calls .cuda() unconditionally
    nn.Module.cuda = lambda self, *args, **kwargs: self
    with importable(root):
        import SyncNetInstance
        import SyncNetModel
    return types.SimpleNamespace(instance=SyncNetInstance, model=SyncNetModel)


def synthetic_video(folder: Path, frames: int) -> Path:
    """A 25 fps 224 x 224 MJPEG video of a smooth random pattern whose brightness follows the speech envelope. The
    audio runs one frame longer, so that both sides score the same number of windows: python_speech_features makes
    4n - 1 MFCC rows from exactly n frames of audio, which would leave us one window short."""
    audio = speech_like(seconds=(frames + 1) / FPS)[0]
    audio = audio - audio.mean()
    pcm = np.round(audio / np.abs(audio).max() * 32767).astype(np.int16)
    wavfile.write(folder / "speech.wav", RATE, pcm)
    envelope = np.abs(audio).reshape(frames + 1, -1).mean(1)[:frames]
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32), (0, 0), 8)
    video = np.stack([np.clip(base * (0.5 + 2 * e) + 20 * np.sin(i / 3), 0, 255) for i, e in enumerate(envelope)])
    path = folder / "synthetic.avi"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE}x{SIZE}",
                    "-r", str(FPS), "-i", "-", "-i", str(folder / "speech.wav"), "-c:v", "mjpeg", "-q:v", "2",
                    "-c:a", "pcm_s16le", str(path)], input=video.astype(np.uint8).tobytes(), check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", type=Path, required=True, help="a syncnet_python checkout")
    parser.add_argument("--weights", type=Path, default=None, help="syncnet_v2.model (default: random weights)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the synthetic video (default 60)")
    args = parser.parse_args()
    original = import_original(args.original)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        weights = args.weights or random_syncnet_file(folder / "random_syncnet_v2.model")
        print(f"weights: {weights}" + ("" if args.weights else " (RANDOM, seeded)"))
        theirs = original.instance.SyncNetInstance()
        theirs.loadParameters(str(weights))
        theirs.__S__.eval()
        ours = load_syncnet(weights)
        generator = torch.Generator().manual_seed(1)
        lips = torch.rand(4, 3, 5, SIZE, SIZE, generator=generator) * 255
        mfcc = torch.randn(4, 1, 13, 20, generator=generator) * 10
        with torch.no_grad():
            lip_difference = (theirs.__S__.forward_lip(lips) - ours.lip_embedding(lips)).abs().max()
            audio_difference = (theirs.__S__.forward_aud(mfcc) - ours.audio_embedding(mfcc)).abs().max()
        print(f"embeddings: lips max |diff| {float(lip_difference):.2e}, audio {float(audio_difference):.2e}")

        video = synthetic_video(folder, args.frames)
        options = argparse.Namespace(tmp_dir=str(folder / "work"), reference="clip", batch_size=20, vshift=15)
        offset, confidence, distances = theirs.evaluate(options, videofile=str(video))
        their_lse_d = float(np.mean(np.stack(distances), 0).min())
        extracted = folder / "work" / "clip"
        frames = np.stack([cv2.imread(str(p))[:, :, ::-1] for p in sorted(extracted.glob("*.jpg"))])
        features = extract_features(str(extracted / "audio.wav")).values
        score = LipSyncMetric(ours, torch.device("cpu"))(frames, features)
        print(f"end to end ({args.frames} frames): original offset {int(offset)}, LSE-D {their_lse_d:.5f}, "
              f"LSE-C {float(confidence):.5f}")
        print(f"{'':<{len('end to end')}}  ours     offset {score.offset}, LSE-D {score.lse_d:.5f}, "
              f"LSE-C {score.lse_c:.5f}")
        print(f"{'':<{len('end to end')}}  |diff|   offset {abs(score.offset - int(offset))}, "
              f"LSE-D {abs(score.lse_d - their_lse_d):.2e}, LSE-C {abs(score.lse_c - float(confidence)):.2e}")


if __name__ == "__main__":
    main()
