"""Side-by-side check of the video stage against the original Audio2Head inference loop, on the same random weights.

    python tools/compare_pipeline.py --original /path/to/Audio2Head [--frames 100] [--batch-size 8]

The original is imported at run time from --original (nothing of it is copied; `.cuda()` and `np.float` are patched
by a2h_devkit.original). Both sides get the same inputs, so only the video stage is compared: the
published-width networks with random weights (random batch-norm statistics and Jacobian heads), the original's demo
image, our features of the original's demo audio, and our predicted pose curve. The original side then does what
its `inference.py` does after pose prediction: every 64-frame window drawn with its own `draw_annotation_box`
(OpenCV) into float64 images, the keypoint detector and the motion field generator once per window, the generator
once per frame (re-encoding the source each time), `(prediction * 255).astype(np.uint8)`. Our side is
`pipeline.generate` (streamed, batched). Printed: largest absolute difference of the uint8 frames, the share of
values that differ, and each side's frames per second.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from a2h_core.audio.features import AudioFeatures
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.io.image import prepare_source_image
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_devkit.original import frame_difference, original_image, run_original_video_stage, shared_setup


def run_ours(models: Audio2HeadModels, image_path: Path, features: AudioFeatures, curve: PoseCurve,
             batch_size: int):
    """Our streamed, batched video stage on the same inputs; returns (frames, seconds)."""
    start_time = time.perf_counter()
    # crop=None: the original resizes the whole image to 256x256 (generate --crop none), so the frames compare 1:1.
    result = generate(image_path, features, models, PipelineConfig(batch_size=batch_size, crop=None), pose_curve=curve)
    return result.frames, time.perf_counter() - start_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, required=True, help="folder of the original Audio2Head repository")
    parser.add_argument("--frames", type=int, default=100, help="video frames to render (default 100)")
    parser.add_argument("--batch-size", type=int, default=8, help="our generator batch (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = args.original.resolve()

    original, ours, image_path, features, curve = shared_setup(root, args.frames, args.seed)
    image = original_image(image_path)
    source, _ = prepare_source_image(image_path)
    print(f"source image: ours vs original max abs difference {float((source - image).abs().max()):.3g}")
    print(f"rendering {args.frames} frames with the original loop ...", flush=True)
    reference, original_seconds = run_original_video_stage(root, original, image, features, curve)
    print(f"rendering {args.frames} frames with ours (batch {args.batch_size}) ...", flush=True)
    frames, our_seconds = run_ours(ours, image_path, features, curve, args.batch_size)
    largest, share = frame_difference(frames, reference)
    print(f"uint8 frames [{len(frames)}, 256, 256, 3]: max abs difference {largest}, "
          f"{100 * share:.4f}% of values differ")
    print(f"original: {args.frames / original_seconds:.2f} frames/s, ours: {args.frames / our_seconds:.2f} frames/s")


if __name__ == "__main__":
    main()
