"""`prepare` (clips in, shards out), the training windows, losses, metrics and the discriminator, on small inputs."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a2h_core.cli import main
from a2h_core.config import ModelConfig, PoseDiscriminatorConfig, model_config_from_dict
from a2h_core.io.weights import load_models, read_metadata, save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.pose_discriminator import PoseSequenceDiscriminator
from a2h_core.pose import PoseCurve, save_pose_curve
from a2h_core.training.datasets import MemoryClip, PoseWindows, window_sample
from a2h_core.training.losses import lsgan_discriminator_loss, lsgan_generator_loss, ssim_loss
from a2h_core.training.metrics import clip_metrics, hs_substitute, motion_correlation
from a2h_core.training.shards import TrainingData, read_window
from a2h_devkit.synthetic_clips import synthetic_clip, write_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two good clips (one at 30 fps in MP4/AAC) and five that must be skipped, each for its own reason."""
    root = tmp_path_factory.mktemp("clips")
    write_clip(synthetic_clip(3.0, seed=1), root / "train" / "good.mkv")
    write_clip(synthetic_clip(3.0, seed=2, fps=30), root / "val" / "thirty_fps.mp4")
    write_clip(synthetic_clip(3.0, seed=3), root / "no_curve.mkv", with_curve=False)
    write_clip(synthetic_clip(0.6, seed=4), root / "too_short.mkv")
    long_curve = write_clip(synthetic_clip(3.0, seed=5), root / "wrong_curve.mkv")
    save_pose_curve(PoseCurve(np.repeat(synthetic_clip(3.0, seed=5).poses.values, 2, 0)),
                    long_curve.with_name("wrong_curve.pose.json"))
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 50)
    save_pose_curve(synthetic_clip(3.0, seed=6).poses, root / "broken.pose.json")
    silent = write_clip(synthetic_clip(3.0, seed=7), root / "silent.mkv")
    import av

    with av.open(str(silent)) as source, av.open(str(root / "no_audio.mkv"), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    silent.unlink()
    silent.with_name("silent.pose.json").rename(root / "no_audio.pose.json")
    return root


def test_prepare_skips_and_reports_broken_clips_then_resumes(clips, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["prepare", str(clips), "--out", str(out), "--image-size", "64", "--val-fraction", "0"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert {c["name"]: c["split"] for c in manifest["clips"]} == {"train/good.mkv": "train",
                                                                  "val/thirty_fps.mp4": "val"}
    reasons = {s["name"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"broken.mp4", "no_audio.mkv", "no_curve.mkv", "too_short.mkv", "wrong_curve.mkv"}
    assert "no_curve.pose.json" in reasons["no_curve.mkv"]
    assert "too short" in reasons["too_short.mkv"]
    assert "wrong_curve.pose.json" in reasons["wrong_curve.mkv"] and "150 poses" in reasons["wrong_curve.mkv"]
    assert "audio" in reasons["no_audio.mkv"]
    for name in reasons:
        assert name in printed
    assert "prepared 2, already done 0, failed 5" in printed
    good = next(c for c in manifest["clips"] if c["name"] == "train/good.mkv")
    assert good["frames"] >= 73 and len(good["source_sha256"]) == 64
    thirty = next(c for c in manifest["clips"] if c["name"] == "val/thirty_fps.mp4")
    assert thirty["source_fps"] == 30 and 70 <= thirty["frames"] <= 75  # resampled to 25 fps
    stamp = (out / good["shard"]).stat().st_mtime_ns
    assert main(["prepare", str(clips), "--out", str(out), "--image-size", "64", "--val-fraction", "0"]) == 0
    assert "prepared 0, already done 2, failed 5" in capsys.readouterr().out
    assert (out / good["shard"]).stat().st_mtime_ns == stamp
    assert not list(out.rglob("*.partial"))


def test_shards_hold_aligned_frames_poses_and_features(clips, tmp_path):
    out = tmp_path / "data"
    main(["prepare", str(clips), "--out", str(out), "--image-size", "64"])
    data = TrainingData.open(out)
    record = next(c for c in data.clips if c.name == "train/good.mkv")
    original = synthetic_clip(3.0, seed=1)
    window = read_window(data.path(record), 0, record.frames, record.frames)
    assert window.features.shape == (record.frames, 4, 41) and window.features.dtype == np.float32
    np.testing.assert_allclose(window.poses, original.poses.values[: record.frames], rtol=1e-6, atol=1e-4)
    # Frame k of the shard is frame k of the clip (after the video codec), not a neighbour: over the clip, it is
    # far closer to frame k than to frame k +- 2 (the head rests at times, so single frames can tie).
    stored = np.stack([read_window(data.path(record), k, 1, record.frames).image for k in range(record.frames)])
    stored = stored.astype(int)
    count = record.frames - 2
    same = np.abs(stored[2:count] - original.frames[2:count]).mean()
    later = np.abs(stored[2:count] - original.frames[4:count + 2]).mean()
    earlier = np.abs(stored[2:count] - original.frames[0:count - 2]).mean()
    assert same < 0.6 * min(later, earlier)


def test_prepare_errors_name_the_problem(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no videos" in capsys.readouterr().err


def test_short_clips_are_padded_with_a_mask_never_dropped():
    clip = MemoryClip("short", np.ones((20, 4, 41), np.float32), np.zeros((20, 6), np.float32),
                      np.zeros((1, 8, 8, 3), np.uint8))
    sample = window_sample(clip, 0, 64)
    assert sample["audio"].shape == (64, 4, 41) and sample["poses"].shape == (65, 6)
    assert sample["mask"].sum() == 20 and sample["mask"][:20].all()
    assert sample["audio"][19:].abs().sum() == 0 and sample["audio"][:19].abs().sum() > 0
    dataset = PoseWindows([clip], 64, min_length=8)
    assert len(dataset) == 8  # a batch can be filled from one short clip


def test_ssim_loss_eq3():
    x = torch.sin(torch.linspace(0, 6, 100)).repeat(2, 6, 1) * 0.5
    assert float(ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(ssim_loss(x, -x)) > 1.0  # anti-correlated: SSIM below 0
    noisy = x + 0.2 * torch.randn_like(x)
    assert 0.0 < float(ssim_loss(noisy, x)) < float(ssim_loss(torch.zeros_like(x), x))
    mask = torch.ones(2, 100)
    mask[:, 60:] = 0
    garbage = x.clone()
    garbage[..., 60:] = 5.0
    assert float(ssim_loss(garbage, x, mask)) == pytest.approx(0.0, abs=1e-6)  # padding is left out


def test_lsgan_eq4():
    ones, zeros = torch.ones(3, 1, 7), torch.zeros(3, 1, 7)
    assert float(lsgan_generator_loss(ones)) == 0.0 and float(lsgan_generator_loss(zeros)) == 1.0
    assert float(lsgan_discriminator_loss(ones, zeros)) == 0.0
    assert float(lsgan_discriminator_loss(zeros, ones)) == 1.0


def test_discriminator_scores_temporal_patches():
    published = PoseSequenceDiscriminator(PoseDiscriminatorConfig())
    assert published(torch.randn(2, 6, 257)).shape == (2, 1, 30)
    with torch.device("meta"):
        assert PoseSequenceDiscriminator(PoseDiscriminatorConfig())(torch.empty(64, 6, 257)).shape == (64, 1, 30)
    reduced = PoseSequenceDiscriminator(PoseDiscriminatorConfig.reduced())
    one = reduced(torch.randn(1, 6, 65))
    pair = reduced(torch.cat([torch.randn(1, 6, 65), torch.zeros(1, 6, 65)]))
    assert one.shape == (1, 1, 6) and pair.shape == (2, 1, 6)


def test_metrics():
    t = np.linspace(0, 8, 200)
    true = np.stack([0.1 * np.sin(t + d) for d in range(3)] + [20 * np.sin(2 * t + d) + 280 for d in range(3)], 1)
    metrics = clip_metrics(true, true)
    assert metrics["he"] == 0 and metrics["correlation"] == pytest.approx(1.0) and metrics["hs_star"] == 1.0
    still = np.repeat(true.mean(0, keepdims=True), 200, 0)
    assert motion_correlation(still, true) == 0.0
    assert hs_substitute(still, true) < 0.5
    assert clip_metrics(still, true)["he"] > 0


def test_custom_config_weights_load_with_their_config(tmp_path):
    """A model trained with --config FILE.json writes its config into the weights; the loader rebuilds it."""
    document = json.loads(json.dumps(__import__("dataclasses").asdict(ModelConfig.reduced())))
    document["pose_predictor"]["embedding_dim"] = document["pose_predictor"]["lstm_hidden"] = 24
    config = model_config_from_dict(document)
    path = save_models(Audio2HeadModels(config), tmp_path / "custom.safetensors", {"note": "x"})
    assert read_metadata(path)["config"] == "custom"
    assert load_models(path).config == config
    with pytest.raises(ValueError, match="unknown"):
        model_config_from_dict({"pose_predictor": {"width": 3}})


def test_prepare_fits_the_head_poses_of_a_clip_without_a_curve(tmp_path, capsys):
    """A clip that comes without a curve gets the head poses fitted to its frames (issue: pose from video)."""
    from a2h_core.face import weights as face_weights
    from a2h_core.training.shards import read_window
    from a2h_devkit.face_scenes import rolling_video
    from a2h_devkit.synthetic_clips import SyntheticClip, synthetic_speech

    if face_weights.find_mtcnn() is None:
        pytest.skip("the 'mtcnn' package (the offline detector's weights) is not installed")
    frames, roll = rolling_video(frames=40, size=192, scale=0.45)
    audio, drive = synthetic_speech(40 / 25, seed=11)
    placeholder = PoseCurve.still(num_poses=40)  # not written: with_curve=False
    write_clip(SyntheticClip(frames, audio, placeholder, drive), tmp_path / "clips" / "train" / "astronaut.mkv",
               with_curve=False)
    out = tmp_path / "data"
    assert main(["prepare", str(tmp_path / "clips"), "--out", str(out), "--image-size", "128",
                 "--face-detector", "mtcnn"]) == 0
    capsys.readouterr()
    (clip,) = json.loads((out / "manifest.json").read_text())["clips"]
    count = clip["frames"]  # the shortest of video and audio: 39 or 40
    assert clip["pose_source"] == "fitted to the video (mtcnn face detector)" and count >= 38
    poses = read_window(out / clip["shard"], 0, count, count).poses
    fitted_roll = PoseCurve(poses.astype(np.float64)).to_ypr()[:, 2]
    assert np.corrcoef(fitted_roll, roll[:count])[0, 1] >= 0.9  # the known roll of the rotated photograph
