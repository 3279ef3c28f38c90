"""The square crop the model expects, chosen from a detected face.

Audio2Head was trained on VoxCeleb head-and-shoulders crops; its demo images (256x256) show the face at about
half the width, a little below the middle. `face_crop` reproduces that framing on any picture:

- the face's size is measured from its landmarks, not from the detector's box, so both detectors (whose boxes
  differ) frame alike: ``face_size = max(eye-to-mouth distance, EYE_MOUTH_PER_EYES x the distance between the
  eyes)`` (the larger of the two survives a turned or a tilted head);
- the crop is a square of ``scale x face_size`` pixels whose centre lies ``offset x face_size`` below the mean of
  the five landmarks (negative: above).

`DEFAULT_FRAMING` was calibrated with `tools/calibrate_framing.py` on the original repository's nine demo images
(demo/img/*.jpg): the MTCNN detector on each, then the median over the images of 256 / face_size and of
(128 - landmark centre y) / face_size. A crop of an ordinary photo therefore puts the face at the demo images'
median relative size and position. The numbers and the spread are in the README.

A crop that reaches past the picture's edge is padded by repeating the edge (`io.image.crop_padded`): it is never
refused and never shifted off the face.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.face.detectors import Face, FaceDetector, load_face_detector
from a2h_core.io.image import CropBox, load_image


@dataclass(frozen=True)
class Framing:
    """Where the square crop sits around a face; see the module doc."""

    scale: float  # crop side / face size
    offset: float  # crop centre minus landmark centre, downwards, in face sizes (negative: the crop sits higher)


# Calibrated on the original's demo images (tools/calibrate_framing.py; median of nine images).
DEFAULT_FRAMING = Framing(scale=3.83, offset=-0.48)
EYE_MOUTH_PER_EYES = 1.15  # median eye-to-mouth / eye-to-eye distance on the demo images (same calibration)
SMALL_FACE = 96  # crops smaller than this many pixels get a warning: the network input is 256x256


def face_size(landmarks: np.ndarray) -> float:
    """The face's size in pixels from its five landmarks (see the module doc)."""
    points = np.asarray(landmarks, dtype=np.float64)
    eyes = float(np.linalg.norm(points[1] - points[0]))
    eye_mouth = float(np.linalg.norm((points[0] + points[1]) / 2 - (points[3] + points[4]) / 2))
    return max(eye_mouth, EYE_MOUTH_PER_EYES * eyes)


def face_centre(landmarks: np.ndarray) -> np.ndarray:
    """Mean of the five landmarks, [2] x, y."""
    return np.asarray(landmarks, dtype=np.float64).mean(0)


def framing_box(face: Face, framing: Framing = DEFAULT_FRAMING) -> CropBox:
    """The square crop box (integer pixels, possibly reaching past the picture) for one face."""
    size = face_size(face.landmarks)
    if not math.isfinite(size) or size <= 0:
        x, y, w, h = face.box  # landmarks collapsed: fall back to the detector's box, ~0.86 of its height
        size, centre = 0.86 * h, np.array([x + w / 2, y + h / 2])
    else:
        centre = face_centre(face.landmarks)
    side = max(2, int(round(framing.scale * size)))
    cx, cy = centre[0], centre[1] + framing.offset * size
    return CropBox(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)


