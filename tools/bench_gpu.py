"""Throughput of the video stage on a GPU (or, to check the script, on the CPU), beside the original's loop.

    python tools/bench_gpu.py [--original PATH] [--device cuda] [--frames 512] [--batch-sizes 8,32,64,128,256]
                              [--dtypes fp32,bf16,fp16] [--compile] [--json results.json]

One run of at most ~10 minutes on an H200 with the defaults. Published-width networks with random weights (the same
weights as the original's modules with --original), the original's demo image and audio with --original, else a
random image and random features. Printed:
- the original's per-frame loop (boxes, motion field, generator per frame) on the same device, frames/s;
- ours per dtype and generator batch size: generator frames/s (including the uint8 copy to the host), and the peak
  GPU memory of that pass;
- ours per dtype at its fastest batch: per-stage times (source keypoints, motion field for every window, generator)
  and the whole `generate` into an H.264 MP4 (background encoder), frames/s; the encoder alone, frames/s;
- fidelity: our fp32 frames on the device against our fp32 frames on the CPU (uint8: largest difference and the
  share of values that differ; the bound is 1 on at most 2 %), and PSNR of every other dtype against fp32;
- with --compile: the generator under torch.compile(mode="max-autotune") at the largest batch, with its compile time.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import ModelConfig
from a2h_core.device import check_compute_dtype
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.image import prepare_source_image
from a2h_core.io.video import VideoWriter
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_devkit.random_weights import random_state, randomize_batch_norm
from a2h_devkit.system import cpu_description


def psnr(frames: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((frames.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset; on the CPU the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inputs(args, config: ModelConfig):
    """(models, original modules or None, image, features, pose curve) with the same weights on both sides."""
    if args.original:
        from a2h_devkit.original import shared_setup

        original, models, image, features, curve = shared_setup(args.original.resolve(), args.frames, args.seed)
        return models, original, image, features, curve
    models = Audio2HeadModels(config)
    models.load_state_dict(random_state(config, args.seed))
    randomize_batch_norm(models, torch.Generator().manual_seed(args.seed))
    models.generator.final.weight.data.mul_(20)  # frames spread over 0..255 like an image, not flat grey
    rng = np.random.default_rng(args.seed)
    image = rng.integers(0, 256, (config.image_size, config.image_size, 3), dtype=np.uint8)
    features = AudioFeatures(rng.normal(size=(args.frames * 4, 41)))
    source, _ = prepare_source_image(image, size=config.image_size)
    curve = Audio2HeadWrapper(models).predict_poses(source, features)
    return models, None, image, features, curve


def time_original(args, original: dict, image_path, features: AudioFeatures, curve: PoseCurve,
                  device: torch.device) -> dict:
    from a2h_devkit.original import original_image, run_original_video_stage

    frames = min(args.original_frames, features.num_frames)
    clip = AudioFeatures(features.values[: frames * 4])
    for module in original.values():
        module.to(device)
    reset_peak(device)
    _, seconds = run_original_video_stage(args.original.resolve(), original, original_image(image_path), clip,
                                          curve, device=device)
    for module in original.values():
        module.to("cpu")
    return {"frames": frames, "frames_per_s": frames / seconds, "peak_mb": peak_mb(device)}


def render(wrapper: Audio2HeadWrapper, source, kp_source, kp_driving, batch_size: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    frames = np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving, batch_size=batch_size)))
    synchronize(wrapper.device)
    return frames, time.perf_counter() - start


def stages(wrapper: Audio2HeadWrapper, source, features, curve) -> tuple[dict, object, object]:
    seconds = {}
    start = time.perf_counter()
    kp_source = wrapper.source_keypoints(source)
    synchronize(wrapper.device)
    seconds["source keypoints"] = time.perf_counter() - start
    reset_peak(wrapper.device)
    start = time.perf_counter()
    kp_driving = wrapper.driving_keypoints(source, features, curve)
    synchronize(wrapper.device)
    seconds["motion field (all windows)"] = time.perf_counter() - start
    print(f"  motion field, {wrapper.windows_per_pass} windows per pass: peak memory {peak_mb(wrapper.device):.0f} MB",
          flush=True)
    return seconds, kp_source, kp_driving


def clip_frames(wrapper: Audio2HeadWrapper, source, features: AudioFeatures, curve: PoseCurve) -> np.ndarray:
    """Every frame of a (short) clip: motion field and generator on the wrapper's device."""
    _, kp_source, kp_driving = stages(wrapper, source, features, curve)
    return render(wrapper, source, kp_source, kp_driving, 8)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, help="the original Audio2Head checkout (its loop, demo inputs)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", choices=("published", "reduced"), default="published",
                        help="network widths (reduced: only to check the script quickly)")
    parser.add_argument("--frames", type=int, default=512, help="video frames rendered per measurement")
    parser.add_argument("--original-frames", type=int, default=200, help="frames of the original's loop")
    parser.add_argument("--batch-sizes", default="8,32,64,128,256")
    parser.add_argument("--dtypes", default="fp32,bf16,fp16")
    parser.add_argument("--reference-frames", type=int, default=32,
                        help="frames rendered on the CPU as the fp32 fidelity reference (0: skip)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(mode='max-autotune')")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results there too")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = ModelConfig.published() if args.config == "published" or args.original else ModelConfig.reduced()
    print(cpu_description())
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}, "
              f"{torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB")
    print(f"{args.config} widths; {args.frames} frames per measurement", flush=True)
    results: dict = {"device": str(device), "frames": args.frames, "ours": {}}

    models, original, image, features, curve = inputs(args, config)
    features = AudioFeatures(features.values[: args.frames * 4])
    if original is not None:
        print("original per-frame loop ...", flush=True)
        results["original"] = time_original(args, original, image, features, curve, device)
        print(f"  original: {results['original']['frames_per_s']:.1f} frames/s "
              f"({results['original']['frames']} frames), peak memory {results['original']['peak_mb']:.0f} MB",
              flush=True)
        del original
    source, _ = prepare_source_image(image, size=config.image_size)

    # Fidelity clip: the first frames as a clip of their own, rendered on the CPU and on the device alike.
    short = AudioFeatures(features.values[: args.reference_frames * 4])
    reference = None
    if args.reference_frames and device.type != "cpu":
        reference = clip_frames(Audio2HeadWrapper(models, device="cpu"), source, short, curve)
    fp32_frames = None
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    for dtype in args.dtypes.split(","):
        try:
            check_compute_dtype(device, dtype)
        except Audio2HeadError as exc:
            print(f"{dtype}: skipped ({exc})")
            continue
        wrapper = Audio2HeadWrapper(models, device=device, dtype=dtype)
        seconds, kp_source, kp_driving = stages(wrapper, source, features, curve)
        rows = {}
        for batch in batch_sizes:
            render(wrapper, source, kp_source, kp_driving[:batch], batch)  # warm-up: kernels, allocator, cuDNN
            reset_peak(device)
            frames, elapsed = render(wrapper, source, kp_source, kp_driving, batch)
            rows[batch] = {"frames_per_s": len(frames) / elapsed, "peak_mb": peak_mb(device)}
            print(f"  ours {dtype} batch {batch:4d}: generator {rows[batch]['frames_per_s']:8.1f} frames/s, "
                  f"peak memory {rows[batch]['peak_mb']:8.0f} MB", flush=True)
        best = max(rows, key=lambda size: rows[size]["frames_per_s"])
        frames, elapsed = render(wrapper, source, kp_source, kp_driving, best)
        seconds["generator"] = elapsed
        entry = {"batches": rows, "best_batch": best, "stage_seconds": seconds}
        if dtype == "fp32":
            fp32_frames = frames
            if reference is not None:
                difference = np.abs(clip_frames(wrapper, source, short, curve).astype(np.int16) - reference)
                entry["vs_cpu_fp32"] = {"max": int(difference.max()), "share": float((difference > 0).mean())}
        elif fp32_frames is not None:
            entry["psnr_vs_fp32"] = psnr(frames, fp32_frames)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            with VideoWriter(Path(folder) / "encode.mp4", config.image_size, config.image_size) as writer:
                writer.write(frames)
            entry["encoder_frames_per_s"] = len(frames) / (time.perf_counter() - start)
            start = time.perf_counter()
            generate(image, features, models, PipelineConfig(device=device, dtype=dtype, batch_size=best, crop=None),
                     pose_curve=curve, out_path=Path(folder) / "generate.mp4")
            entry["generate_mp4_frames_per_s"] = features.num_frames / (time.perf_counter() - start)
        if args.compile:
            compiled = Audio2HeadWrapper(models, device=device, dtype=dtype, compile="max-autotune")
            start = time.perf_counter()
            render(compiled, source, kp_source, kp_driving[:best], best)
            compile_seconds = time.perf_counter() - start
            _, elapsed = render(compiled, source, kp_source, kp_driving, best)
            entry["compiled"] = {"compile_seconds": compile_seconds, "frames_per_s": len(kp_driving) / elapsed}
        results["ours"][dtype] = entry

    print(f"\n{'':<10} {'batch':>6} {'generator frames/s':>19} {'peak MB':>9}")
    for dtype, entry in results["ours"].items():
        for batch, row in entry["batches"].items():
            print(f"{dtype:<10} {batch:>6} {row['frames_per_s']:>19.1f} {row['peak_mb']:>9.0f}")
    for dtype, entry in results["ours"].items():
        stage_text = ", ".join(f"{name} {value:.2f} s" for name, value in entry["stage_seconds"].items())
        print(f"\n{dtype} (batch {entry['best_batch']}): {stage_text}")
        print(f"  generate into an MP4: {entry['generate_mp4_frames_per_s']:.1f} frames/s; "
              f"H.264 encoder alone: {entry['encoder_frames_per_s']:.1f} frames/s")
        if "original" in results:
            best = entry["batches"][entry["best_batch"]]["frames_per_s"]
            print(f"  generator vs the original's loop: {best / results['original']['frames_per_s']:.1f}x")
        if "vs_cpu_fp32" in entry:
            print(f"  fp32 frames vs CPU fp32: max difference {entry['vs_cpu_fp32']['max']}, "
                  f"{100 * entry['vs_cpu_fp32']['share']:.4f} % of values differ")
        if "psnr_vs_fp32" in entry:
            print(f"  PSNR vs fp32: {entry['psnr_vs_fp32']:.2f} dB")
        if "compiled" in entry:
            print(f"  torch.compile max-autotune: {entry['compiled']['frames_per_s']:.1f} frames/s "
                  f"(compiling took {entry['compiled']['compile_seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
