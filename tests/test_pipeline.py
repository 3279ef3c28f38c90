"""Frame assembly, streaming and the end-to-end pipeline, on reduced-width random networks."""
import os

import numpy as np
import pytest
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FPS, ModelConfig
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.inference.intermediates import INTERMEDIATE_FILES
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.inference.wrapper import Audio2HeadWrapper, frame_poses, plan_windows, window_inputs
from a2h_core.io.image import prepare_source_image
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_core.pose.render import render_pose_boxes
from a2h_devkit.media import read_video_info
from a2h_devkit.speech import speech_like

SEQ_LEN = 64


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return Audio2HeadModels(ModelConfig.reduced())


@pytest.fixture(scope="module")
def source():
    rng = np.random.default_rng(1)
    return prepare_source_image(rng.integers(0, 256, (300, 280, 3), dtype=np.uint8))[0]


def _features(num_frames, seed=2, extra_rows=3):
    rng = np.random.default_rng(seed)
    return AudioFeatures(values=rng.normal(size=(num_frames * 4 + extra_rows, 41)))


def _poses(count, seed=3):
    rng = np.random.default_rng(seed)
    base = np.array([0.0, 0.0, 0.0, 20.0, 40.0, 280.0])
    return PoseCurve(values=base + rng.normal(scale=[0.1, 0.1, 0.1, 10, 10, 20], size=(count, 6)), fps=FPS)


# --------------------------------------------------------------------------------------------------------------------
# A straightforward transcription of the original inference loop's bookkeeping (one frame at a time).

