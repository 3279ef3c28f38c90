"""Pose-curve nodes (keyframes, edit, retime, blend, still head, load/save, plot, boxes), called directly."""
import json

import numpy as np
import pytest
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.pose import PoseCurve
from nodes.pose_tools import DEFAULT_KEYFRAMES


def features_of(frames: int) -> AudioFeatures:
    return AudioFeatures(np.zeros((frames * 4 + 2, 41)))


def wavy_curve(count=40) -> PoseCurve:
    t = np.arange(count) / FPS
    ypr = np.zeros((count, 6))
    ypr[:, 0] = 10 * np.sin(2 * np.pi * t)
    ypr[:, 1] = 4 * np.cos(3 * t)
    ypr[:, 3:] = [20.0, 40.0, 280.0]
    return PoseCurve.from_ypr(ypr)


def ypr(out):
    return out[0].to_ypr()


def test_default_keyframes_give_a_three_second_curve_and_ui_payload(run_node):
    out = run_node("Audio2HeadPoseKeyframes", keyframes=DEFAULT_KEYFRAMES)
    curve = out[0]
    assert len(curve) == 3 * FPS + 1
    keys = json.loads(DEFAULT_KEYFRAMES)["keyframes"]
    np.testing.assert_allclose(curve.to_ypr()[[0, 25, 50, 75], 0], [k["yaw"] for k in keys], atol=1e-9)
    payload = out.ui["a2h_pose"][0]
    assert set(payload) == {"fps", "frames", "yaw", "pitch", "roll", "x", "y", "z"}
    assert payload["frames"] == len(payload["z"]) == len(curve)
    json.dumps(out.ui)  # the UI payload must be JSON-serialisable for the websocket


def test_keyframes_follow_the_audio_length_and_the_json_interpolation(run_node):
    document = json.loads(DEFAULT_KEYFRAMES)
    smooth = run_node("Audio2HeadPoseKeyframes", keyframes=json.dumps(document), features=features_of(120))[0]
    assert len(smooth) == 121
    linear = run_node("Audio2HeadPoseKeyframes", keyframes=json.dumps({**document, "interpolation": "linear"}))[0]
    assert linear.to_ypr()[12, 0] == pytest.approx(12 * 12 / 25)  # halfway up the first linear ramp
    assert not np.allclose(smooth.values[:76], linear.values)


def test_keyframes_relative_to_a_base_curve(run_node):
    base = wavy_curve()
    document = {"relative": True, "keyframes": [{"time": 0, "yaw": 0}, {"time": 1, "yaw": 10}]}
    curve = run_node("Audio2HeadPoseKeyframes", keyframes=json.dumps(document), base=base)[0]
    assert curve.to_ypr()[25, 0] == pytest.approx(base.to_ypr()[0, 0] + 10)
    np.testing.assert_allclose(curve.to_ypr()[:, 3:], np.repeat(base.to_ypr()[:1, 3:], len(curve), 0), atol=1e-9)


@pytest.mark.parametrize("text, message", [("{nope", "not valid JSON"), ("{}", "keyframes"),
                                           ('{"keyframes": [{"time": 0, "yawn": 1}]}', "unknown fields")])
def test_bad_keyframes_name_the_widget(text, message, run_node):
    with pytest.raises(Audio2HeadError, match=f"input 'keyframes'.*{message}"):
        run_node("Audio2HeadPoseKeyframes", keyframes=text)


@pytest.fixture
def edit(run_node):
    """edit(pose, scale, smooth, yaw=..., z=...): the Pose Edit node with the offsets not given at 0."""
    def run_edit(pose, scale=1.0, smooth=0.0, **offsets):
        names = ("yaw", "pitch", "roll", "x", "y", "z")
        return run_node("Audio2HeadPoseEdit", pose=pose, scale=scale, smooth=smooth,
                        **{f"{n}_offset": offsets.get(n, 0.0) for n in names})

    return run_edit


