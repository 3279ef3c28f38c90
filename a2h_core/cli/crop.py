"""`python -m a2h_core crop`: find the face of a picture and propose the model's square crop around it."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from a2h_core.errors import Audio2HeadError
from a2h_core.face import DEFAULT_FRAMING, face_crop, load_face_detector
from a2h_core.previews.face_boxes import draw_face_crop
from a2h_core.previews.pose_plot import save_png


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """--face-detector and --device, shared by the commands that detect faces."""
    parser.add_argument("--face-detector", default="auto", metavar="auto|yunet|mtcnn|PATH",
                        help="auto (default: YuNet when its weights are here or can be fetched once, else the "
                             "offline MTCNN of the 'mtcnn' package), yunet, mtcnn, or a weight file/folder")


def add_framing_options(parser: argparse.ArgumentParser) -> None:
    """--face-index, --crop-scale, --crop-offset."""
    parser.add_argument("--face-index", type=int,
                        help="which face to use, 0 = the largest (default: the largest, with a warning if several)")
    parser.add_argument("--crop-scale", type=float,
                        help=f"crop side in face sizes (default {DEFAULT_FRAMING.scale}, calibrated on the "
                             "original's demo images; larger shows more shoulders)")
    parser.add_argument("--crop-offset", type=float,
                        help=f"crop centre below the face centre, in face sizes (default {DEFAULT_FRAMING.offset}; "
                             "more negative moves the crop up)")


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "crop", help="find the face and propose the model's square crop",
        description="Detect the faces of a picture and print the square head-and-shoulders crop Audio2Head "
                    "expects (what `generate --crop auto` uses). Boxes are x, y, width, height in the "
                    "picture's pixels; a crop may reach past the edge (it is then padded).")
    parser.add_argument("--image", required=True, type=Path, help="the picture (png, jpg, webp, ...)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object: {"face": [x, y, w, h], "crop": [x, y, w, h], "score", '
                             '"detector", "landmarks", "faces": [...], ...}')
    parser.add_argument("--preview", type=Path, metavar="OUT.png",
                        help="write the picture with the face box (green), landmarks and crop (orange) drawn")
    add_detector_options(parser)
    add_framing_options(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.preview is not None and args.preview.suffix.lower() != ".png":
        raise Audio2HeadError(f"--preview {str(args.preview)!r} must end in .png")
    detector = load_face_detector(args.face_detector, log=lambda message: print(message, file=sys.stderr))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crop = face_crop(args.image, detector=detector, face_index=args.face_index, scale=args.crop_scale,
                         offset=args.crop_offset)
    notes = [str(w.message) for w in caught]
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if args.preview is not None:
        save_png(draw_face_crop(args.image, crop), args.preview)
    if args.json:
        print(json.dumps({**crop.to_dict(), "warnings": notes}))
    else:
        x, y, w, h = crop.box.to_list()
        fx, fy, fw, fh = crop.face.box
        print(f"face {fx:.0f},{fy:.0f},{fw:.0f},{fh:.0f} (score {crop.face.score:.3f}, {len(crop.faces)} found) "
              f"by {crop.detector_info}")
        print(f"crop {x},{y},{w},{h}" + (" (padded past the edge)" if crop.to_dict()["padded"] else ""))
        print(f"use: generate --crop {x},{y},{w},{h}   (or --crop auto, the default)")
    if args.preview is not None:
        print(f"Wrote {args.preview}", file=sys.stderr)
    return 0
