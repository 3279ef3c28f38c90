"""`evaluate video` and its metrics: PSNR and SSIM against scikit-image (within 1e-4), KE and the Fréchet distance
against hand computations, and the command end to end on synthetic clips with random reduced weights: JSON and
figures written, optional metrics skipped with their reason, or all computed from local random weight files
(the metric networks themselves: test_metric_networks.py and test_lip_sync.py)."""
import json

import numpy as np
import pytest
import torch

from a2h_core.cli import main
from a2h_core.io.weights import save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.training.video_metrics import (
    feature_frechet_distance,
    frechet_distance,
    gaussian_statistics,
    keypoint_error,
    psnr_per_frame,
    ssim_per_frame,
)
from a2h_devkit.metric_weights import random_alexnet_file, random_fid_inception_file, random_syncnet_file
from a2h_devkit.synthetic_clips import small_frame_config

skimage_metrics = pytest.importorskip("skimage.metrics")


def _frames(seed: int, shape=(3, 48, 40, 3)):
    rng = np.random.default_rng(seed)
    real = rng.integers(0, 256, shape, dtype=np.uint8)
    noisy = np.clip(real.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    return real, noisy


def test_psnr_and_ssim_match_scikit_image():
    real, generated = _frames(0)
    ours_psnr, ours_ssim = psnr_per_frame(generated, real), ssim_per_frame(generated, real)
    for i in range(len(real)):
        reference_psnr = skimage_metrics.peak_signal_noise_ratio(real[i], generated[i], data_range=255)
        reference_ssim = skimage_metrics.structural_similarity(
            real[i], generated[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
            channel_axis=-1)
        assert abs(ours_psnr[i] - reference_psnr) < 1e-4
        assert abs(ours_ssim[i] - reference_ssim) < 1e-4
    assert np.isinf(psnr_per_frame(real, real)).all() and np.allclose(ssim_per_frame(real, real), 1.0)


def test_keypoint_error_and_frechet_distance_by_hand():
    a = np.zeros((2, 3, 2))
    b = a.copy()
    b[0, 1] = (0.3, -0.1)  # |0.3| + |-0.1| = 0.4 over 2 frames x 3 keypoints x 2 coordinates = 12 entries
    b[1, 2, 0] = 0.2
    assert keypoint_error(torch.tensor(b), a) == pytest.approx(0.6 / 12, abs=1e-12)
    # 1-D Gaussians: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == \
        pytest.approx(4 + 4 + 9 - 2 * 6, abs=1e-9)
    diagonal = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.ones(2), np.diag([9.0, 16.0]))
    assert diagonal == pytest.approx(2 + (1 + 9 - 6) + (4 + 16 - 16), abs=1e-9)
    # Fewer samples than dimensions (FID on a short evaluation): the sample form equals the covariance form.
    rng = np.random.default_rng(0)
    generated, real = rng.normal(0.3, 1.2, (12, 96)), rng.normal(0, 1, (9, 96))
    assert feature_frechet_distance(generated, real) == pytest.approx(
        frechet_distance(*gaussian_statistics(generated), *gaussian_statistics(real)), rel=1e-6)
    many = rng.normal(0, 1, (120, 8))
    assert feature_frechet_distance(many, many[::-1] * 2) == pytest.approx(
        frechet_distance(*gaussian_statistics(many), *gaussian_statistics(many[::-1] * 2)), rel=1e-12)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "small128.safetensors"
    torch.manual_seed(0)
    save_models(Audio2HeadModels(small_frame_config()), path)
    return path


def test_evaluate_video_end_to_end(frames_data, random_weights, tmp_path, offline_torch_hub, capsys):
    out = tmp_path / "video.json"
    assert main(["evaluate", "video", "--weights", str(random_weights), "--data", str(frames_data), "--json",
                 str(out), "--max-frames", "24", "--true-poses"]) == 0
    report = json.loads(out.read_text())
    assert report["poses"] == "true" and report["image_size"] == 128
    assert [c["frames"] for c in report["clips"]] == [24, 24]
    overall = report["overall"]
    assert overall["frames"] == 48
    assert 0 < overall["psnr"] < 100 and -1 <= overall["ssim"] <= 1 and overall["ke"] >= 0
    assert set(report["skipped"]) == {"lpips", "fid", "lse"}  # offline, no weights cached, no SyncNet file
    assert "alexnet-owt-7be5be79.pth" in report["skipped"]["lpips"] or "pip install" in report["skipped"]["lpips"]
    assert "pt_inception" in report["skipped"]["fid"] or "pip install" in report["skipped"]["fid"]
    figures = sorted((tmp_path / "video_figures").glob("*.png"))
    assert len(figures) == 4  # per clip: a real/generated strip and a per-frame PSNR plot
    printed = capsys.readouterr().out
    assert "LSE skipped" in printed and "syncnet_v2.model" in printed
    assert main(["evaluate", "video", "--weights", str(random_weights), "--data", str(frames_data), "--max-clips",
                 "1", "--max-frames", "8", "--no-fid"]) == 0  # predicted poses
    assert "predicted poses" in capsys.readouterr().out


def test_evaluate_video_with_every_optional_metric(frames_data, random_weights, tmp_path, offline_torch_hub, capsys):
    """LPIPS, FID and lip sync from local RANDOM weight files (a2h_devkit.metric_weights) through the real packages:
    every metric is computed, none skipped. The numbers mean nothing with random weights; the plumbing is checked."""
    pytest.importorskip("lpips")
    pytest.importorskip("pytorch_fid")
    alexnet = random_alexnet_file(tmp_path / "alexnet-owt-7be5be79.pth")
    inception = random_fid_inception_file(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    syncnet = random_syncnet_file(tmp_path / "syncnet_v2.model")
    out = tmp_path / "all.json"
    assert main(["evaluate", "video", "--weights", str(random_weights), "--data", str(frames_data), "--json", str(out),
                 "--max-clips", "1", "--max-frames", "6", "--true-poses", "--lpips-backbone-weights", str(alexnet),
                 "--inception-weights", str(inception), "--syncnet-weights", str(syncnet)]) == 0
    report = json.loads(out.read_text())
    assert report["skipped"] == {}
    clip, overall = report["clips"][0], report["overall"]
    assert clip["lpips"] > 0 and overall["lpips"] == pytest.approx(clip["lpips"])
    assert np.isfinite(overall["fid"]) and overall["fid"] > 0
    for key in ("lse_d", "lse_c", "real_lse_d", "real_lse_c"):
        assert np.isfinite(overall[key]) and overall[key] == pytest.approx(clip[key])
    assert isinstance(clip["av_offset"], int) and isinstance(clip["real_av_offset"], int)
    assert "LSE_D" in capsys.readouterr().out
    assert main(["evaluate", "video", "--weights", str(random_weights), "--data", str(frames_data), "--no-lpips",
                 "--no-fid", "--syncnet-weights", str(tmp_path / "absent.model")]) == 2
    assert "--syncnet-weights" in capsys.readouterr().err