def test_edit_scale_offset_smooth(edit):
    curve = wavy_curve()
    still = ypr(edit(curve, scale=0.0))
    np.testing.assert_allclose(still, np.repeat(curve.to_ypr()[:1], len(curve), 0), atol=1e-9)
    shifted = ypr(edit(curve, yaw=5.0, z=-10.0))
    np.testing.assert_allclose(shifted[:, 0], curve.to_ypr()[:, 0] + 5, atol=1e-9)
    np.testing.assert_allclose(shifted[:, 5], curve.to_ypr()[:, 5] - 10, atol=1e-9)
    smooth = ypr(edit(curve, smooth=3.0))
    assert np.abs(np.diff(smooth[:, 0], 2)).max() < np.abs(np.diff(curve.to_ypr()[:, 0], 2)).max()
    unchanged = edit(curve)
    np.testing.assert_array_equal(unchanged[0].values, curve.values)
    assert "a2h_pose" in unchanged.ui


def test_retime_to_audio_or_count(run_node):
    curve = wavy_curve(40)
    stretched = run_node("Audio2HeadPoseRetime", pose=curve, mode="stretch", num_frames=0, features=features_of(99))
    assert len(stretched[0]) == 100
    looped = run_node("Audio2HeadPoseRetime", pose=curve, mode="repeat", num_frames=90)[0]
    np.testing.assert_array_equal(looped.values[40:80], curve.values)
    trimmed = run_node("Audio2HeadPoseRetime", pose=curve, mode="hold", num_frames=10)[0]
    np.testing.assert_array_equal(trimmed.values, curve.values[:10])
    same = run_node("Audio2HeadPoseRetime", pose=curve, mode="hold", num_frames=0)[0]
    assert len(same) == 40


def test_blend_weights(run_node, edit):
    a, b = wavy_curve(), edit(wavy_curve(), yaw=8.0)[0]
    np.testing.assert_allclose(ypr(run_node("Audio2HeadPoseBlend", pose_a=a, pose_b=b, weight=0.0)), a.to_ypr(),
                               atol=1e-9)
    half = ypr(run_node("Audio2HeadPoseBlend", pose_a=a, pose_b=b, weight=0.5))
    np.testing.assert_allclose(half[:, 0], a.to_ypr()[:, 0] + 4, atol=1e-9)


def test_still_head(run_node):
    curve = wavy_curve()
    held = run_node("Audio2HeadStillHead", num_frames=0, pose=curve, features=features_of(60))[0]
    assert len(held) == 61 and np.all(held.values == curve.values[0])
    frontal = run_node("Audio2HeadStillHead", num_frames=12)[0]
    assert len(frontal) == 12 and np.all(frontal.values == frontal.values[0])
    with pytest.raises(Audio2HeadError, match="num_frames"):
        run_node("Audio2HeadStillHead", num_frames=0)


def test_save_then_load_round_trip(tmp_path, monkeypatch, run_node):
    monkeypatch.chdir(tmp_path)  # outside ComfyUI the input and output folders are the working directory
    curve = wavy_curve()
    for fmt in ("json", "csv"):
        out = run_node("Audio2HeadPoseSave", pose=curve, filename_prefix="a2h/pose", format=fmt, columns="axis_angle")
        name = out.ui.as_dict()["text"][0].split()[1]
        assert name.startswith("a2h/pose_") and name.endswith("." + fmt)
        loaded = run_node("Audio2HeadPoseLoad", path=name, fps=float(FPS))[0]
        np.testing.assert_allclose(loaded.values, curve.values, rtol=0, atol=1e-12)
    with pytest.raises(Audio2HeadError, match=r"input 'path'.*does not exist"):
        run_node("Audio2HeadPoseLoad", path="missing.json", fps=float(FPS))


def test_plot_and_pose_boxes(run_node):
    curve = wavy_curve(12)
    plot = run_node("Audio2HeadPosePlot", pose=curve, width=320, height=200)
    assert plot[0].shape == (1, 200, 320, 3) and "images" in plot.ui.as_dict()
    boxes = run_node("Audio2HeadPoseBoxes", pose=curve)[0]
    assert boxes.shape == (12, 256, 256, 3)
    assert set(torch.unique(boxes).tolist()) == {0.0, 1.0}
    background = torch.full((1, 300, 220, 3), 0.5)
    over = run_node("Audio2HeadPoseBoxes", pose=curve, image=background)[0]
    assert over.shape == (12, 300, 220, 3) and float(over.max()) > 0.5