def _reference_frame_table(num_frames):
    """(window start, row) of every video frame, and each window's (audio frame | None, pose index) per row."""
    table, windows = [], {}
    for start in range(0, num_frames, SEQ_LEN // 2):
        windows[start] = [(start + j if start + j < num_frames else None, start + j if start + j < num_frames else -1)
                          for j in range(SEQ_LEN)]
        first, last = (0, SEQ_LEN // 4 * 3) if start == 0 else (SEQ_LEN // 4, SEQ_LEN // 4 * 3)
        for row in range(first, last):
            table.append((start, row))
            if len(table) >= num_frames:
                return table, windows
    return table, windows


def _reference_keypoints(models, source, features, curve):
    """The original's loop on our networks: windows built row by row, keypoints taken frame by frame."""
    num_frames = features.num_frames
    poses = np.asarray(curve.values, dtype=np.float32)
    kept = []
    with torch.inference_mode():
        for start in range(0, num_frames, SEQ_LEN // 2):
            audio, window_poses = [], []
            for j in range(SEQ_LEN):
                if start + j < num_frames:
                    audio.append(features.values[(start + j) * 4:(start + j) * 4 + 4])
                    window_poses.append(poses[start + j])
                else:
                    audio.append(np.zeros((4, 41), np.float32))
                    window_poses.append(poses[-1])
            audio = torch.from_numpy(np.array(audio, dtype=np.float32))[None]
            boxes = render_pose_boxes(np.array(window_poses))[None]
            kp_driving = models.audio2kp(audio, boxes, source)
            first = 0 if start == 0 else SEQ_LEN // 4
            for row in range(first, SEQ_LEN // 4 * 3):
                kept.append(kp_driving[row])
                if len(kept) >= num_frames:
                    return kept
    return kept


def _reference_frames(models, source, kp_driving):
    """The original renders one frame per generator call and truncates prediction * 255 to uint8."""
    frames = []
    with torch.inference_mode():
        kp_source = models.kp_detector(source)
        source_features = models.generator.encode_source(source)
        for i in range(len(kp_driving)):
            prediction = models.generator(source, source_features, kp_source, kp_driving[i])["prediction"]
            frames.append((prediction[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    return np.stack(frames)


@pytest.mark.parametrize("num_frames", [1, 2, 31, 32, 47, 48, 49, 63, 64, 65, 80, 81, 111, 112, 113, 300])
def test_window_plan_matches_the_original_loop(num_frames):
    table, reference_windows = _reference_frame_table(num_frames)
    ours = [(w.start, row) for w in plan_windows(num_frames, SEQ_LEN) for row in range(w.keep_start, w.keep_end)]
    assert ours == table
    assert [start + row for start, row in ours] == list(range(num_frames))  # every frame once, in order
    audio = np.arange(num_frames, dtype=np.float32)[:, None, None] + np.zeros((1, 4, 41), np.float32) + 1
    poses = np.arange(num_frames + 1, dtype=np.float32)[:, None] + np.zeros((1, 6), np.float32)
    for window in plan_windows(num_frames, SEQ_LEN):
        window_audio, window_poses = window_inputs(audio, poses, window, SEQ_LEN)
        for row, (audio_frame, pose_index) in enumerate(reference_windows[window.start]):
            expected_audio = 0.0 if audio_frame is None else audio_frame + 1
            assert (window_audio[row] == expected_audio).all()
            assert window_poses[row, 0] == poses[pose_index, 0]


def test_frame_poses_holds_the_last_pose():
    curve = PoseCurve(values=np.arange(18, dtype=np.float64).reshape(3, 6), fps=FPS)
    poses = frame_poses(curve, 5)
    assert poses.shape == (6, 6) and poses.dtype == np.float32
    np.testing.assert_array_equal(poses[:3], curve.values)
    np.testing.assert_array_equal(poses[3:], np.repeat(curve.values[-1:], 3, axis=0))


def test_driving_keypoints_equal_the_original_loop(models, source):
    # 70 frames: two windows, the second padded past the clip's end.
    features, curve = _features(70), _poses(71)
    wrapper = Audio2HeadWrapper(models)
    reference = _reference_keypoints(wrapper.networks, source, features, curve)  # the networks the wrapper runs
    ours = wrapper.driving_keypoints(source, features, curve)
    assert len(ours) == len(reference) == 70
    # Exact: the same network instance runs the same windows (same inputs, same shapes) on both sides, so only the
    # bookkeeping of windows and rows could make a difference.
    assert torch.equal(ours.value, torch.cat([k.value for k in reference]))
    assert torch.equal(ours.jacobian, torch.cat([k.jacobian for k in reference]))


def test_frames_equal_the_original_per_frame_rendering(models, source):
    wrapper = Audio2HeadWrapper(models)
    kp_driving = wrapper.driving_keypoints(source, _features(7), _poses(8))
    reference = _reference_frames(wrapper.networks, source, kp_driving)
    kp_source = wrapper.source_keypoints(source)
    one_by_one = np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving, batch_size=1)))
    assert one_by_one.shape == (7, 256, 256, 3) and one_by_one.dtype == np.uint8
    np.testing.assert_array_equal(one_by_one, reference)  # the same instance, one frame per pass on both sides
    # Batches of 3 may take other CPU convolution kernels than single frames: last-bit float32 differences move a
    # truncated uint8 value by one here and there.
    batched = np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving, batch_size=3)))
    difference = np.abs(batched.astype(int) - reference)
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.02


def test_last_window_padding_changes_the_whole_window(models, source):
    # The generator mixes time: the zero padding after the clip changes the kept rows of the window too.
    wrapper = Audio2HeadWrapper(models)
    features, curve = _features(45), _poses(46)
    short = wrapper.driving_keypoints(source, AudioFeatures(values=features.values[:40 * 4]), curve)
    full = wrapper.driving_keypoints(source, features, curve)
    assert len(short) == 40 and len(full) == 45
    assert not torch.equal(short.value[:40], full.value[:40])


def _cheap_generator(source_image, source_features, kp_source, kp_driving):
    """Stands in for the warping generator: each frame's colour encodes its keypoints."""
    level = torch.remainder(100 * (kp_driving.value.sum(dim=(1, 2)) + kp_driving.jacobian.sum(dim=(1, 2, 3))), 1.0)
    return {"prediction": level.view(-1, 1, 1, 1).expand(-1, 3, 4, 4)}


def test_streaming_equals_all_at_once(models, source, monkeypatch):
    wrapper = Audio2HeadWrapper(models)
    features, curve = _features(52), _poses(53)
    kp_source = wrapper.source_keypoints(source)
    chunks = list(wrapper.iter_driving_keypoints(source, features, curve))
    assert [len(c) for c in chunks] == [48, 4]
    all_keypoints = Keypoints.cat(chunks)
    monkeypatch.setattr(wrapper.networks.generator, "forward", _cheap_generator)
    at_once = list(wrapper.render_frames(source, kp_source, all_keypoints, batch_size=5))
    streamed = list(wrapper.render_frames(source, kp_source, iter(chunks), batch_size=5, total=52))
    assert [len(b) for b in streamed] == [5] * 10 + [2]  # batches cross the window boundary
    np.testing.assert_array_equal(np.concatenate(streamed), np.concatenate(at_once))
    assert len(np.unique(np.concatenate(streamed)[:, 0, 0, 0])) > 26  # the frames really differ


def test_frames_are_truncated_not_rounded(models, source, monkeypatch):
    wrapper = Audio2HeadWrapper(models)
    values = torch.tensor([0.0, 0.4999, 0.9999, 1.0, 0.5, 100.5 / 255])

    def fake_generator(source_image, source_features, kp_source, kp_driving):
        return {"prediction": values.view(1, 1, 1, -1).expand(len(kp_driving), 3, 1, -1)}

    monkeypatch.setattr(wrapper.networks.generator, "forward", fake_generator)
    kp = Keypoints(torch.zeros(3, 10, 2), torch.eye(2).repeat(3, 10, 1, 1))
    frames = np.concatenate(list(wrapper.render_frames(source, kp[:1], kp, batch_size=2)))
    expected = (values.numpy().astype(np.float32) * np.float32(255)).astype(np.uint8)
    np.testing.assert_array_equal(frames[0, 0, :, 0], expected)
    assert list(expected[:5]) == [0, 127, 254, 255, 127]


def test_progress_and_cancel(models, source):
    wrapper = Audio2HeadWrapper(models)
    features, curve = _features(12), _poses(13)
    kp_source = wrapper.source_keypoints(source)
    calls = []
    list(wrapper.render_frames(source, kp_source, wrapper.driving_keypoints(source, features, curve),
                               batch_size=5, progress=lambda done, total: calls.append((done, total))))
    assert calls == [(5, 12), (10, 12), (12, 12)]

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        list(wrapper.iter_driving_keypoints(source, features, curve, progress=cancel))


@pytest.mark.parametrize("stage", ["motion field", "generator"])
def test_cancel_inside_a_network_pass(models, source, stage):
    # One pass takes seconds on a CPU at the published widths: Cancel is checked before each block inside it.
    features, curve = _features(12), _poses(13)
    plain = Audio2HeadWrapper(models)
    kp_source, kp_driving = plain.source_keypoints(source), plain.driving_keypoints(source, features, curve)
    expected = np.concatenate(list(plain.render_frames(source, kp_source, kp_driving, batch_size=12)))

    class Cancelled(Exception):
        pass

    checks = []

    def check_cancel():
        checks.append(None)
        if len(checks) == 3:
            raise Cancelled

    wrapper = Audio2HeadWrapper(models, check_cancel=check_cancel)
    network = wrapper.networks.audio2kp if stage == "motion field" else wrapper.networks.generator
    with pytest.raises(Cancelled):
        if stage == "motion field":
            next(wrapper.iter_driving_keypoints(source, features, curve))
        else:
            next(wrapper.render_frames(source, kp_source, kp_driving, batch_size=12))
    assert len(checks) == 3  # stopped at the third block of the first pass, not at its end
    assert not any(module._forward_pre_hooks for module in network.modules())  # no check left behind
    # Without a cancel, the checks change nothing.
    checks.clear()
    checked = Audio2HeadWrapper(models, check_cancel=lambda: checks.append(None))
    frames = np.concatenate(list(checked.render_frames(source, kp_source, kp_driving, batch_size=12)))
    np.testing.assert_array_equal(frames, expected)
    assert len(checks) > 10


def test_predicted_poses_have_one_more_pose_than_frames(models, source):
    wrapper = Audio2HeadWrapper(models)
    curve = wrapper.predict_poses(source, _features(30))
    assert curve.values.shape == (31, 6) and curve.values.dtype == np.float64
    assert curve.fps == FPS
    with pytest.raises(Audio2HeadError, match="less than one video frame"):
        wrapper.predict_poses(source, AudioFeatures(values=np.zeros((3, 41))))


@pytest.mark.slow  # ~30 s on an AVX2-only CPU (no native bf16: a motion-field window), 0.7 s with AVX-512
def test_bf16_autocast_stays_close(models, source, monkeypatch):
    """The whole video stage under bf16 autocast. The default run covers bf16 autocast on the keypoint detector and
    the generator (tests/test_networks.py, tests/test_nodes.py)."""
    import a2h_core.device
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: True)  # numbers, not speed, are tested here
    wrapper32, wrapper16 = Audio2HeadWrapper(models), Audio2HeadWrapper(models, dtype="bf16")
    features, curve = _features(4), _poses(5)
    frames = []
    for wrapper in (wrapper32, wrapper16):
        kp_source = wrapper.source_keypoints(source)
        kp_driving = wrapper.driving_keypoints(source, features, curve)
        assert kp_driving.value.dtype == torch.float32
        frames.append(np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving))).astype(float))
    assert np.abs(frames[0] - frames[1]).mean() < 4


