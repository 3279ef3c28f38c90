"""The paper's video evaluation (Sec. 5.1, Table 1-2) on prepared held-out clips: for each clip, generate from its
first frame and its audio as at inference (`inference.wrapper`, the same stages as `generate --crop none`), with
the clip's true poses ("GT-head" in Table 2) or N_H's predicted poses, and compare with the real frames.

Per clip and overall (frame-weighted): PSNR, SSIM, KE (N_M's keypoints against N_D's on the real frames), and LPIPS
when the `lpips` package and its weights are available; FID over all frames when `pytorch_fid` and its Inception
weights are. Missing optional metrics are reported as skipped with the reason, never estimated.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FEATURE_ROWS_PER_FRAME, FPS, NUM_AUDIO_FEATURES
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.image import image_to_tensor
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_core.training.datasets import ClipSource
from a2h_core.training.pretrained import hub_checkpoints
from a2h_core.training.video_metrics import (
    frechet_distance,
    gaussian_statistics,
    keypoint_error,
    psnr_per_frame,
    ssim_per_frame,
    summarize_clips,
)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's Inception weights (TF FID port)
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
SYNCNET_FILE = "syncnet_v2.model"  # SyncNet's weights, from joonson/syncnet_python (its download_model.sh)
SYNCNET_SOURCE = "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model"


@dataclass
class ClipResult:
    """One clip's evaluation."""

    name: str
    real: np.ndarray  # [N, S, S, 3] uint8
    generated: np.ndarray  # [N, S, S, 3] uint8
    psnr: np.ndarray  # [N] per frame
    ssim: np.ndarray  # [N] per frame
    ke: float  # KE over the clip
    metrics: dict = field(default_factory=dict)  # the numbers reported for the clip


def _clip_inputs(clip: ClipSource, max_frames: int | None) -> tuple[AudioFeatures, np.ndarray, np.ndarray]:
    frames = clip.frames if max_frames is None else min(clip.frames, max_frames)
    data = clip.window(0, frames)
    rows = np.asarray(data.features[:frames], np.float64).reshape(frames * FEATURE_ROWS_PER_FRAME,
                                                                  NUM_AUDIO_FEATURES)
    return AudioFeatures(rows), np.asarray(data.poses[:frames], np.float64), clip.frames_range(0, frames)


