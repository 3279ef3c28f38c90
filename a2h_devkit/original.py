"""The original Audio2Head code (a checkout of wangsuzhen/Audio2Head given by the user) beside ours, on the same
random weights: import with the patches modern numpy / torch / a CPU need, the four networks at the published
sizes, the original's image reading, and its per-frame video loop. Nothing of the original is copied here; the
tools compare_networks.py, compare_pipeline.py, compare_features.py and benchmark.py import it at run time."""
from __future__ import annotations

import argparse
import functools
import time
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2h_core.audio.features import AudioFeatures, extract_features
from a2h_core.config import ModelConfig
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.image import prepare_source_image
from a2h_core.io.weights import SUBMODELS
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_devkit.imports import importable
from a2h_devkit.random_weights import randomize_batch_norm, randomize_jacobian_head

SEQ_LEN = 64  # the original's opt.seq_len


@functools.cache
def import_original(root: Path) -> types.SimpleNamespace:
    """The original's inference module (its feature and drawing functions) and network classes, imported from the
    checkout `root`, with what modern numpy / torch / a CPU lack patched: `np.float`, and `.cuda()` as a no-op."""
    np.float = float  # removed from numpy; used by the original's pose-box drawing
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    nn.Module.cuda = lambda self, *args, **kwargs: self
    with importable(root):
        import inference
        from modules.audio2kp import AudioModel3D
        from modules.audio2pose import audio2poseLSTM
        from modules.generator import OcclusionAwareGenerator
        from modules.keypoint_detector import KPDetector
    return types.SimpleNamespace(inference=inference, audio2poseLSTM=audio2poseLSTM, AudioModel3D=AudioModel3D,
                                 KPDetector=KPDetector, OcclusionAwareGenerator=OcclusionAwareGenerator)


def build_original(root: Path) -> dict[str, nn.Module]:
    """The original's four networks at the published sizes (its config files), with PyTorch's random init."""
    import yaml

    original = import_original(root)
    params = yaml.safe_load((root / "config" / "vox-256.yaml").read_text())["model_params"]
    opt = argparse.Namespace(**yaml.safe_load((root / "config" / "parameters.yaml").read_text()))
    return {
        "audio2pose": original.audio2poseLSTM(),
        "audio2kp": original.AudioModel3D(opt),
        "kp_detector": original.KPDetector(**params["kp_detector_params"], **params["common_params"]),
        "generator": original.OcclusionAwareGenerator(**params["generator_params"], **params["common_params"]),
    }


def flat_state_dict(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """One flat state dict with our key layout ("generator.…") from the original's four modules."""
    return {f"{name}.{key}": value for name in SUBMODELS for key, value in modules[name].state_dict().items()}


def randomize(modules: dict[str, nn.Module], generator: torch.Generator) -> None:
    """Make batch norm and the (zero-initialised) Jacobian heads non-trivial and spread the generator's output over
    most of 0..1, like an image; convolutions keep their random init. Puts the modules in eval mode."""
    with torch.no_grad():
        for module in modules.values():
            randomize_batch_norm(module, generator)
            if hasattr(module, "final"):  # generator
                module.final.weight.mul_(20)
            randomize_jacobian_head(module, generator, std=0.002)
            module.eval()


def same_weights(original: dict[str, nn.Module], seed: int) -> Audio2HeadModels:
    """`randomize` the original's modules (seeded) and strict-load the same weights into our published-width models."""
    randomize(original, torch.Generator().manual_seed(seed))
    ours = Audio2HeadModels(ModelConfig.published())
    ours.load_state_dict(flat_state_dict(original), strict=True)
    return ours


def original_image(image_path: Path) -> torch.Tensor:
    """The original's source image: skimage read, first three channels, cv2.resize, img_as_float32."""
    import cv2
    from skimage import img_as_float32, io

    image = cv2.resize(io.imread(str(image_path))[:, :, :3], (256, 256))
    return torch.from_numpy(np.array(img_as_float32(image)).transpose(2, 0, 1)).unsqueeze(0)


def shared_setup(root: Path, frames: int, seed: int):
    """The original's modules and our models with the same random weights, plus the shared inputs: the original's
    demo image path, our features of its demo audio (first `frames` frames) and our predicted pose curve."""
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


def run_original_video_stage(root: Path, original: dict, image: torch.Tensor, features: AudioFeatures,
                             curve: PoseCurve, device: str | torch.device = "cpu") -> tuple[np.ndarray, float]:
    """The original's loop after pose prediction, on its own modules: every 64-frame window drawn with its own
    `draw_annotation_box` into float64 images, the keypoint detector and the motion field generator once per window,
    the generator once per frame, `(prediction * 255).astype(np.uint8)`. Returns (frames, seconds).

    device: where the original's modules are (moved there by the caller); the inputs are moved there too."""
    inference = import_original(root).inference
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
    audio_windows = torch.from_numpy(np.array(windows_audio, dtype=np.float32)).unsqueeze(0).to(device)
    pose_windows = torch.from_numpy(np.array(windows_poses, dtype=np.float32)).unsqueeze(0).to(device)
    image = image.to(device)

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


def frame_difference(ours: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Largest absolute difference of two uint8 videos and the share of values that differ."""
    difference = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    return int(difference.max()), float((difference > 0).mean())
