"""Calibrates the automatic crop (`a2h_core.face.framing.DEFAULT_FRAMING`) and the head-pose template
(`a2h_core.face.head_pose.TEMPLATE_PITCH`, `TRANSLATION_UNITS_PER_MM`) on the original's demo images.

The original repository's demo/img/*.jpg are 256x256 crops framed as the model was trained. For each, the face
detector gives five landmarks; the crop that reproduces the image is then ``scale = 256 / face_size`` and
``offset = (128 - landmark centre y) / face_size``. The medians over the images are the calibration; the spread
and the detector box's relative size are printed for comparison with other crop rules.

Head pose: the demo images are 256x256 crops seen by the model's own camera, so their landmarks are fitted as they
are. The template's tilt is chosen so that their median pitch is 0, and the translation units so that their median
depth is the middle of the training range; both are printed with the values in use.

    python tools/calibrate_framing.py --original /path/to/Audio2Head [--detector mtcnn]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from a2h_core.config import POSE_MAX, POSE_MIN
from a2h_core.face.detectors import load_face_detector
from a2h_core.face.framing import DEFAULT_FRAMING, EYE_MOUTH_PER_EYES, face_centre, face_size
from a2h_core.face.head_pose import TEMPLATE_PITCH, TRANSLATION_UNITS_PER_MM, solve_head_pose
from a2h_core.io.image import load_image
from a2h_core.pose.rotations import poses_to_ypr


def measure(paths: list[Path], detector: str) -> list[dict]:
    found = load_face_detector(detector)
    rows = []
    for path in paths:
        rgb = load_image(path)
        faces = found.detect(rgb)
        if not faces:
            print(f"{path.name}: no face", file=sys.stderr)
            continue
        face = faces[0]
        marks = face.landmarks
        size = face_size(marks)
        centre = face_centre(marks)
        side = rgb.shape[1]
        rows.append({
            "name": path.name, "size": side, "face_size": size,
            "eye_mouth_per_eyes": np.linalg.norm((marks[0] + marks[1]) / 2 - (marks[3] + marks[4]) / 2)
            / np.linalg.norm(marks[1] - marks[0]),
            "scale": side / size, "offset": (side / 2 - centre[1]) / size, "offset_x": (side / 2 - centre[0]) / size,
            "box_width_fraction": face.box[2] / side, "box_centre_y_fraction": (face.box[1] + face.box[3] / 2) / side,
            "landmark_centre_y_fraction": centre[1] / side, "detector": found.describe(),
            "landmarks": marks * 256 / side,
        })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, required=True, help="the original Audio2Head repository")
    parser.add_argument("--detector", default="mtcnn", help="auto, yunet, mtcnn or a weight path (default mtcnn)")
    args = parser.parse_args()
    paths = sorted((args.original / "demo" / "img").glob("*.jpg"))
    if not paths:
        parser.error(f"no demo/img/*.jpg under {args.original}")
    rows = measure(paths, args.detector)
    print(f"detector: {rows[0]['detector']}")
    keys = ("scale", "offset", "offset_x", "eye_mouth_per_eyes", "box_width_fraction", "box_centre_y_fraction",
            "landmark_centre_y_fraction")
    print("image".ljust(12) + "".join(k[:12].rjust(13) for k in keys))
    for row in rows:
        print(row["name"].ljust(12) + "".join(f"{row[k]:13.3f}" for k in keys))
    for label, reduce in (("median", np.median), ("min", np.min), ("max", np.max)):
        print(label.ljust(12) + "".join(f"{reduce([r[k] for r in rows]):13.3f}" for k in keys))
    print(f"in use: scale {DEFAULT_FRAMING.scale}, offset {DEFAULT_FRAMING.offset}, "
          f"eye_mouth_per_eyes {EYE_MOUTH_PER_EYES}")

    fitted, error = solve_head_pose(np.stack([r["landmarks"] for r in rows]))
    ypr = poses_to_ypr(fitted)
    print("\nhead pose of the demo images (template in use; yaw, pitch, roll degrees; depth in template mm):")
    for row, angles, depth, rms in zip(rows, ypr[:, :3], fitted[:, 5], error):
        print(f"{row['name'].ljust(12)} {angles[0]:7.1f} {angles[1]:7.1f} {angles[2]:7.1f} {depth:8.1f}  "
              f"rms {rms:.2f} px")
    middle = (float(POSE_MIN[5]) + float(POSE_MAX[5])) / 2
    print(f"median pitch {np.median(ypr[:, 1]):.1f} deg (0 when TEMPLATE_PITCH = {TEMPLATE_PITCH} is calibrated); "
          f"units per mm for a median depth of {middle:.1f}: {middle / np.median(fitted[:, 5]):.3f} "
          f"(in use {TRANSLATION_UNITS_PER_MM})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
