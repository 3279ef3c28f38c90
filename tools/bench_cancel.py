"""How long Cancel can take at each stage: the longest stretch between two cancel points, in wall time and CPU time.

    python tools/bench_cancel.py                        # 120 s of audio, published widths (random weights), 2 threads
    python tools/bench_cancel.py --seconds 600 --threads 4

Inside ComfyUI every progress callback of the library checks the interrupt flag (nodes/comfy.py `Progress`), and so
does the wrapper's `check_cancel` before each block of the motion field and the generator, so the latency of Cancel
is at most the longest gap between two such calls in a stage. Each stage runs once with a callback
that records the wall clock and the process's CPU time: the audio features (44.1 kHz stereo synthetic speech, as
Load Audio gives it), pose prediction, the motion field and the generator (the last two on the first 8 s, their
gaps do not grow with the length). The CPU gap divided by the thread count is what the wall gap would be on an
otherwise idle machine; the wall gap is what it was here (on a shared machine it also counts waiting for the CPU).
The first gap of a stage includes work before its first callback (for pose prediction, the image embedding).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from a2h_core.audio.features import AudioFeatures, extract_features
from a2h_core.config import FEATURE_ROWS_PER_FRAME, ModelConfig
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.speech import speech_like

RATE = 44100  # Load Audio's usual rate; resampled to 16 kHz by the front end
SHORT_SECONDS = 8.0  # motion field and generator: gaps per window / batch, independent of the length


class GapRecorder:
    """A progress callback noting the longest wall and CPU time between calls (from its creation on)."""

    def __init__(self):
        self.calls = 0
        self.last = (time.perf_counter(), time.process_time())
        self.wall = self.cpu = 0.0

    def __call__(self, done=0, total=0) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall = max(self.wall, now[0] - self.last[0])
        self.cpu = max(self.cpu, now[1] - self.last[1])
        self.calls += 1
        self.last = now


def measure(label: str, run, threads: int) -> None:
    recorder = GapRecorder()
    start = time.perf_counter()
    run(recorder)
    recorder()  # the stretch from the last callback to the end of the stage counts too
    print(f"{label:<34} {recorder.calls - 1:>7} {time.perf_counter() - start:>9.1f} {recorder.wall:>13.3f} "
          f"{recorder.cpu / threads:>19.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="audio length for features and poses")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--reduced", action="store_true", help="reduced widths instead of the published ones")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = Audio2HeadModels(ModelConfig.reduced() if args.reduced else ModelConfig.published()).eval()
    wrapper = Audio2HeadWrapper(models, device="cpu", dtype="fp32")
    waveform = torch.from_numpy(speech_like(args.seconds, RATE, channels=2)).float()[None]
    source = torch.rand(1, 3, 256, 256)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.threads} torch threads; "
          f"{'reduced' if args.reduced else 'published'} widths (random weights); {args.seconds:g} s of audio")
    print(f"{'stage':<34} {'calls':>7} {'seconds':>9} {'max gap (s)':>13} {'max CPU gap/threads':>19}")
    features = []
    measure("audio features", lambda progress: features.append(
        extract_features({"waveform": waveform, "sample_rate": RATE}, progress=progress)), args.threads)
    features = features[0]
    measure("pose prediction", lambda progress: wrapper.predict_poses(source, features, progress=progress),
            args.threads)
    short = AudioFeatures(features.values[:int(SHORT_SECONDS * 25) * FEATURE_ROWS_PER_FRAME])
    poses = wrapper.predict_poses(source, short).for_video(short.num_frames)
    driving = []

    def checking(progress) -> Audio2HeadWrapper:  # the progress callbacks and the checks inside each pass
        return Audio2HeadWrapper(models, device="cpu", dtype="fp32", check_cancel=progress)

    measure(f"motion field ({SHORT_SECONDS:g} s)", lambda progress: driving.append(
        checking(progress).driving_keypoints(source, short, poses, progress=progress)), args.threads)
    kp_source = wrapper.source_keypoints(source)
    measure(f"generator ({SHORT_SECONDS:g} s, batch 4)", lambda progress: np.concatenate(list(
        checking(progress).render_frames(source, kp_source, driving[0], batch_size=4, progress=progress))),
        args.threads)


if __name__ == "__main__":
    main()
