"""The paper's video evaluation (Sec. 5.1, Table 1-2) on prepared held-out clips: for each clip, generate from its
first frame and its audio as at inference (`inference.wrapper`, the same stages as `generate --crop none`), with
the clip's true poses ("GT-head" in Table 2) or N_H's predicted poses, and compare with the real frames.

Per clip and overall (frame-weighted): PSNR, SSIM, KE (N_M's keypoints against N_D's on the real frames), and LPIPS
when the `lpips` package and its AlexNet weights are available; FID over all frames when `pytorch-fid` and its
Inception weights are (`training.metric_networks`). Lip sync, SyncNet's LSE-D / LSE-C of the generated and of the
real frames against the clip's audio (`training.lip_sync`), when the user gives SyncNet's weights; overall they are
averaged per clip, unweighted, as Wav2Lip's scripts do. Missing optional metrics are reported as skipped with the
reason, never estimated.
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
from a2h_core.training.lip_sync import SYNCNET_FILE, SYNCNET_SOURCE, LipSyncMetric, load_syncnet
from a2h_core.training.metric_networks import InceptionFeatures, LpipsMetric
from a2h_core.training.video_metrics import (
    feature_frechet_distance,
    keypoint_error,
    psnr_per_frame,
    ssim_per_frame,
    summarize_clips,
)


@dataclass
class ClipResult:
    """One clip's evaluation."""

    name: str
    real: np.ndarray  # [N, S, S, 3] uint8
    generated: np.ndarray  # [N, S, S, 3] uint8
    psnr: np.ndarray  # [N] per frame
    ssim: np.ndarray  # [N] per frame
    ke: float  # KE over the clip
    features: np.ndarray  # [N * 4, 41] the clip's audio features (the generation's input; lip sync reads them)
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
    return ClipResult(clip.name, real, generated, psnr, ssim, ke, features.values, metrics)


def evaluate_video(models: Audio2HeadModels, clips: list[ClipSource], device: torch.device, true_poses: bool,
                   batch_size: int = 8, max_frames: int | None = None, inception_weights: str | Path | None = None,
                   lpips_metric: bool = True, fid: bool = True, lpips_backbone_weights: str | Path | None = None,
                   syncnet_weights: str | Path | None = None,
                   on_clip: Callable[[ClipResult], None] | None = None) -> dict:
    """Evaluate every clip; returns {"clips": [per-clip metrics], "overall": {...}, "skipped": {metric: reason}}.
    `on_clip(result)` receives every clip's frames and per-frame numbers (for figures) as it is done. Local weight
    files that are missing or do not fit raise `Audio2HeadError` before anything is generated."""
    wrapper = Audio2HeadWrapper(models, device=device, dtype="fp32")
    skipped = {}
    lpips_model = LpipsMetric(device, lpips_backbone_weights) if lpips_metric else None
    if lpips_model is not None and lpips_model.model is None:
        skipped["lpips"] = lpips_model.reason
    inception = InceptionFeatures(device, inception_weights) if fid else None
    if inception is not None and inception.model is None:
        skipped["fid"] = inception.reason
    lip_sync = LipSyncMetric(load_syncnet(syncnet_weights), device) if syncnet_weights is not None else None
    if lip_sync is None:
        skipped["lse"] = (f"SyncNet's weights were not given: pass --syncnet-weights {SYNCNET_FILE} (from "
                          f"{SYNCNET_SOURCE}, joonson/syncnet_python's download_model.sh; it cannot ship here)")
    per_clip, real_features, fake_features = [], [], []
    for clip in clips:
        result = evaluate_clip(wrapper, clip, true_poses, batch_size, max_frames)
        if lpips_model is not None and lpips_model.model is not None:
            result.metrics["lpips"] = float(lpips_model(result.generated, result.real).mean())
        if inception is not None and inception.model is not None:
            real_features.append(inception(result.real))
            fake_features.append(inception(result.generated))
        if lip_sync is not None and lip_sync.windows(result.generated, result.features) >= 1:
            for prefix, frames in (("", result.generated), ("real_", result.real)):
                score = lip_sync(frames, result.features)
                result.metrics.update({f"{prefix}lse_d": score.lse_d, f"{prefix}lse_c": score.lse_c,
                                       f"{prefix}av_offset": score.offset})
        per_clip.append({"name": clip.name, **result.metrics})
        if on_clip is not None:
            on_clip(result)
    overall = summarize_clips(per_clip, ("psnr", "ssim", "ke", "lpips"))
    if real_features and overall["frames"] >= 2:
        overall["fid"] = feature_frechet_distance(np.concatenate(fake_features), np.concatenate(real_features))
    elif real_features:
        skipped["fid"] = "FID needs at least 2 frames (a covariance); it is only meaningful over thousands"
    if lip_sync is not None:
        scored = [c for c in per_clip if "lse_d" in c]
        for key in ("lse_d", "lse_c", "real_lse_d", "real_lse_c"):
            overall[key] = float(np.mean([c[key] for c in scored])) if scored else None
        if len(scored) < len(per_clip):
            skipped["lse"] = (f"{len(per_clip) - len(scored)} clip(s) shorter than SyncNet's 6 frames were left out "
                              "of LSE")
    return {"poses": "true" if true_poses else "predicted", "clips": per_clip, "overall": overall,
            "skipped": skipped}