def test_generate_writes_an_mp4_with_intermediates(models, tmp_path):
    rate = 16000
    audio = {"waveform": torch.from_numpy(speech_like(1.0, rate).astype(np.float32))[None], "sample_rate": rate}
    image = np.random.default_rng(5).integers(0, 256, (181, 241, 3), dtype=np.uint8)
    config = PipelineConfig(batch_size=6, crop="60,20,120,120", save_intermediates=tmp_path / "stages")
    out = tmp_path / "talk.mp4"
    calls = []
    result = generate(image, audio, models, config, out_path=out, progress=lambda d, t: calls.append((d, t)))
    num_frames = result.num_frames
    assert num_frames == 24 and calls[-1] == (24, 24)
    info = read_video_info(out)
    assert info["fps"] == 25 and info["frames"] == num_frames
    assert (info["width"], info["height"]) == (240, 180)  # full picture, cut to even size
    assert info["audio_seconds"] == pytest.approx(num_frames / 25, abs=1024 / rate)
    assert sorted(os.listdir(tmp_path)) == ["stages", "talk.mp4"]
    assert sorted(os.listdir(tmp_path / "stages")) == sorted(INTERMEDIATE_FILES)
    stages = {name: np.load(tmp_path / "stages" / name) for name in INTERMEDIATE_FILES if name.endswith(".npy")}
    assert stages["features.npy"].shape[1] == 41 and len(stages["features.npy"]) // 4 == num_frames
    assert stages["poses.npy"].shape == (num_frames + 1, 6)
    assert stages["pose_boxes.npy"].shape == (num_frames, 256, 256)
    assert set(np.unique(stages["pose_boxes.npy"])) <= {0, 255}
    assert stages["driving_kp_value.npy"].shape == (num_frames, 10, 2)
    assert stages["driving_kp_jacobian.npy"].shape == (num_frames, 10, 2, 2)
    assert stages["source_kp_value.npy"].shape == (1, 10, 2)
    assert stages["frames.npy"].shape == (num_frames, 256, 256, 3)
    # The saved stages reproduce the frames: render the saved keypoints again.
    wrapper = Audio2HeadWrapper(models)
    source = prepare_source_image(image, config.crop)[0]
    kp_driving = Keypoints(torch.from_numpy(stages["driving_kp_value.npy"]),
                           torch.from_numpy(stages["driving_kp_jacobian.npy"]))
    kp_source = Keypoints(torch.from_numpy(stages["source_kp_value.npy"]),
                          torch.from_numpy(stages["source_kp_jacobian.npy"]))
    again = np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving, batch_size=6)))
    np.testing.assert_array_equal(again, stages["frames.npy"])  # the same instance, inputs and batches: exact


def test_generate_in_memory_with_a_custom_curve(models, source):
    features = _features(10)
    with pytest.warns(A2HWarning, match="last pose is held"):
        result = generate(np.zeros((64, 64, 3), np.uint8), features, models, PipelineConfig(crop=None),
                          pose_curve=_poses(4))
    assert result.frames.shape == (10, 256, 256, 3) and result.out_path is None
    assert set(result.seconds) >= {"motion field", "generator"}


def test_generate_errors_leave_no_file(models, tmp_path):
    with pytest.raises(Audio2HeadError, match="source image"):
        generate(tmp_path / "missing.png", _features(5), models, out_path=tmp_path / "x.mp4")
    with pytest.raises(Audio2HeadError, match="less than one video frame"):
        generate(np.zeros((64, 64, 3), np.uint8), AudioFeatures(values=np.zeros((2, 41))), models,
                 PipelineConfig(crop=None))
    with pytest.raises(Audio2HeadError, match=r"must end in .mp4"):  # before any model work
        generate(np.zeros((64, 64, 3), np.uint8), tmp_path / "missing.wav", models, PipelineConfig(crop=None),
                 out_path=tmp_path / "x.avi")
    assert os.listdir(tmp_path) == []