@dataclass
class FaceCrop:
    """The automatic crop of one picture: the chosen face, its square crop box, and what was found."""

    face: Face  # the face the crop frames
    box: CropBox  # the square crop, in the picture's pixels (may reach past the edge; it is then padded)
    faces: list[Face] = field(default_factory=list)  # every face found, largest first
    index: int = 0  # which of `faces` was used
    detector: str = ""  # the detector that found them: "yunet" or "mtcnn"
    detector_info: str = ""  # where its weights came from, and why auto chose it
    image_size: tuple[int, int] = (0, 0)  # width, height of the picture
    framing: Framing = DEFAULT_FRAMING  # the framing used

    def to_dict(self) -> dict:
        """JSON-ready: face and crop boxes as [x, y, w, h] pixels, the detector, score, landmarks and all faces."""
        return {
            "face": [round(v, 1) for v in self.face.box],
            "crop": self.box.to_list(),
            "score": round(self.face.score, 4),
            "detector": self.detector,
            "detector_info": self.detector_info,
            "landmarks": self.face.to_dict()["landmarks"],
            "face_index": self.index,
            "faces": [f.to_dict() for f in self.faces],
            "image_size": list(self.image_size),
            "padded": not self.box.inside(*self.image_size),
            "framing": {"scale": self.framing.scale, "offset": self.framing.offset},
        }


def _image_name(image) -> str:
    if isinstance(image, (str, Path)):
        return repr(str(image))
    return "the image"


def face_crop(image, *, detector: str | Path | FaceDetector = "auto", face_index: int | None = None,
              scale: float | None = None, offset: float | None = None, min_score: float = 0.0,
              device="cpu", models_dir: str | Path | None = None, what: str | None = None) -> FaceCrop:
    """Detect the faces of `image` and choose the model's square crop around one of them.

    face_index: which face, counted from the largest (0); by default the largest, with a warning when there are
        several. scale / offset: override `DEFAULT_FRAMING` (a larger scale shows more shoulders; a negative offset
        moves the crop up). what: the picture's name in messages (default: its path).
    Raises Audio2HeadError when no face is found, naming the picture and the ways out (a manual box, or none).
    """
    found = detector if isinstance(detector, FaceDetector) else load_face_detector(
        detector, models_dir=models_dir, device=device)
    rgb = load_image(image)
    name = what or _image_name(image)
    faces = found.detect(rgb, min_score=min_score)
    if not faces:
        raise Audio2HeadError(
            f"no face found in {name} ({rgb.shape[1]}x{rgb.shape[0]}, detector {found.describe()}): give the face "
            "box by hand (--crop X,Y,W,H, or the Crop node's manual mode), or animate the whole picture (--crop none)")
    if face_index is None:
        index = 0
        if len(faces) > 1:
            sizes = ", ".join(f"{i}: {f.box[2]:.0f}x{f.box[3]:.0f} px at ({f.box[0]:.0f}, {f.box[1]:.0f})"
                              for i, f in enumerate(faces))
            warnings.warn(f"{len(faces)} faces found in {name} ({sizes}); animating the largest (0); choose "
                          "another with face_index", A2HWarning, stacklevel=2)
    else:
        index = int(face_index)
        if not 0 <= index < len(faces):
            raise Audio2HeadError(f"face_index {index} does not exist: {len(faces)} face(s) found in {name}, "
                                  f"numbered 0..{len(faces) - 1} from the largest")
    framing = Framing(scale=DEFAULT_FRAMING.scale if scale is None else float(scale),
                      offset=DEFAULT_FRAMING.offset if offset is None else float(offset))
    if not (0.5 <= framing.scale <= 20 and -5 <= framing.offset <= 5):
        raise Audio2HeadError(f"framing scale {framing.scale} / offset {framing.offset} is out of range: use a "
                              f"scale of 0.5..20 (default {DEFAULT_FRAMING.scale}) and an offset of -5..5 "
                              f"(default {DEFAULT_FRAMING.offset})")
    face = faces[index]
    box = framing_box(face, framing)
    if box.width < SMALL_FACE:
        warnings.warn(f"the face in {name} is small: its crop is {box.width}x{box.height} pixels, upscaled to "
                      "256x256 for the network; the animation will look soft", A2HWarning, stacklevel=2)
    return FaceCrop(face=face, box=box, faces=faces, index=index, detector=found.name, detector_info=found.describe(),
                    image_size=(rgb.shape[1], rgb.shape[0]), framing=framing)
