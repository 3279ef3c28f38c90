"""Speed and fidelity of the pose-box renderer (a2h_core.pose.render) against the original's OpenCV drawing.

    python tools/bench_pose_render.py [--poses 1000] [--device cpu] [--threads N] [--range 1.0]

Prints the time to render the poses (best of --repeats) on the chosen device, the same for the original's way
(one cv2 drawing per pose on a float64 canvas, then float32, as inference.py does) when OpenCV is installed, and
the per-image pixel agreement (mean, worst, share of identical images) over the poses. Poses are drawn uniformly
inside the training range (POSE_MIN..POSE_MAX) scaled by --range about its middle, as float32 like the
predictor's output.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from a2h_core.config import POSE_MAX, POSE_MIN  # noqa: E402
from a2h_core.pose.render import BOX_POINTS_3D, render_pose_boxes  # noqa: E402


def opencv_boxes(cv2, poses: np.ndarray) -> np.ndarray:
    """The original's loop: project, truncate to int32, polylines + 3 lines on float64 zeros; float32 at the end."""
    camera = np.array([[233.333, 0, 128], [0, 233.333, 128], [0, 0, 1]], dtype=np.float64)
    images = []
    for pose in poses:
        projected, _ = cv2.projectPoints(BOX_POINTS_3D, np.array(pose[:3]), np.array(pose[3:]), camera,
                                         np.zeros((4, 1)))
        points = np.int32(projected.reshape(-1, 2))
        image = np.zeros((256, 256))
        cv2.polylines(image, [points], True, (255, 255, 255), 2, cv2.LINE_AA)
        for a, b in ((1, 6), (2, 7), (3, 8)):
            cv2.line(image, tuple(int(v) for v in points[a]), tuple(int(v) for v in points[b]), (255, 255, 255), 2,
                     cv2.LINE_AA)
        images.append(image)
    return np.array(images, dtype=np.float32)


def best_time(function, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        if isinstance(result, torch.Tensor) and result.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", type=int, default=1000, help="number of random poses (default 1000)")
    parser.add_argument("--device", default="cpu", help="torch device for our renderer (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--range", type=float, default=1.0, help="scale of the pose range about its middle")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats, the best is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    middle, half = (POSE_MIN + POSE_MAX) / 2.0, (POSE_MAX - POSE_MIN) / 2.0
    poses = (middle + args.range * half * (2 * rng.random((args.poses, 6)) - 1)).astype(np.float32)
    tensor = torch.from_numpy(poses).to(args.device)

    render_pose_boxes(tensor[:8])  # warm-up
    ours_s, ours = best_time(lambda: render_pose_boxes(tensor), args.repeats)
    print(f"torch renderer: {args.poses} poses in {ours_s * 1000:.1f} ms on {args.device} "
          f"({torch.get_num_threads()} threads), {args.poses / ours_s:.0f} poses/s")

    try:
        import cv2
    except ImportError:
        print("OpenCV not installed: no comparison (pip install opencv-python-headless<5)")
        return
    cv_s, theirs = best_time(lambda: opencv_boxes(cv2, poses), args.repeats)
    print(f"OpenCV {cv2.__version__} loop (the original's way): {cv_s * 1000:.1f} ms, {args.poses / cv_s:.0f} "
          f"poses/s; torch / OpenCV speed: {cv_s / ours_s:.2f}x")
    agreement = (ours.cpu().numpy() == theirs).reshape(args.poses, -1).mean(1)
    worst = int(agreement.argmin())
    print(f"pixel agreement per 256x256 image: mean {agreement.mean():.7f}, worst {agreement[worst]:.7f} "
          f"(pose {worst}: {np.array2string(poses[worst], precision=3)}), identical images "
          f"{int((agreement == 1).sum())}/{args.poses}")


if __name__ == "__main__":
    main()
