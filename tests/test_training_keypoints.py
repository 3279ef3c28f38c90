"""Training N_D + N_I (FOMM's recipe, `train keypoints`) on synthetic talking-head clips at 128 px with reduced
widths: the reconstruction loss and the equivariance loss fall, a resumed run continues exactly, 2 processes train
like 1, the optional GAN terms run, and the perceptual network's weights come the documented way.

The perceptual loss uses a VGG-19 narrowed 8x with RANDOM weights (`--vgg-width-divisor 8`): ImageNet's weights
cannot be downloaded here, and random convolutional features still measure reconstruction. Training runs on one
CPU thread."""
import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from a2h_core.cli import main
from a2h_core.config import PerceptualConfig
from a2h_core.errors import Audio2HeadError
from a2h_core.io.weights import read_metadata, read_safetensors, save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.perceptual import VGGFeatures
from a2h_core.training.augmentation import augment_frames
from a2h_core.training.config import NO_AUGMENTATION, AugmentationConfig
from a2h_core.training.pretrained import load_vgg
from a2h_core.training.tps import RandomTPS
from a2h_devkit.synthetic_clips import small_frame_config
from a2h_devkit.torchrun import run_torchrun
from a2h_devkit.training_runs import whole_and_resumed

SMALL = ["--vgg-width-divisor", "8", "--data-workers", "0", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # module-wide: the learning checks run on one thread


def _train_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def test_keypoints_training_lowers_reconstruction_and_equivariance(frames_data, frames_config, tmp_path, capsys):
    """150 steps (batch 4, lr 1e-3): the mean perceptual (reconstruction) loss of the last 20 steps is at most 0.7
    of the first 10 steps' and the pixel L1 at most 0.75 of it; the keypoint equivariance loss at most half."""
    run = tmp_path / "keypoints"
    assert main(["train", "keypoints", "--data", str(frames_data), "--out", str(run), "--config", str(frames_config),
                 *SMALL, "--steps", "150", "--batch-size", "4", "--lr", "1e-3", "--log-every", "10",
                 "--val-every", "150", "--checkpoint-every", "150"]) == 0
    records = _train_records(run)

    def mean(key, part):
        return float(np.mean([r[key] for r in part]))

    first, last = records[:1], records[-2:]
    ratios = {key: mean(key, last) / mean(key, first) for key in ("perceptual", "l1", "equivariance_value",
                                                                   "equivariance_jacobian")}
    with capsys.disabled():
        print(f"\nN_D+N_I on synthetic clips, last/first: {({k: round(v, 3) for k, v in ratios.items()})}; first "
              f"perceptual {mean('perceptual', first):.2f}, last {mean('perceptual', last):.2f}")
    assert ratios["perceptual"] <= 0.7
    assert ratios["l1"] <= 0.75
    assert ratios["equivariance_value"] <= 0.5
    metadata = read_metadata(run / "best.safetensors")
    assert metadata["trained"] == "kp_detector,generator"
    assert json.loads(metadata["training"])["task"] == "keypoints"
    assert len(list((run / "plots").glob("step0000150_*.png"))) == 2


def test_keypoints_resume_continues_exactly(frames_data, frames_config, tmp_path):
    """2 steps, stop, resume to 4 == 4 steps uninterrupted, bit for bit (weights and Adam moments), with FOMM's
    recipe (augmentation, multistep rate): 8 clips x 1 repeat in batches of 4 make 2 steps an epoch, so the rate
    drops x0.1 after epoch 1, at the step the run resumes from."""
    common = ["--data", str(frames_data), "--config", str(frames_config), *SMALL, "--batch-size", "4",
              "--lr", "1e-3", "--val-every", "2", "--checkpoint-every", "2", "--repeats", "1", "--lr-milestones", "1",
              "--log-every", "1"]
    whole, split = whole_and_resumed("keypoints", common, 4, tmp_path)
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    states = [torch.load(tmp_path / name / "state" / "last.pt", weights_only=False) for name in ("whole", "split")]
    moments = [s["optimizers"]["generator"]["state"][0]["exp_avg"] for s in states]
    assert torch.equal(*moments)
    for run in ("whole", "split"):
        log = [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        assert log[0] == {"kind": "start", "step": 0, "batches_per_epoch": 2, "world_size": 1}
        assert [r["lr"] for r in _train_records(tmp_path / run)] == pytest.approx([1e-3, 1e-4, 1e-4, 1e-4])
    assert states[0]["optimizers"]["generator"]["param_groups"][0]["betas"] == (0.5, 0.999)  # FOMM's Adam
    torch.manual_seed(0)
    assert not torch.equal(whole["generator.final.weight"],
                           Audio2HeadModels(small_frame_config()).generator.final.weight)


def test_keypoints_two_processes_match_one_process(frames_data, tmp_path):
    """torchrun with 2 CPU processes (gloo), global batch 4, matches 1 process with batch 4: the per-step losses to
    1e-4 relative (the random equivariance transforms are drawn with the samples, so they do not depend on the
    split) and at least 95 % of the weights to 1e-5 (see tests/test_training.py on why not all)."""
    init = tmp_path / "init.safetensors"
    torch.manual_seed(3)
    save_models(Audio2HeadModels(small_frame_config()), init)  # --init: batch norm frozen (no SyncBN on the CPU)
    common = ["--data", str(frames_data), "--init", str(init), *SMALL, "--batch-size", "4", "--lr", "1e-3",
              "--steps", "3", "--log-every", "1", "--val-every", "3"]
    assert main(["train", "keypoints", "--out", str(tmp_path / "one"), *common]) == 0
    result = run_torchrun(["train", "keypoints", "--out", str(tmp_path / "two"), *common])
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = ([r["loss"] for r in _train_records(tmp_path / run)] for run in ("one", "two"))
    assert len(one) == len(two) == 3
    np.testing.assert_allclose(two, one, rtol=1e-4)
    a, _ = read_safetensors(tmp_path / "one" / "last.safetensors")
    b, metadata = read_safetensors(tmp_path / "two" / "last.safetensors")
    assert json.loads(metadata["training"])["world_size"] == 2
    trained = [k for k in a if k.startswith(("kp_detector.", "generator.")) and a[k].is_floating_point()]
    difference = torch.cat([(a[k] - b[k]).abs().flatten() for k in trained])
    assert float((difference <= 1e-5).float().mean()) >= 0.95
    initial, _ = read_safetensors(init)
    moved = torch.cat([(a[k] - initial[k]).abs().flatten() for k in trained])
    assert float((moved > 1e-5).float().mean()) > 0.5


def test_optional_gan_terms_train_a_discriminator(frames_data, frames_config, tmp_path):
    run = tmp_path / "gan"
    assert main(["train", "keypoints", "--data", str(frames_data), "--out", str(run), "--config", str(frames_config),
                 *SMALL, "--steps", "2", "--batch-size", "2", "--gan-weight", "1", "--log-every", "1",
                 "--val-every", "2"]) == 0
    records = _train_records(run)
    assert all(np.isfinite([r["gan_g"], r["gan_d"], r["feature_matching"]]).all() for r in records)
    state = torch.load(run / "state" / "last.pt", weights_only=False)
    assert "discriminator" in state["networks"]


def test_vgg_weights_offline_message_and_local_file(tmp_path, monkeypatch):
    """Offline, the message names torchvision's file and the cache folder; --vgg-weights reads a local file with
    torchvision's `features.*` keys (random values here: the real file cannot be downloaded in the tests)."""
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(Audio2HeadError) as error:
        load_vgg(PerceptualConfig())
    assert "vgg19-dcbb9e9d.pth" in str(error.value) and "checkpoints" in str(error.value)
    assert "--vgg-weights" in str(error.value)
    full = VGGFeatures(PerceptualConfig())
    # torchvision's layout: conv i of VGG-19 at features.<index>; relu5_1 is index 29 (the last conv kept is 28)
    assert full.state_dict()["features.0.weight"].shape == (64, 3, 3, 3)
    assert full.state_dict()["features.28.weight"].shape == (512, 512, 3, 3)
    state = {f"features.{k}": torch.randn_like(v) for k, v in full.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the rest of torchvision's file is ignored
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = load_vgg(PerceptualConfig(), tmp_path / "vgg19.pth")
    assert torch.equal(loaded.features[28].weight, state["features.28.weight"])
    assert not any(p.requires_grad for p in loaded.parameters())


def test_tps_jacobian_matches_finite_differences():
    transform = RandomTPS(3, sigma_affine=0.05, sigma_tps=0.05, points=5, generator=torch.Generator().manual_seed(1))
    transform.theta, transform.control_params = transform.theta.double(), transform.control_params.double()
    transform.control_points = transform.control_points.double()
    z = torch.rand(3, 7, 2, dtype=torch.float64) * 1.8 - 0.9
    analytic = transform.jacobian(z)
    step = 1e-6
    columns = []
    for axis in range(2):
        offset = torch.zeros(2, dtype=torch.float64)
        offset[axis] = step
        columns.append((transform.warp_coordinates(z + offset) - transform.warp_coordinates(z - offset)) / (2 * step))
    numeric = torch.stack(columns, dim=-1)
    assert torch.allclose(analytic, numeric, atol=1e-7)
    affine = RandomTPS(2, sigma_affine=0.1, sigma_tps=0.0, generator=torch.Generator().manual_seed(2))
    jacobian = affine.jacobian(torch.rand(2, 4, 2) * 2 - 1)
    assert torch.allclose(jacobian, affine.theta[:, None, :, :2].expand_as(jacobian), atol=1e-6)


def test_augmentation_is_one_draw_for_both_frames():
    """FOMM's pair augmentation: the same flip and colour jitter on source and driving (identical frames stay
    identical), a time flip swaps them, a horizontal flip only when time is not flipped (probabilities 1/2 and 1/4),
    and all off leaves the frames as they are."""
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    other = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    jitter = AugmentationConfig(horizontal_flip=True, time_flip=False)
    changed = 0
    for seed in range(20):
        a, b = augment_frames([image, image.copy()], jitter, np.random.default_rng(seed))
        assert np.array_equal(a, b) and a.shape == image.shape and a.dtype == np.uint8
        changed += not (np.array_equal(a, image) or np.array_equal(a, image[:, ::-1]))
    assert changed >= 18  # colour jitter moved the pixels
    flips = AugmentationConfig(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    seen = {"time": 0, "mirror": 0, "none": 0}
    for seed in range(400):
        a, b = augment_frames([image, other], flips, np.random.default_rng(seed))
        if np.array_equal(a, other) and np.array_equal(b, image):
            seen["time"] += 1
        elif np.array_equal(a, image[:, ::-1]) and np.array_equal(b, other[:, ::-1]):
            seen["mirror"] += 1
        else:
            assert np.array_equal(a, image) and np.array_equal(b, other)
            seen["none"] += 1
    assert 160 <= seen["time"] <= 240 and 60 <= seen["mirror"] <= 140 and 60 <= seen["none"] <= 140, seen
    a, b = augment_frames([image, other], NO_AUGMENTATION, np.random.default_rng(0))
    assert np.array_equal(a, image) and np.array_equal(b, other)
    hue_only = AugmentationConfig(False, False, 0.0, 0.0, 0.0, 0.1)
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    turned, _ = augment_frames([red, red], hue_only, np.random.default_rng(3))
    assert turned[0, 0, 0] == 255 and turned[0, 0, 1] + turned[0, 0, 2] > 0  # pure red rotated towards green/blue
