"""Speed of each pipeline stage and end to end, beside the original's per-frame loop; and streaming memory.

    python tools/benchmark.py --original /path/to/Audio2Head [--frames 100] [--batch-size N] [--dtypes fp32,bf16]
    python tools/benchmark.py --memory-minutes 10 [--memory-frames 80]

Speed: published-width networks with the same random weights on both sides (see tools/compare_pipeline.py), the
original's demo image and the first `--frames` frames of its demo audio, CPU; our settings are the per-device
defaults (batch size: `inference.acceleration`). The CPU, its instruction sets (AVX2 / AVX-512 / AMX) and the
kernels PyTorch chose are printed first: a figure without its machine does not compare. Printed per dtype: frames
per second of audio features, pose prediction, source keypoints, motion field (window passes incl. pose boxes),
generator, MP4 encoding, end to end (the sum of the stages), and one `generate` call into an MP4 with the voice
(features, predicted poses, video, encoding overlapped on its thread), beside the original's video-stage loop
(pose boxes, motion field, generator per frame), and our end to end against that loop. Fidelity: uint8 difference
of our fp32 frames to the original's, and PSNR of every other dtype's frames against our fp32 frames.

Memory: `--memory-minutes M` extracts the features of M minutes of audio (the demo voice repeated) in a child
process (the command line also extracts them before loading the networks), then runs `pipeline.generate` into an
MP4 and stops it after `--memory-frames` rendered frames (the run is then cancelled: the MP4 is deleted).
Everything that grows with the audio length (features, pose curve) is built before the first frame, the soundtrack
is decoded as the video advances, and the streamed stage's memory is per window, so the peak resident memory
printed is that of the full-length run. Both peaks are printed.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from a2h_core.audio.features import AudioFeatures, extract_features
from a2h_core.audio.soundtrack import load_soundtrack
from a2h_core.config import FPS, ModelConfig
from a2h_core.inference.acceleration import CPU_BATCH_SIZE
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.image import prepare_source_image
from a2h_core.io.video import VideoWriter
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.media import soundtrack_samples
from a2h_devkit.original import frame_difference, original_image, run_original_video_stage, shared_setup
from a2h_devkit.resident_memory import resident_mb
from a2h_devkit.speech import pcm16, speech_like
from a2h_devkit.system import cpu_description
from a2h_devkit.timing import timed


def psnr(frames: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((frames.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def encode_mp4(path: Path, frames: np.ndarray, voice: Path, batch_size: int | None) -> None:
    """Writes the frames with the voice as soundtrack, batch_size frames at a time, as the pipeline streams them."""
    with VideoWriter(path, 256, 256, soundtrack=load_soundtrack(voice)) as writer:
        step = batch_size or CPU_BATCH_SIZE
        for start in range(0, len(frames), step):
            writer.write(frames[start:start + step])


def speed(args) -> None:
    root = args.original.resolve()
    frames = args.frames
    original, ours, image_path, features, curve = shared_setup(root, frames, args.seed)
    voice = root / "demo" / "audio" / "intro.wav"
    rate = load_soundtrack(voice).sample_rate
    clip = soundtrack_samples(load_soundtrack(voice))[0, : int((frames / FPS + 0.05) * rate)].astype(np.float64)
    print(cpu_description())
    print(f"{frames} frames; generator batch {args.batch_size or 'per-device default'}", flush=True)

    rows = []
    cpu_rows = []  # CPU seconds per frame (all threads): steadier than wall time on a shared machine
    reference = None
    if not args.skip_original:
        print("original per-frame loop ...", flush=True)
        cpu = time.process_time()
        reference, seconds = run_original_video_stage(root, original, original_image(image_path), features,
                                                      curve)
        rows.append(("original video stage (boxes + motion field + generator)", frames / seconds))
        cpu_rows.append(("original video stage", (time.process_time() - cpu) / frames))
        del original

    results = {}
    speedups = []  # (dtype, end-to-end frames/s as the sum of stages, one generate call)
    for dtype in args.dtypes.split(","):
        print(f"ours {dtype} ...", flush=True)
        _, feature_seconds = timed(extract_features, clip, sample_rate=rate)
        wrapper = Audio2HeadWrapper(ours, dtype=dtype)
        source, _ = prepare_source_image(image_path)
        _, pose_seconds = timed(wrapper.predict_poses, source, features)
        cpu = time.process_time()
        config = PipelineConfig(batch_size=args.batch_size, dtype=dtype, crop=None)  # the original's whole-image resize
        result, video_seconds = timed(generate, image_path, features, ours, config, pose_curve=curve)
        cpu_rows.append((f"ours {dtype} video stage", (time.process_time() - cpu) / frames))
        with tempfile.TemporaryDirectory() as folder:
            _, encode_seconds = timed(encode_mp4, Path(folder) / "bench.mp4", result.frames, voice, args.batch_size)
            # The real thing in one call: features, predicted poses, video stage, MP4 with the voice, encoded on the
            # background thread while frames render.
            config = PipelineConfig(batch_size=args.batch_size, dtype=dtype, crop=None)
            _, one_call_seconds = timed(generate, image_path, clip.astype(np.float32), ours, config, sample_rate=rate,
                                        out_path=Path(folder) / "generate.mp4")
        stage = result.seconds
        total = feature_seconds + pose_seconds + video_seconds + encode_seconds
        rows += [
            (f"ours {dtype}: audio features", frames / feature_seconds),
            (f"ours {dtype}: pose prediction", frames / pose_seconds),
            (f"ours {dtype}: source image + keypoints (once)", frames / (stage["image"] + stage["source keypoints"])),
            (f"ours {dtype}: motion field (pose boxes + windows)", frames / stage["motion field"]),
            (f"ours {dtype}: generator", frames / stage["generator"]),
            (f"ours {dtype}: video stage (motion field + generator)", frames / video_seconds),
            (f"ours {dtype}: MP4 encoding", frames / encode_seconds),
            (f"ours {dtype}: end to end (sum of the stages above)", frames / total),
            (f"ours {dtype}: generate -> MP4, one call (encoding overlapped)", frames / one_call_seconds),
        ]
        speedups.append((dtype, frames / total, frames / one_call_seconds))
        results[dtype] = result.frames

    print(f"\n{'stage':<60} frames/s")
    for name, value in rows:
        print(f"{name:<60} {value:8.2f}")
    print(f"\n{'CPU time':<60} CPU s/frame")
    for name, value in cpu_rows:
        print(f"{name:<60} {value:8.3f}")
    if not args.skip_original:
        original_rate = rows[0][1]
        for dtype, summed, one_call in speedups:
            print(f"ours {dtype} against the original's video stage: {summed / original_rate:.2f}x end to end (sum of "
                  f"stages), {one_call / original_rate:.2f}x one generate call")
    if reference is not None and "fp32" in results:
        largest, share = frame_difference(results["fp32"], reference)
        print(f"\nours fp32 vs original uint8 frames: max abs difference {largest}, "
              f"{100 * share:.4f}% of values differ")
    for dtype, frames_out in results.items():
        if dtype != "fp32" and "fp32" in results:
            print(f"ours {dtype} vs ours fp32: PSNR {psnr(frames_out, results['fp32']):.2f} dB")


class _StopAfter(Exception):
    pass


def _features_to_file(audio_path: str, out_path: str, peak_mb) -> None:
    extract_features(audio_path).save(out_path)
    peak_mb.value = resident_mb(peak=True)  # its own peak: a child's ru_maxrss also counts the parent's memory


def memory(args) -> None:
    import multiprocessing

    from scipy.io import wavfile

    voice = Path(args.original or "") / "demo" / "audio" / "intro.wav"
    if args.original and voice.is_file():
        rate, samples = wavfile.read(voice)
        samples = samples if samples.ndim == 1 else samples[:, 0]
    else:  # synthetic speech when the original's demo audio is not at hand
        rate = 16000
        samples = pcm16(speech_like(20.0, rate)[0])
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)

    def stop(done, total_frames):
        if done >= args.memory_frames:
            raise _StopAfter(done, total_frames)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.wav"
        wavfile.write(path, rate, np.resize(samples, int(args.memory_minutes * 60 * rate)))
        # Features in a child process, as the command line extracts them before loading the networks: the two
        # memory peaks are then measured apart.
        start = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        features_mb = context.Value("d", 0.0)
        child = context.Process(target=_features_to_file,
                                args=(str(path), str(Path(folder) / "features.npy"), features_mb))
        child.start()
        child.join()
        features = AudioFeatures.load(Path(folder) / "features.npy")
        features_mb = features_mb.value
        print(f"features: {features.num_frames} frames in {time.perf_counter() - start:.1f} s, "
              f"peak resident memory {features_mb:.0f} MB", flush=True)
        torch.manual_seed(0)
        models = Audio2HeadModels(ModelConfig.published()).eval().requires_grad_(False)
        start = time.perf_counter()
        try:
            generate(image, path, models, PipelineConfig(batch_size=args.batch_size, crop=None),
                     out_path=Path(folder) / "out.mp4",
                     progress=stop, features=features,
                     log=lambda message: print(f"  {time.perf_counter() - start:7.1f} s  {message}", flush=True))
        except _StopAfter as stopped:
            done, total_frames = stopped.args
            print(f"stopped after {done} of {total_frames} frames, {time.perf_counter() - start:.1f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.memory_minutes} min of audio: pipeline (networks, poses, streamed rendering, MP4) peak resident "
          f"memory {peak_mb:.0f} MB; feature extraction {features_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, help="folder of the original Audio2Head repository")
    parser.add_argument("--frames", type=int, default=100, help="video frames per speed run (default 100)")
    parser.add_argument("--batch-size", type=int, help="our generator batch (default: the per-device default)")
    parser.add_argument("--dtypes", default="fp32,bf16", help="our compute dtypes to time (default fp32,bf16)")
    parser.add_argument("--skip-original", action="store_true", help="do not run the original's loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-minutes", type=float, help="measure peak memory on this much audio instead")
    parser.add_argument("--memory-frames", type=int, default=80, help="frames rendered in the memory run")
    args = parser.parse_args()
    if args.memory_minutes:
        memory(args)
    elif args.original is None:
        parser.error("--original is needed for the speed comparison (or give --memory-minutes)")
    else:
        speed(args)


if __name__ == "__main__":
    main()
