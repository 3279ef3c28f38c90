"""Face detection: every face of a picture as a box, five landmarks and a score.

Two detectors, both pure torch (no OpenCV, dlib, insightface or onnxruntime):

- ``yunet``: YuNet (85 k parameters), the better detector. Its weights are fetched once (see `weights`).
- ``mtcnn``: MTCNN, fully offline: its weights ship inside the `mtcnn` package on PyPI.
- ``auto``: YuNet when its weights are here or can be fetched, otherwise MTCNN; `FaceDetector.name` says which.

Landmarks are always in the same order, named as seen on the screen: the eye on the image's left, the eye on the
image's right, the nose tip, the mouth corner on the image's left, the one on its right. A mirrored picture
therefore keeps the order (and a pose fitted from it flips yaw and roll).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from a2h_core.device import parse_device
from a2h_core.errors import Audio2HeadError
from a2h_core.face import weights as face_weights
from a2h_core.face.networks.mtcnn_onet import ONet
from a2h_core.face.networks.mtcnn_pnet import PNet
from a2h_core.face.networks.mtcnn_rnet import RNet
from a2h_core.face.networks.yunet import YuNet
from a2h_core.io.image import load_image

DETECTORS = ("auto", "yunet", "mtcnn")
DETECT_MAX_SIDE = 1024  # pictures are searched at most this large
MIN_FACE_FRACTION = 0.04  # faces smaller than this fraction of the picture's shorter side are not searched for
LANDMARK_NAMES = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")  # as seen on the screen


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the picture it was found in."""

    box: tuple[float, float, float, float]  # x, y, width, height of the detector's face box
    landmarks: np.ndarray  # [5, 2] float64 x, y in LANDMARK_NAMES order
    score: float  # detector confidence, 0..1
    detector: str = ""  # "yunet" or "mtcnn"

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    def to_dict(self) -> dict:
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 4), "detector": self.detector,
                "landmarks": {n: [round(float(x), 2), round(float(y), 2)]
                              for n, (x, y) in zip(LANDMARK_NAMES, self.landmarks)}}


