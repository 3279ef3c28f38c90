"""The four Audio2Head networks: published state-dict layout, and behaviour against independently derived values.

Forward passes use `ModelConfig.reduced()`; the published layout is checked on the meta device (no memory, no
forward pass) against tests/data/published_state_dict_shapes.json, generated once from the original code with
`tools/compare_networks.py --write-manifest`. Side-by-side numbers against the original come from that tool.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a2h_core.config import POSE_MAX, POSE_MIN, ModelConfig
from a2h_core.modules import DenseMotionNetwork, denormalize_poses, normalize_poses
from a2h_core.modules.blocks import AntiAliasDownsample, keypoints_from_heatmaps, make_coordinate_grid
from a2h_core.modules.generator import warp
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.random_weights import randomize_batch_norm, randomize_jacobian_head

MANIFEST = Path(__file__).parent / "data" / "published_state_dict_shapes.json"


@pytest.fixture(scope="module")
def models() -> Audio2HeadModels:
    """Reduced widths with random batch norm (no layer an identity) and non-trivial Jacobian heads."""
    torch.manual_seed(0)
    m = Audio2HeadModels(ModelConfig.reduced())
    generator = torch.Generator().manual_seed(0)
    randomize_batch_norm(m, generator)
    for network in (m.kp_detector, m.audio2kp):
        randomize_jacobian_head(network, generator, std=0.01)
    return m


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(1, 3, 256, 256)


# --- published layout -------------------------------------------------------------------------------------------

def test_published_state_dict_matches_original_manifest():
    expected = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        ours = Audio2HeadModels(ModelConfig.published())
    got = {key: list(value.shape) for key, value in ours.state_dict().items()}
    assert sorted(set(expected) - set(got)) == [], "keys missing from our networks"
    assert sorted(set(got) - set(expected)) == [], "keys the published checkpoint does not have"
    mismatched = {key: (got[key], shape) for key, shape in expected.items() if got[key] != shape}
    assert mismatched == {}
    assert {key.split(".")[0] for key in got} == {"audio2pose", "audio2kp", "kp_detector", "generator"}


def test_strict_load_of_published_shapes_and_rejection_of_wrong_ones():
    expected = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        ours = Audio2HeadModels(ModelConfig.published())
        state = {key: torch.empty(shape) for key, shape in expected.items()}
    ours.load_state_dict(state, strict=True)
    state["generator.final.weight"] = torch.empty(3, 64, 5, 5, device="meta")
    with pytest.raises(RuntimeError, match=r"generator.final.weight"):
        ours.load_state_dict(state, strict=True)


def test_models_are_built_in_eval_mode():
    m = Audio2HeadModels(ModelConfig.reduced())
    assert not any(module.training for module in m.modules())


def test_eval_batch_norm_uses_running_statistics(models, image):
    # With batch statistics, each image's output would depend on the other images of the batch.
    batch = torch.cat([image, torch.rand(1, 3, 256, 256)])
    with torch.no_grad():
        together = models.kp_detector(batch)
        alone = models.kp_detector(image)
    torch.testing.assert_close(together.value[:1], alone.value, rtol=0, atol=1e-6)
    # ...and the running statistics are really applied: x -> (x - mean) / sqrt(var + eps) * w + b.
    norm = models.generator.first.norm
    x = torch.randn(2, norm.num_features, 4, 4)
    manual = ((x - norm.running_mean[:, None, None]) / torch.sqrt(norm.running_var[:, None, None] + norm.eps)
              * norm.weight[:, None, None] + norm.bias[:, None, None])
    torch.testing.assert_close(norm(x), manual, rtol=1e-5, atol=1e-5)


# --- Keypoints --------------------------------------------------------------------------------------------------

def test_keypoints_container():
    kp = Keypoints(torch.rand(5, 10, 2), torch.rand(5, 10, 2, 2))
    assert len(kp) == 5
    assert len(kp[1:3]) == 2 and len(kp[2]) == 1 and len(kp[-1]) == 1
    torch.testing.assert_close(kp[-1].value, kp.value[4:])
    both = Keypoints.cat([kp[:2], kp[2:]])
    assert torch.equal(both.value, kp.value) and torch.equal(both.jacobian, kp.jacobian)
    assert kp.to(dtype=torch.float64).jacobian.dtype == torch.float64
    with pytest.raises(ValueError):
        Keypoints(torch.rand(5, 10, 2), torch.rand(5, 9, 2, 2))
    with pytest.raises(ValueError):
        Keypoints.cat([kp, Keypoints(torch.rand(1, 10, 2))])


# --- shared blocks ----------------------------------------------------------------------------------------------

def test_coordinate_grid_spans_minus_one_to_one_inclusive():
    grid = make_coordinate_grid(5, 7, torch.empty(0))
    assert grid.shape == (5, 7, 2)
    torch.testing.assert_close(grid[0, :, 0], torch.linspace(-1, 1, 7), rtol=0, atol=1e-6)
    torch.testing.assert_close(grid[:, 0, 1], torch.linspace(-1, 1, 5), rtol=0, atol=1e-6)
    assert torch.equal(grid[:, 3, 0], torch.zeros(5)) and torch.equal(grid[2, :, 1], torch.zeros(7))
    assert grid[0, 0].tolist() == [-1.0, -1.0] and grid[-1, -1].tolist() == [1.0, 1.0]


def test_single_gaussian_heatmap_gives_its_centre_and_weighted_jacobian():
    h = w = 58
    grid = make_coordinate_grid(h, w, torch.empty(0))
    centres = [(20, 31), (40, 12)]  # (row, col) well inside the map
    logits = []
    for row, col in centres:
        d2 = ((grid - grid[row, col]) ** 2).sum(-1)
        logits.append(-d2 / (2 * 0.01) * 0.1)  # after the 0.1 temperature: a Gaussian of variance 0.01
    prediction = torch.stack(logits)[None]  # [1, 2, h, w]
    jacobian_map = torch.tensor([1.5, -0.25, 0.5, 2.0]).repeat(2)[None, :, None, None].expand(1, 8, h, w)
    kp = keypoints_from_heatmaps(prediction, jacobian_map, temperature=0.1)
    expected = torch.stack([grid[row, col] for row, col in centres])[None]
    torch.testing.assert_close(kp.value, expected, rtol=0, atol=1e-5)
    # The heatmap sums to one, so a constant Jacobian map comes back unchanged.
    torch.testing.assert_close(kp.jacobian, torch.tensor([[1.5, -0.25], [0.5, 2.0]]).expand(1, 2, 2, 2),
                               rtol=0, atol=1e-5)


def test_anti_alias_kernel_is_the_stated_gaussian():
    down = AntiAliasDownsample(3, 0.25)
    kernel = down.weight
    assert kernel.shape == (3, 1, 13, 13)
    x = np.arange(13) - 6.0
    g = np.exp(-x**2 / (2 * 1.5**2))
    expected = np.outer(g, g) / np.outer(g, g).sum()
    np.testing.assert_allclose(kernel[1, 0].numpy(), expected, rtol=1e-6, atol=1e-9)
    assert abs(kernel[0, 0].sum().item() - 1) < 1e-6


def test_anti_alias_downsampling_blurs_with_zero_padding_then_keeps_every_fourth_pixel():
    from scipy.signal import correlate2d

    torch.manual_seed(2)
    image = torch.rand(1, 2, 32, 40)
    down = AntiAliasDownsample(2, 0.25)
    out = down(image)
    assert out.shape == (1, 2, 8, 10)
    kernel = down.weight[0, 0].double().numpy()
    for channel in range(2):
        blurred = correlate2d(image[0, channel].double().numpy(), kernel, mode="same", boundary="fill")
        np.testing.assert_allclose(out[0, channel].numpy(), blurred[::4, ::4], rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        AntiAliasDownsample(3, 0.3)


def test_identity_warp_of_a_constant_image_keeps_the_interior_and_halves_the_border():
    # grid [-1, 1] inclusive + align_corners=False samples half a pixel outside at the border (zero padding).
    features = torch.full((1, 2, 16, 16), 3.0)
    identity = make_coordinate_grid(16, 16, features)[None].expand(2, 16, 16, 2)
    out = warp(features, identity)
    assert out.shape == (2, 2, 16, 16)
    torch.testing.assert_close(out[:, :, 1:-1, 1:-1], torch.full((2, 2, 14, 14), 3.0))
    torch.testing.assert_close(out[:, :, 0, 1:-1], torch.full((2, 2, 14), 1.5))
    torch.testing.assert_close(out[:, :, 0, 0], torch.full((2, 2), 0.75))


# --- dense motion -----------------------------------------------------------------------------------------------

def _dense_motion() -> DenseMotionNetwork:
    return DenseMotionNetwork(ModelConfig.reduced()).eval()


def test_identical_keypoints_give_identity_sparse_motions():
    torch.manual_seed(3)
    value = torch.rand(1, 10, 2) * 2 - 1
    jacobian = torch.eye(2) + 0.3 * torch.randn(1, 10, 2, 2)
    kp = Keypoints(value, jacobian)
    sparse = _dense_motion().sparse_motions(16, 16, kp, Keypoints.cat([kp, kp]))
    assert sparse.shape == (2, 11, 16, 16, 2)
    identity = make_coordinate_grid(16, 16, value).expand(2, 11, 16, 16, 2)
    torch.testing.assert_close(sparse, identity, rtol=0, atol=1e-5)


def test_sparse_motion_is_source_jacobian_times_inverse_driving_jacobian():
    torch.manual_seed(4)
    src = Keypoints(torch.rand(1, 10, 2) - 0.5, torch.eye(2) + 0.3 * torch.randn(1, 10, 2, 2))
    drv = Keypoints(torch.rand(3, 10, 2) - 0.5, torch.eye(2) + 0.3 * torch.randn(3, 10, 2, 2))
    sparse = _dense_motion().sparse_motions(8, 8, src, drv).double()
    b, k, row, col = 2, 7, 5, 3
    z = np.array([2 * col / 7 - 1, 2 * row / 7 - 1])
    a = src.jacobian[0, k].double().numpy() @ np.linalg.inv(drv.jacobian[b, k].double().numpy())
    expected = src.value[0, k].double().numpy() + a @ (z - drv.value[b, k].double().numpy())
    np.testing.assert_allclose(sparse[b, k + 1, row, col].numpy(), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(sparse[b, 0, row, col].numpy(), z, rtol=0, atol=1e-6)


# --- pose predictor ---------------------------------------------------------------------------------------------

def test_pose_predictor_returns_one_more_pose_than_frames_and_is_causal(models, image):
    torch.manual_seed(5)
    audio = torch.randn(2, 5, 4, 41)
    images = torch.cat([image, image.flip(-1)])
    with torch.no_grad():
        poses = models.audio2pose(images, audio)
        prefix = models.audio2pose(images, audio[:, :3])
        other_audio = models.audio2pose(images, torch.randn(2, 5, 4, 41))
    assert poses.shape == (2, 6, 6)
    torch.testing.assert_close(prefix, poses[:, :4], rtol=0, atol=1e-6)  # a step never sees later audio
    torch.testing.assert_close(other_audio[:, 0], poses[:, 0])  # the first pose comes from the image alone
    assert not torch.allclose(other_audio[:, 1:], poses[:, 1:])


def test_pose_predictor_embeds_long_audio_in_chunks_and_reports_every_step(models, image, monkeypatch):
    """Audio embedded in chunks (cancel points for a long clip) gives the poses of one pass; progress sees the image
    embedding, each chunk and each LSTM step, and an exception raised there stops the prediction."""
    import a2h_core.modules.pose_predictor as pose_predictor
    torch.manual_seed(7)
    audio = torch.randn(1, 10, 4, 41)
    with torch.no_grad():
        whole = models.audio2pose(image, audio)
        monkeypatch.setattr(pose_predictor, "AUDIO_EMBEDDING_CHUNK", 4)
        calls = []
        chunked = models.audio2pose(image, audio, progress=lambda done, total: calls.append((done, total)))
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)
        assert calls == [(0, 10)] * 4 + [(t, 10) for t in range(1, 11)]  # image, 3 chunks, 10 steps

        def stop(done, total):
            if done == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            models.audio2pose(image, audio, progress=stop)


def test_pose_predictor_lstm_input_is_audio_then_previous_output(models, image):
    net = models.audio2pose
    torch.manual_seed(6)
    audio = torch.randn(1, 3, 4, 41)
    with torch.no_grad():
        poses = net(image, audio)
        previous = net.em_img(image)
        audio_em = net.em_audio(audio.reshape(3, 1, 4, 41))
        expected, state = [net.output(previous)], None
        for t in range(3):
            out, state = net.lstm(torch.cat([audio_em[t:t + 1], previous], dim=1)[None], state)
            previous = out[0]
            expected.append(net.output(previous))
    torch.testing.assert_close(poses[0], torch.cat(expected), rtol=0, atol=1e-6)


def test_pose_normalisation_round_trip_and_constants():
    poses = np.random.default_rng(0).uniform(POSE_MIN, POSE_MAX, size=(7, 6)).astype(np.float32)
    np.testing.assert_allclose(denormalize_poses(normalize_poses(poses)), poses, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(denormalize_poses(-np.ones(6, np.float32)), POSE_MIN, rtol=1e-6)
    np.testing.assert_allclose(denormalize_poses(np.ones(6, np.float32)), POSE_MAX, rtol=1e-6)
    tensor = torch.tensor(poses, dtype=torch.float64)
    torch.testing.assert_close(denormalize_poses(normalize_poses(tensor)), tensor)
    assert isinstance(denormalize_poses(tensor), torch.Tensor)


# --- motion field generator and keypoint detector ---------------------------------------------------------------

def _window(batch: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, 64, 4, 41, generator=gen) * 5
    boxes = (torch.rand(batch, 64, 256, 256, generator=gen) > 0.98).float() * 255
    return audio, boxes


def test_motion_field_generator_is_batch_major_and_broadcasts_the_source(models, image):
    audio, boxes = _window(2, 7)
    with torch.no_grad():
        both = models.audio2kp(audio, boxes, image)
        second = models.audio2kp(audio[1:], boxes[1:], image)
    assert both.value.shape == (128, 10, 2) and both.jacobian.shape == (128, 10, 2, 2)
    # Rows 64..127 are window 1, computed with the single source image broadcast to both windows. A batch of 2 and
    # a batch of 1 may take different CPU convolution kernels; the 3-D hourglass and the heatmap softmax (temperature
    # 0.1) grow their last-bit differences to ~1e-5 (measured up to 1.2e-5): 1e-4 is a hundredth of a pixel, while a
    # wrong window or source would move keypoints by far more.
    torch.testing.assert_close(both.value[64:], second.value, rtol=0, atol=1e-4)
    torch.testing.assert_close(both.jacobian[64:], second.jacobian, rtol=0, atol=1e-4)
    assert not torch.allclose(both.value[:64], second.value)
    assert both.value.abs().max() <= 1
    with pytest.raises(ValueError, match="64 frames"):
        models.audio2kp(audio[:, :32], boxes[:, :32], image)


def test_keypoint_detector_starts_with_identity_jacobians(image):
    detector = Audio2HeadModels(ModelConfig.reduced()).kp_detector
    with torch.no_grad():
        kp = detector(image)
    assert kp.value.shape == (1, 10, 2) and kp.value.abs().max() <= 1
    torch.testing.assert_close(kp.jacobian, torch.eye(2).expand(1, 10, 2, 2), rtol=0, atol=1e-5)


# --- generator --------------------------------------------------------------------------------------------------

def _driving(models, image, frames: int) -> tuple[Keypoints, Keypoints]:
    with torch.no_grad():
        src = models.kp_detector(image)
    gen = torch.Generator().manual_seed(8)
    value = (src.value + 0.05 * torch.randn(frames, 10, 2, generator=gen)).clamp(-1, 1)
    jacobian = src.jacobian + 0.05 * torch.randn(frames, 10, 2, 2, generator=gen)
    return src, Keypoints(value, jacobian)


def test_batched_generator_equals_per_frame_generator(models, image):
    src, drv = _driving(models, image, 2)
    gen = models.generator
    with torch.no_grad():
        features = gen.encode_source(image)
        batched = gen(image, features, src, drv)
        single = [gen(image, features, src, drv[i]) for i in range(2)]
    assert batched["prediction"].shape == (2, 3, 256, 256)
    assert batched["occlusion_map"].shape == (2, 1, 64, 64)
    assert batched["deformation"].shape == (2, 64, 64, 2)
    for key in ("prediction", "occlusion_map", "deformation"):
        torch.testing.assert_close(batched[key], torch.cat([s[key] for s in single]), rtol=0, atol=1e-5)
    assert batched["prediction"].min() >= 0 and batched["prediction"].max() <= 1


def test_generator_with_source_as_driving_keypoints_barely_moves(models, image):
    # Driving = source keypoints: every sparse motion is the identity, so is the blended deformation.
    src, _ = _driving(models, image, 1)
    with torch.no_grad():
        out = models.generator(image, models.generator.encode_source(image), src, src)
    identity = make_coordinate_grid(64, 64, image)[None]
    torch.testing.assert_close(out["deformation"], identity, rtol=0, atol=1e-5)


@pytest.mark.slow  # ~27 s on an AVX2-only CPU (no native bf16: 3-D convolutions in bf16), 0.3 s with AVX-512
def test_networks_run_in_bfloat16(models, image):
    """Weights in bf16 (`load_models(dtype="bf16")`). The default run keeps bf16 compute under autocast, the path
    the pipeline and the nodes take, in test_generator_under_bfloat16_autocast_keeps_geometry_in_float32."""
    # bf16 is the CPU half type (CPU fp16 kernels are missing or very slow; fp16 is for CUDA).
    half = Audio2HeadModels(ModelConfig.reduced())
    half.load_state_dict(models.state_dict())
    half = half.to(torch.bfloat16)
    x = image.to(torch.bfloat16)
    audio, boxes = _window(1, 9)
    with torch.no_grad():
        poses = half.audio2pose(x, audio[:, :4].to(torch.bfloat16))
        kp_drv = half.audio2kp(audio.to(torch.bfloat16), boxes.to(torch.bfloat16), x)
        kp_src = half.kp_detector(x)
        out = half.generator(x, half.generator.encode_source(x), kp_src, kp_drv[:1])
        src32 = models.kp_detector(image)
    assert poses.dtype == out["prediction"].dtype == torch.bfloat16
    # Coordinates stay in float32 (bf16 would move keypoints and warps by up to a pixel).
    assert kp_drv.value.dtype == kp_src.jacobian.dtype == out["deformation"].dtype == torch.float32
    assert poses.shape == (1, 5, 6) and out["prediction"].shape == (1, 3, 256, 256)
    assert torch.isfinite(out["prediction"]).all() and torch.isfinite(kp_drv.jacobian).all()
    assert (kp_src.value.float() - src32.value).abs().max() < 0.1


def test_generator_under_bfloat16_autocast_keeps_geometry_in_float32(models, image):
    src, drv = _driving(models, image, 1)
    gen = models.generator
    with torch.no_grad():
        reference = gen(image, gen.encode_source(image), src, drv)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            kp = models.kp_detector(image)
            out = gen(image, gen.encode_source(image), src, drv)
    assert kp.value.dtype == out["deformation"].dtype == torch.float32
    assert (kp.value - src.value).abs().max() < 2e-3  # measured 2e-4
    assert (out["deformation"] - reference["deformation"]).abs().max() < 1e-3  # measured 5e-5
    assert (out["prediction"].float() - reference["prediction"]).abs().mean() < 3e-3  # about bf16 rounding of 0.5
