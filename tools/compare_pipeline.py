"""Side-by-side check of the video stage against the original Audio2Head inference loop, on the same random weights.

    python tools/compare_pipeline.py --original /path/to/Audio2Head [--frames 100] [--batch-size 8]

The original is imported at run time from --original (nothing of it is copied; `.cuda()` and `np.float` are patched
as in tools/compare_networks.py). Both sides get the same inputs, so only the video stage is compared: the
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
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_networks import build_original, original_image, same_weights  # noqa: E402

from a2h_core.audio.features import AudioFeatures, extract_features  # noqa: E402
from a2h_core.io.image import prepare_source_image  # noqa: E402
from a2h_core.modules.models import Audio2HeadModels  # noqa: E402
from a2h_core.inference.pipeline import PipelineConfig, generate  # noqa: E402
from a2h_core.pose import PoseCurve  # noqa: E402
from a2h_core.inference.wrapper import Audio2HeadWrapper  # noqa: E402

SEQ_LEN = 64  # the original's opt.seq_len


def shared_setup(root: Path, frames: int, seed: int):
    """Original modules and our models with the same random weights, plus the shared inputs."""
    torch.manual_seed(seed)
    original = build_original(root)
    ours = same_weights(original, seed)
    image_path = root / "demo" / "img" / "paint.jpg"
    features = extract_features(root / "demo" / "audio" / "intro.wav")
    if features.num_frames < frames:
        raise SystemExit(f"the demo audio has only {features.num_frames} frames")
    features = AudioFeatures(features.values[: frames * 4])
    source, _ = prepare_source_image(image_path)
    with torch.inference_mode():
        curve = Audio2HeadWrapper(ours).predict_poses(source, features)
    return original, ours, image_path, features, curve


def run_original_video_stage(original: dict, image: torch.Tensor, features: AudioFeatures,
                             curve: PoseCurve) -> tuple[np.ndarray, float]:
    """The original's loop after pose prediction, on its own modules; returns (frames, seconds)."""
    inference = sys.modules["inference"]
    start_time = time.perf_counter()
    audio_feature = features.values
    frames = len(audio_feature) // 4
    poses = curve.values.astype(np.float32)
    rot, trans = poses[:, :3], poses[:, 3:]
    windows_audio, windows_poses = [], []
    for start in range(0, frames, SEQ_LEN // 2):
        window_audio, window_poses = [], []
        for j in range(SEQ_LEN):
            if start + j < frames:
                window_audio.append(audio_feature[(start + j) * 4:(start + j) * 4 + 4])
                index = start + j
            else:
                window_audio.append(np.zeros((4, 41), dtype=np.float32))
                index = -1
            canvas = np.zeros([256, 256])
            inference.draw_annotation_box(canvas, np.array(rot[index]), np.array(trans[index]))
            window_poses.append(canvas)
        windows_audio.append(window_audio)
        windows_poses.append(window_poses)
    audio_windows = torch.from_numpy(np.array(windows_audio, dtype=np.float32)).unsqueeze(0)
    pose_windows = torch.from_numpy(np.array(windows_poses, dtype=np.float32)).unsqueeze(0)

    # Like the original: no torch.no_grad(), gradients are tracked and dropped with `.data`.
    out = []
    for window in range(audio_windows.shape[1]):
        kp_source = original["kp_detector"](image)
        kp_window = original["audio2kp"]({"audio": audio_windows[:, window], "pose": pose_windows[:, window],
                                           "id_img": image})
        first = 0 if window == 0 else SEQ_LEN // 4
        for row in range(first, SEQ_LEN // 4 * 3):
            kp_driving = {"value": kp_window["value"][:, row], "jacobian": kp_window["jacobian"][:, row]}
            prediction = original["generator"](image, kp_source=kp_source, kp_driving=kp_driving)["prediction"]
            out.append((np.transpose(prediction.data.cpu().numpy(), [0, 2, 3, 1])[0] * 255).astype(np.uint8))
            if len(out) >= frames:
                break
        if len(out) >= frames:
            break
    return np.stack(out), time.perf_counter() - start_time


def run_ours(models: Audio2HeadModels, image_path: Path, features: AudioFeatures, curve: PoseCurve,
             batch_size: int, dtype: str = "fp32"):
    """Our streamed, batched video stage on the same inputs; returns (frames, seconds, seconds per stage)."""
    start_time = time.perf_counter()
    # crop=None: the original resizes the whole image to 256x256 (generate --crop none), so the frames compare 1:1.
    result = generate(image_path, features, models, PipelineConfig(batch_size=batch_size, dtype=dtype, crop=None),
                      pose_curve=curve)
    return result.frames, time.perf_counter() - start_time, result.seconds


def frame_difference(ours: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Largest absolute difference and the share of values that differ."""
    difference = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    return int(difference.max()), float((difference > 0).mean())


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
    reference, original_seconds = run_original_video_stage(original, image, features, curve)
    print(f"rendering {args.frames} frames with ours (batch {args.batch_size}) ...", flush=True)
    frames, our_seconds, _ = run_ours(ours, image_path, features, curve, args.batch_size)
    largest, share = frame_difference(frames, reference)
    print(f"uint8 frames [{len(frames)}, 256, 256, 3]: max abs difference {largest}, "
          f"{100 * share:.4f}% of values differ")
    print(f"original: {args.frames / original_seconds:.2f} frames/s, ours: {args.frames / our_seconds:.2f} frames/s")


if __name__ == "__main__":
    main()