# ------------------------------------------------------------------------------------------------ shared maths


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression on [N, 4] x1, y1, x2, y2 boxes: indices kept, best score first.

    Overlap is intersection over union, or over the smaller box when `by_min` (MTCNN's last stage)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    left = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    top = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    right = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    bottom = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    if by_min:
        overlap = inter / np.maximum(np.minimum(area[:, None], area[None, :]), 1e-9)
    else:
        overlap = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
    removed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for i in range(len(boxes)):
        if removed[i]:
            continue
        keep.append(i)
        removed |= overlap[i] > threshold
    return order[np.array(keep, dtype=np.int64)]


def _square(boxes: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 boxes grown to squares about their centres."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)


def _crops(image: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Bilinear size x size crops [N, C, size, size] of image [1, C, H, W] at x1, y1, x2, y2 pixel boxes (the box
    corners are the first and last samples; outside the picture reads 0)."""
    _, _, height, width = image.shape
    steps = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    b = torch.from_numpy(boxes)
    xs = b[:, 0:1] + (b[:, 2:3] - b[:, 0:1]) * steps  # [N, size] pixel centres
    ys = b[:, 1:2] + (b[:, 3:4] - b[:, 1:2]) * steps
    gx = (2 * xs + 1) / width - 1  # align_corners=False: pixel i sits at (2i + 1) / W - 1
    gy = (2 * ys + 1) / height - 1
    grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], -1)
    grid = grid.to(image.dtype).to(image.device)
    return F.grid_sample(image.expand(len(boxes), -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _working_copy(rgb: np.ndarray, max_side: int, device: torch.device) -> tuple[torch.Tensor, float]:
    """[1, 3, h, w] float32 0..255 of the picture shrunk to at most max_side (area filter), and the factor back."""
    tensor = torch.from_numpy(np.array(rgb, copy=True)).to(device).permute(2, 0, 1)[None].float()
    height, width = rgb.shape[:2]
    factor = max(height, width) / max_side
    if factor <= 1.0:
        return tensor, 1.0
    size = (max(1, round(height / factor)), max(1, round(width / factor)))
    return F.interpolate(tensor, size=size, mode="area"), height / size[0]


# ------------------------------------------------------------------------------------------------ detectors


@dataclass
class FaceDetector:
    """A loaded detector. `detect(picture)` -> faces, largest first. `name` is "yunet" or "mtcnn"; `note` says why
    auto chose it (empty when it was asked for)."""

    name: str  # "yunet" or "mtcnn"
    networks: dict[str, torch.nn.Module]  # the networks, in eval mode on `device`
    device: torch.device  # where the networks run
    source: str = ""  # where the weights came from
    note: str = ""  # why `auto` chose this detector
    min_score: float = 0.0  # detections below this are dropped (0 keeps the detector's own threshold)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def detect(self, image, min_score: float | None = None) -> list[Face]:
        """Faces of `image` (path, PIL, array or ComfyUI IMAGE; see io.image.load_image), largest first."""
        rgb = load_image(image)
        with self._lock, torch.inference_mode():
            faces = (_detect_yunet if self.name == "yunet" else _detect_mtcnn)(self, rgb)
        threshold = self.min_score if min_score is None else min_score
        faces = [f for f in faces if f.score >= threshold]
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def describe(self) -> str:
        text = f"{self.name} ({self.source})" if self.source else self.name
        return f"{text}; {self.note}" if self.note else text


def _detect_yunet(detector: FaceDetector, rgb: np.ndarray, threshold: float = 0.6,
                  nms_threshold: float = 0.3) -> list[Face]:
    net = detector.networks["yunet"]
    image, factor = _working_copy(rgb, 640, detector.device)
    height, width = image.shape[-2:]
    loc, face_prob, iou = net(image.flip(1))  # the network was trained on BGR
    loc, score = loc[0].double().cpu(), (face_prob[0] * iou[0].clamp(0, 1)).sqrt().double().cpu()
    priors = net.priors(height, width).double()
    var_c, var_s = net.config.variances
    centre = priors[:, :2] + loc[:, :2] * var_c * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:4] * var_s)
    points = priors[:, None, :2] + loc[:, 4:14].view(-1, 5, 2) * var_c * priors[:, None, 2:]
    scale = torch.tensor([width, height], dtype=torch.float64)
    boxes = torch.cat([(centre - size / 2) * scale, (centre + size / 2) * scale], 1).numpy()
    points = (points * scale).numpy()
    score = score.numpy()
    keep = np.nonzero(score > threshold)[0]
    keep = keep[nms(boxes[keep], score[keep], nms_threshold)]
    return [_face(boxes[i], points[i], score[i], factor, "yunet") for i in keep]


def _face(box: np.ndarray, points: np.ndarray, score: float, factor: float, name: str) -> Face:
    x1, y1, x2, y2 = (float(v) * factor for v in box)
    return Face(box=(x1, y1, x2 - x1, y2 - y1), landmarks=np.asarray(points, np.float64) * factor,
                score=float(score), detector=name)


def _mtcnn_scales(height: int, width: int, min_face: float) -> list[float]:
    scales, scale = [], 12.0 / min_face
    while min(height, width) * scale >= 12:
        scales.append(scale)
        scale *= 0.709
    return scales


def _detect_mtcnn(detector: FaceDetector, rgb: np.ndarray, thresholds=(0.6, 0.7, 0.9)) -> list[Face]:
    pnet, rnet, onet = (detector.networks[k] for k in ("pnet", "rnet", "onet"))
    image, factor = _working_copy(rgb, DETECT_MAX_SIDE, detector.device)
    image = (image - 127.5) / 128.0
    height, width = image.shape[-2:]
    min_face = max(20.0, MIN_FACE_FRACTION * min(height, width))  # pixels of the working copy

    # Stage 1: P-Net over the pyramid; each output cell is a 12x12 window, 2 pixels apart.
    candidates = []
    for scale in _mtcnn_scales(height, width, min_face):
        size = (math.ceil(height * scale), math.ceil(width * scale))
        offsets, prob = pnet(F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True))
        prob, offsets = prob[0].cpu().numpy(), offsets[0].cpu().numpy()
        ys, xs = np.nonzero(prob > thresholds[0])
        if len(ys) == 0:
            continue
        window = np.stack([xs * 2, ys * 2, xs * 2 + 12, ys * 2 + 12], 1).astype(np.float64) / scale
        boxes = window + offsets[:, ys, xs].T * (12.0 / scale)
        scores = prob[ys, xs].astype(np.float64)
        keep = nms(boxes, scores, 0.5)
        candidates.append(np.concatenate([boxes[keep], scores[keep, None]], 1))
    if not candidates:
        return []
    found = np.concatenate(candidates)
    found = found[nms(found[:, :4], found[:, 4], 0.7)]

    # Stage 2: R-Net on 24x24 crops of the squared candidates.
    boxes = _square(found[:, :4])
    offsets, prob = rnet(_crops(image, boxes, 24))
    prob, offsets = prob.cpu().numpy().astype(np.float64), offsets.cpu().numpy().astype(np.float64)
    keep = prob > thresholds[1]
    if not keep.any():
        return []
    side = (boxes[keep, 2] - boxes[keep, 0])[:, None]
    boxes, prob = boxes[keep] + offsets[keep] * side, prob[keep]
    keep = nms(boxes, prob, 0.7)
    boxes = _square(boxes[keep])

    # Stage 3: O-Net on 48x48 crops: final score, box and landmarks.
    offsets, marks, prob = onet(_crops(image, boxes, 48))
    prob = prob.cpu().numpy().astype(np.float64)
    offsets, marks = offsets.cpu().numpy().astype(np.float64), marks.cpu().numpy().astype(np.float64)
    keep = prob > thresholds[2]
    if not keep.any():
        return []
    boxes, offsets, marks, prob = boxes[keep], offsets[keep], marks[keep], prob[keep]
    side = (boxes[:, 2] - boxes[:, 0])[:, None]
    points = np.stack([boxes[:, 0:1] + marks[:, :5] * side, boxes[:, 1:2] + marks[:, 5:] * side], -1)
    boxes = boxes + offsets * side
    keep = nms(boxes, prob, 0.7, by_min=True)
    return [_face(boxes[i], points[i], prob[i], factor, "mtcnn") for i in keep]


# ------------------------------------------------------------------------------------------------ loading

_CACHE: dict[tuple, FaceDetector] = {}
_CACHE_LOCK = threading.Lock()


def _build(name: str, states: dict[str, dict], device: torch.device, source: str) -> FaceDetector:
    classes = {"yunet": YuNet, "pnet": PNet, "rnet": RNet, "onet": ONet}
    networks = {}
    for key, state in states.items():
        net = classes[key]()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise Audio2HeadError(f"the {name} weights from {source} do not fit the {name} network ({first}): "
                                  f"give the original file") from None
        networks[key] = net.eval().to(device)
    return FaceDetector(name=name, networks=networks, device=device, source=source)


def _load_yunet(path: Path, device: torch.device) -> FaceDetector:
    return _build("yunet", {"yunet": face_weights.read_yunet_state(path)}, device, str(path))


def _load_mtcnn(files: dict[str, Path], device: torch.device) -> FaceDetector:
    source = str(files["pnet"].parent)
    return _build("mtcnn", face_weights.read_mtcnn_states(files), device, source)


def load_face_detector(detector: str | Path = "auto", *, models_dir: str | Path | None = None,
                       device: str | torch.device = "cpu", download: bool = True,
                       log: Callable[[str], None] | None = None) -> FaceDetector:
    """A face detector, cached per choice and device.

    detector: "auto", "yunet", "mtcnn", or a path: a YuNet `.pth` file, or a folder holding MTCNN's pnet/rnet/onet
        (.lz4 from the `mtcnn` package, or .pt from facenet-pytorch) or a `yunet_final.pth`.
    models_dir: a folder searched first and where YuNet is downloaded to (ComfyUI: models/face_detection);
        without it YuNet goes to the Hugging Face cache.
    download: allow fetching YuNet (also off with HF_HUB_OFFLINE=1).
    """
    device = parse_device(device)
    key = (str(detector), str(models_dir), str(device), download)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(detector, models_dir, device, download, log or (lambda message: None))
        return _CACHE[key]


def _load(detector, models_dir, device, download, log) -> FaceDetector:
    choice = str(detector)
    if choice not in DETECTORS:
        path = Path(choice).expanduser()
        if path.is_dir():
            files = face_weights._stage_files(path)
            if files:
                return _load_mtcnn(files, device)
            if (path / face_weights.YUNET_FILE).is_file():
                return _load_yunet(path / face_weights.YUNET_FILE, device)
            raise Audio2HeadError(f"face-detector folder {str(path)!r} holds neither {face_weights.YUNET_FILE} nor "
                                  "pnet/rnet/onet weights: give the file itself, or auto, yunet or mtcnn")
        if path.is_file() or path.suffix in (".pth", ".pt", ".safetensors"):
            return _load_yunet(path, device)
        raise Audio2HeadError(f"face detector {choice!r} is unknown: choose {', '.join(DETECTORS)}, or give the "
                              "path of a weight file or folder")
    if choice == "mtcnn":
        files = face_weights.find_mtcnn(models_dir)
        if files is None:
            raise Audio2HeadError(face_weights.mtcnn_missing_message())
        return _load_mtcnn(files, device)

    yunet_reason = ""
    path = face_weights.find_yunet(models_dir)
    if path is None and download and not face_weights.offline():
        try:
            log(f"downloading the YuNet face detector ({face_weights.YUNET_FILE}, 0.3 MB) once")
            path = face_weights.download_yunet(models_dir)
        except Audio2HeadError as exc:
            if choice == "yunet":
                raise
            yunet_reason = f"YuNet could not be downloaded ({str(exc).rsplit('(', 1)[-1].rstrip(')')})"
    if path is not None:
        return _load_yunet(path, device)
    if choice == "yunet":
        raise Audio2HeadError(face_weights.yunet_missing_message(models_dir))
    yunet_reason = yunet_reason or "YuNet's weights are not on this machine (offline)"
    files = face_weights.find_mtcnn(models_dir)
    if files is None:
        raise Audio2HeadError(f"no face detector is available: {face_weights.yunet_missing_message(models_dir)}; or "
                              f"{face_weights.mtcnn_missing_message()}")
    found = _load_mtcnn(files, device)
    found.note = f"auto chose MTCNN: {yunet_reason}"
    return found


def detect_faces(image, detector: str | Path | FaceDetector = "auto", *, min_score: float = 0.0,
                 device: str | torch.device = "cpu", models_dir: str | Path | None = None) -> list[Face]:
    """Every face of `image` (path, PIL, array or ComfyUI IMAGE), largest first, each with box, landmarks, score."""
    if not isinstance(detector, FaceDetector):
        detector = load_face_detector(detector, models_dir=models_dir, device=device)
    return detector.detect(image, min_score=min_score)
