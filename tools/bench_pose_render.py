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

import numpy as np
import torch

from a2h_core.pose.render import render_pose_boxes
from a2h_devkit.pose_boxes import opencv_pose_boxes, random_poses
from a2h_devkit.timing import best_time


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

    poses = random_poses(args.poses, args.seed, spread=args.range)
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
    cv_s, theirs = best_time(lambda: opencv_pose_boxes(poses), args.repeats)
    print(f"OpenCV {cv2.__version__} loop (the original's way): {cv_s * 1000:.1f} ms, {args.poses / cv_s:.0f} "
          f"poses/s; torch / OpenCV speed: {cv_s / ours_s:.2f}x")
    agreement = (ours.cpu().numpy() == theirs).reshape(args.poses, -1).mean(1)
    worst = int(agreement.argmin())
    print(f"pixel agreement per 256x256 image: mean {agreement.mean():.7f}, worst {agreement[worst]:.7f} "
          f"(pose {worst}: {np.array2string(poses[worst], precision=3)}), identical images "
          f"{int((agreement == 1).sum())}/{args.poses}")


if __name__ == "__main__":
    main()