def evaluate_clip(wrapper: Audio2HeadWrapper, clip: ClipSource, true_poses: bool, batch_size: int = 8,
                  max_frames: int | None = None) -> ClipResult:
    """Generate the clip from its first frame and audio and compare (see the module doc)."""
    features, poses, real = _clip_inputs(clip, max_frames)
    source = image_to_tensor(real[0])
    if true_poses:
        curve = PoseCurve(values=poses, fps=float(FPS)).for_video(len(real))
    else:
        curve = wrapper.predict_poses(source, features)
    kp_source = wrapper.source_keypoints(source)
    kp_driving = wrapper.driving_keypoints(source, features, curve)
    generated = np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving, batch_size=batch_size)))
    kp_real = []
    for start in range(0, len(real), batch_size):
        chunk = torch.from_numpy(real[start:start + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        kp_real.append(wrapper.frame_keypoints(chunk))
    kp_real = Keypoints.cat(kp_real)
    psnr, ssim = psnr_per_frame(generated, real), ssim_per_frame(generated, real)
    ke = keypoint_error(kp_driving.value, kp_real.value)
    metrics = {"frames": len(real), "psnr": float(np.mean(np.minimum(psnr, 100.0))), "ssim": float(np.mean(ssim)),
               "ke": ke}
    return ClipResult(clip.name, real, generated, psnr, ssim, ke, metrics)


class LpipsMetric:
    """LPIPS through the `lpips` package (AlexNet backbone, its default), or the reason it is unavailable."""

    def __init__(self, device: torch.device):
        self.model, self.reason = None, None
        try:
            import lpips
        except ImportError:
            self.reason = ("the lpips package is not installed (pip install lpips; it brings torchvision, whose "
                           "AlexNet weights it downloads once into the torch hub cache)")
            return
        try:
            self.model = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
        except Exception as exc:  # offline: the backbone weights cannot be fetched
            self.reason = (f"LPIPS could not load its AlexNet weights ({type(exc).__name__}: {exc}); torchvision "
                           f"downloads alexnet-owt-7be5be79.pth into {hub_checkpoints()}: place it there")
        self.device = device

    def __call__(self, generated: np.ndarray, real: np.ndarray, batch: int = 16) -> float:
        values = []
        for start in range(0, len(real), batch):
            a = torch.from_numpy(generated[start:start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            b = torch.from_numpy(real[start:start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            with torch.no_grad():
                values.append(self.model(a.to(self.device), b.to(self.device)).flatten().cpu())
        return float(torch.cat(values).mean())


class InceptionFeatures:
    """FID's Inception-v3 pool features through `pytorch_fid`, or the reason they are unavailable."""

    def __init__(self, device: torch.device, weights: str | Path | None = None):
        self.model, self.reason, self.device = None, None, device
        try:
            from pytorch_fid import inception
        except ImportError:
            self.reason = (f"the pytorch-fid package is not installed (pip install pytorch-fid); its Inception "
                           f"weights {FID_WEIGHTS_FILE} come from {FID_WEIGHTS_URL}")
            return
        try:
            if weights is not None:  # a local file instead of pytorch-fid's download
                state = torch.load(weights, map_location="cpu", weights_only=True)
                inception.load_state_dict_from_url = lambda *args, **kwargs: state
            block = inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
            self.model = inception.InceptionV3([block]).to(device).eval()
        except Exception as exc:
            self.reason = (f"FID's Inception weights are unavailable ({type(exc).__name__}: {exc}): place "
                           f"{FID_WEIGHTS_FILE} (from {FID_WEIGHTS_URL}) in {hub_checkpoints()}, or pass it with "
                           "--inception-weights FILE")

    def __call__(self, frames: np.ndarray, batch: int = 16) -> np.ndarray:
        out = []
        for start in range(0, len(frames), batch):
            images = torch.from_numpy(frames[start:start + batch]).permute(0, 3, 1, 2).float() / 255.0
            with torch.no_grad():
                out.append(self.model(images.to(self.device))[0].flatten(1).cpu().numpy())
        return np.concatenate(out)


def evaluate_video(models: Audio2HeadModels, clips: list[ClipSource], device: torch.device, true_poses: bool,
                   batch_size: int = 8, max_frames: int | None = None, inception_weights: str | Path | None = None,
                   lpips_metric: bool = True, fid: bool = True,
                   on_clip: Callable[[ClipResult], None] | None = None) -> dict:
    """Evaluate every clip; returns {"clips": [per-clip metrics], "overall": {...}, "skipped": {metric: reason}}.
    `on_clip(result)` receives every clip's frames and per-frame numbers (for figures) as it is done."""
    wrapper = Audio2HeadWrapper(models, device=device, dtype="fp32")
    skipped = {}
    lpips_model = LpipsMetric(device) if lpips_metric else None
    if lpips_model is not None and lpips_model.model is None:
        skipped["lpips"] = lpips_model.reason
    inception = InceptionFeatures(device, inception_weights) if fid else None
    if inception is not None and inception.model is None:
        skipped["fid"] = inception.reason
    per_clip, real_features, fake_features = [], [], []
    for clip in clips:
        result = evaluate_clip(wrapper, clip, true_poses, batch_size, max_frames)
        if lpips_model is not None and lpips_model.model is not None:
            result.metrics["lpips"] = lpips_model(result.generated, result.real)
        if inception is not None and inception.model is not None:
            real_features.append(inception(result.real))
            fake_features.append(inception(result.generated))
        per_clip.append({"name": clip.name, **result.metrics})
        if on_clip is not None:
            on_clip(result)
    overall = summarize_clips(per_clip, ("psnr", "ssim", "ke", "lpips"))
    if real_features:
        mu_r, sigma_r = gaussian_statistics(np.concatenate(real_features))
        mu_g, sigma_g = gaussian_statistics(np.concatenate(fake_features))
        overall["fid"] = frechet_distance(mu_g, sigma_g, mu_r, sigma_r)
    return {"poses": "true" if true_poses else "predicted", "clips": per_clip, "overall": overall,
            "skipped": skipped}
