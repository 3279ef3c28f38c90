"""Head-pose curves: conventions, files, keyframes, edits, validation and the `pose` command."""
import argparse
import json
import warnings

import numpy as np
import pytest

from a2h_core.cli import pose as pose_command
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.pose import (
    DEFAULT_POSE,
    PoseCurve,
    curve_from_keyframes,
    curve_to_dict,
    interpolate_keys,
    load_pose_curve,
    read_openface_csv,
    save_pose_curve,
)
from a2h_core.pose.rotations import matrix_to_rotvec, poses_to_ypr, rotvec_to_matrix, ypr_to_matrix, ypr_to_poses
from a2h_devkit.pose_boxes import random_poses

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation


def training_curve(count: int = 40, seed: int = 0) -> PoseCurve:
    """Random poses in the middle half of the training range."""
    return PoseCurve(random_poses(count, seed, spread=0.5, dtype=np.float64))


# ------------------------------------------------------------------------------------------------ conventions

def test_rotations_match_scipy():
    rng = np.random.default_rng(1)
    rotvecs = rng.normal(size=(200, 3)) * 0.8
    np.testing.assert_allclose(rotvec_to_matrix(rotvecs), Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-13)
    ypr = rng.uniform(-80, 80, size=(200, 3))
    # Intrinsic X-Y-Z: Rx(pitch) @ Ry(yaw) @ Rz(roll).
    expected = Rotation.from_euler("XYZ", ypr[:, [1, 0, 2]], degrees=True).as_matrix()
    np.testing.assert_allclose(ypr_to_matrix(ypr), expected, atol=1e-13)
    np.testing.assert_allclose(matrix_to_rotvec(expected), Rotation.from_matrix(expected).as_rotvec(), atol=1e-12)


def test_round_trips_are_exact_to_float_precision():
    rng = np.random.default_rng(2)
    poses = np.concatenate([rng.normal(size=(500, 3)) * 0.6, rng.normal(size=(500, 3)) * 100], 1)
    poses[:5, :3] = [[0, 0, 0], [1e-12, 0, 0], [0, -1e-9, 0], [0.3, 0, 0], [0, 0, -2.5]]
    np.testing.assert_allclose(ypr_to_poses(poses_to_ypr(poses)), poses, rtol=0, atol=1e-12)
    ypr = np.concatenate([rng.uniform(-85, 85, size=(500, 3)), rng.normal(size=(500, 3))], 1)
    np.testing.assert_allclose(poses_to_ypr(ypr_to_poses(ypr)), ypr, rtol=0, atol=1e-10)
    curve = training_curve()
    assert np.abs(PoseCurve.from_ypr(curve.to_ypr()).values - curve.values).max() < 1e-14


def test_yaw_pitch_roll_as_a_viewer_sees_them():
    nose = np.array([0.0, 0.0, -1.0])  # a point in front of the face, toward the camera
    crown = np.array([0.0, -1.0, 0.0])  # the top of the head (y points down in the image)
    yaw, pitch, roll = (ypr_to_poses([*angles, 0, 0, 0])[:3] for angles in
                        ([20, 0, 0], [0, 20, 0], [0, 0, 20]))
    # Single-axis angles are single-axis rotation vectors: ry is yaw, rx is pitch, rz is roll.
    np.testing.assert_allclose(yaw, [0, np.radians(20), 0], atol=1e-15)
    np.testing.assert_allclose(pitch, [np.radians(20), 0, 0], atol=1e-15)
    np.testing.assert_allclose(roll, [0, 0, np.radians(20)], atol=1e-15)
    assert (rotvec_to_matrix(yaw) @ nose)[0] < 0  # yaw > 0: the face turns toward the image's left
    assert (rotvec_to_matrix(pitch) @ nose)[1] > 0  # pitch > 0: the face tilts down
    assert (rotvec_to_matrix(roll) @ crown)[0] > 0  # roll > 0: the crown moves right, clockwise


# ------------------------------------------------------------------------------------------------ the type

def test_pose_for_frames_repeats_the_last_pose():
    curve = PoseCurve(np.arange(18, dtype=float).reshape(3, 6) + 1)
    frames = curve.pose_for_frames(5)
    np.testing.assert_array_equal(frames[:3], curve.values)
    np.testing.assert_array_equal(frames[3:], np.repeat(curve.values[-1:], 2, 0))
    np.testing.assert_array_equal(curve.pose_for_frames(2), curve.values[:2])
    assert curve.values.dtype == np.float64 and curve.fps == 25.0 and len(curve) == 3


@pytest.mark.parametrize("values, message", [
    (np.zeros((0, 6)), "empty"),
    (np.zeros((4, 5)), r"\[poses, 6\]"),
    (np.zeros((2, 3, 6)), r"\[poses, 6\]"),
    (np.array([[0, 0, 0, 0, 0, np.nan]]), "NaN or Inf in 1 of 1 poses"),
    ([["a", 1, 2, 3, 4, 5]], "must be numbers"),
])
def test_bad_values_are_refused(values, message):
    with pytest.raises(Audio2HeadError, match=message):
        PoseCurve(values)


def test_bad_fps_and_counts_are_refused():
    with pytest.raises(Audio2HeadError, match="fps"):
        PoseCurve(np.zeros((2, 6)), fps=0)
    with pytest.raises(Audio2HeadError, match="whole number"):
        training_curve().pose_for_frames(0)
    with pytest.raises(Audio2HeadError, match="whole number"):
        training_curve().fitted(2.5)


def test_training_range_warning():
    inside = training_curve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not inside.warn_if_out_of_range()
    with pytest.warns(A2HWarning, match=r"ry reaches .*trained on -0.501 .. 0.547"):
        inside.offset([60, 0, 0, 0, 0, 0])


# ------------------------------------------------------------------------------------------------ files

@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_files_round_trip_exactly(tmp_path, suffix):
    curve = PoseCurve(training_curve().values, fps=30.0)
    path = save_pose_curve(curve, tmp_path / f"curve{suffix}")
    loaded = load_pose_curve(path, fps=None)
    np.testing.assert_array_equal(loaded.values, curve.values)
    assert loaded.fps == 30.0
    ypr_path = save_pose_curve(curve, tmp_path / f"curve_ypr{suffix}", columns="ypr")
    np.testing.assert_allclose(load_pose_curve(ypr_path, fps=None).values, curve.values, rtol=0, atol=1e-13)
    # The default load resamples to the model's 25 fps, keeping the duration.
    at_25 = load_pose_curve(path)
    assert at_25.fps == 25.0 and len(at_25) == int(curve.duration * 25) + 1


def test_json_schema_and_bad_files(tmp_path):
    document = curve_to_dict(training_curve(3))
    assert document["format"] == "audio2head-pose-curve" and document["version"] == 1
    assert document["columns"] == ["rx", "ry", "rz", "tx", "ty", "tz"] and len(document["poses"]) == 3
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(Audio2HeadError, match="not valid JSON"):
        load_pose_curve(bad)
    bad.write_text(json.dumps({"poses": [[0, 0, 0, 0, 0]]}))
    with pytest.raises(Audio2HeadError, match="six numbers"):
        load_pose_curve(bad)
    bad.write_text(json.dumps({"poses": [[0] * 6], "columns": ["a", "b", "c", "d", "e", "f"]}))
    with pytest.raises(Audio2HeadError, match="pose columns must be"):
        load_pose_curve(bad)
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("frame,rx,ry,rz,tx,ty,tz\n0,0,0,0,0,0,300\n2,0,0,0,0,0,300\n")
    with pytest.raises(Audio2HeadError, match="frame column"):
        load_pose_curve(csv_file)
    csv_file.write_text("rx,ry,rz,tx,ty,tz\n0,0,0,0,nan,300\n")
    with pytest.raises(Audio2HeadError, match="NaN"):
        load_pose_curve(csv_file)
    with pytest.raises(Audio2HeadError, match="does not exist"):
        load_pose_curve(tmp_path / "missing.json")


def test_openface_import(tmp_path):
    header = ("frame, face_id, timestamp, confidence, success, gaze_0_x, pose_Tx, pose_Ty, pose_Tz, pose_Rx, "
              "pose_Ry, pose_Rz, AU01_r")
    pitch_yaw_roll = np.radians([[5.0, 10.0, -3.0], [6.0, 12.0, -2.0], [0.0, 0.0, 0.0], [8.0, 16.0, 0.0]])
    rows = []
    for i, (rx, ry, rz) in enumerate(pitch_yaw_roll):
        success = 0 if i == 2 else 1
        tx, ty, tz = (10.0 + i, 20.0, 300.0) if success else (0.0, 0.0, 0.0)
        rows.append(f"{i + 1}, 0, {i / 30:.3f}, 0.98, {success}, 0.1, {tx}, {ty}, {tz}, {rx}, {ry}, {rz}, 0.5")
        rows.append(f"{i + 1}, 1, {i / 30:.3f}, 0.90, 1, 0.1, 1, 2, 350, 0, 0, 0, 0.5")
    rows.append("5, 0, 0.133, 0.98, 1, 0.1, 14, 20, 300, 0, 0, 0, 0.5")
    path = tmp_path / "openface.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    with pytest.warns(A2HWarning, match="lost the face on 1 of 5 frames"):
        curve = read_openface_csv(path)
    assert curve.fps == 30.0 and len(curve) == 5
    ypr = curve.to_ypr()
    np.testing.assert_allclose(ypr[0, :3], [10.0, 5.0, -3.0], atol=1e-12)  # OpenFace Ry is yaw, Rx pitch
    np.testing.assert_allclose(ypr[2, 3:], [12.0, 20.0, 300.0], atol=1e-12)  # the failed frame is interpolated
    raw = read_openface_csv(path, face_id=1, euler_as_axis_angle=True)
    np.testing.assert_allclose(raw.values[0], [0, 0, 0, 1, 2, 350])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", A2HWarning)
        assert load_pose_curve(path).fps == 25.0  # detected by its header, resampled for the model
    path.write_text("frame, pose_Tx\n1, 2\n")
    with pytest.raises(Audio2HeadError, match="missing"):
        read_openface_csv(path)


# ------------------------------------------------------------------------------------------------ keyframes

def test_keyframes_linear_smooth_and_ease():
    keys = [{"frame": 0, "yaw": 0.0}, {"frame": 10, "yaw": 10.0}, {"frame": 20, "yaw": 4.0},
            {"time": 1.2, "yaw": 12.0}]  # time 1.2 s = frame 30 at 25 fps
    linear = curve_from_keyframes(keys, interpolation="linear").to_ypr()[:, 0]
    assert len(linear) == 31
    np.testing.assert_allclose(linear[[0, 5, 10, 15, 20, 25, 30]], [0, 5, 10, 7, 4, 8, 12], atol=1e-12)
    from scipy.interpolate import PchipInterpolator
    smooth = curve_from_keyframes(keys, interpolation="smooth").to_ypr()[:, 0]
    np.testing.assert_allclose(smooth, PchipInterpolator([0, 10, 20, 30], [0, 10, 4, 12])(np.arange(31)),
                               atol=1e-10)
    ease = curve_from_keyframes(keys, interpolation="ease").to_ypr()[:, 0]
    np.testing.assert_allclose(ease[[5, 10, 15]], [5, 10, 7], atol=1e-12)
    assert abs(ease[1] - 10 * (3 * 0.01 - 2 * 0.001)) < 1e-12  # smoothstep: slow start
    # Channels no keyframe sets take the base pose; held before the first and after the last key.
    curve = curve_from_keyframes([{"frame": 5, "pitch": 3.0}], num_poses=8)
    ypr = curve.to_ypr()
    np.testing.assert_allclose(ypr[:, 1], 3.0, atol=1e-12)
    np.testing.assert_allclose(ypr[:, [0, 2, 3, 4, 5]], np.repeat(poses_to_ypr(DEFAULT_POSE)[None, [0, 2, 3, 4, 5]],
                                                                     8, 0), atol=1e-12)


def test_keyframes_relative_to_a_base_and_from_a_document():
    base = training_curve(1).values[0]
    curve = curve_from_keyframes({"fps": 25, "interpolation": "linear", "relative": True, "num_frames": 11,
                                      "keyframes": [{"frame": 0, "yaw": 0}, {"frame": 10, "yaw": 4, "z": -10}]},
                                     base=base)
    delta = curve.to_ypr() - poses_to_ypr(base)
    np.testing.assert_allclose(delta[:, 0], np.linspace(0, 4, 11), atol=1e-10)
    np.testing.assert_allclose(delta[:, 5], -10, atol=1e-10)
    np.testing.assert_allclose(curve.values[0, :5], base[:5], atol=1e-12)  # z has one key: held from frame 0


@pytest.mark.parametrize("keys, message", [
    ([], "non-empty"),
    ([{"frame": 1, "yaw": 1}, {"frame": 1, "yaw": 2}], "two keyframes sit at frame 1"),
    ([{"frame": 1, "yaw": 1, "time": 2}], "exactly one of"),
    ([{"frame": 0, "jaw": 1}], "unknown fields"),
    ([{"frame": -1, "yaw": 1}], "frame >= 0"),
    ([{"frame": 0, "yaw": "left"}], "finite number"),
    ([{"time": "soon", "yaw": 1}], "frame/time must be a number"),
])
def test_bad_keyframes_are_refused(keys, message):
    with pytest.raises(Audio2HeadError, match=message):
        curve_from_keyframes(keys)


def test_interpolation_holds_the_ends():
    values = interpolate_keys([2.0, 4.0], [1.0, 3.0], np.array([0.0, 3.0, 9.0]), "smooth")
    np.testing.assert_allclose(values, [1.0, 2.0, 3.0])


# ------------------------------------------------------------------------------------------------ edits

def test_scale_offset_and_still():
    curve = training_curve()
    ypr = curve.to_ypr()
    np.testing.assert_allclose(curve.scaled(1.0).values, curve.values, atol=1e-13)
    np.testing.assert_allclose(curve.scaled(0.0).values, curve.held().values, atol=1e-13)
    half = curve.scaled(0.5).to_ypr()
    np.testing.assert_allclose(half, ypr[0] + (ypr - ypr[0]) * 0.5, atol=1e-10)
    only_yaw = curve.scaled([0, 1, 1, 1, 1, 1]).to_ypr()
    np.testing.assert_allclose(only_yaw[:, 0], ypr[0, 0], atol=1e-10)
    np.testing.assert_allclose(only_yaw[:, 1:], ypr[:, 1:], atol=1e-10)
    moved = curve.offset([1, -2, 3, 4, 5, -6]).to_ypr()
    np.testing.assert_allclose(moved - ypr, np.broadcast_to([1, -2, 3, 4, 5, -6], ypr.shape), atol=1e-10)
    still = curve.held(7)
    assert len(still) == 7 and np.all(still.values == curve.values[0])
    assert len(PoseCurve.still(num_poses=3)) == 3
    np.testing.assert_array_equal(PoseCurve.still(num_poses=2).values[1], DEFAULT_POSE)
    with pytest.raises(Audio2HeadError, match="six finite numbers"):
        curve.offset([1, 2])


def test_smoothing():
    curve = training_curve(100)
    smooth = curve.smoothed(3.0)
    assert len(smooth) == 100
    assert np.all(np.diff(smooth.to_ypr(), axis=0).std(0) < np.diff(curve.to_ypr(), axis=0).std(0) / 3)
    constant = curve.held()
    np.testing.assert_allclose(constant.smoothed(5).values, constant.values, atol=1e-13)
    np.testing.assert_allclose(curve.smoothed(0).values, curve.values)
    with pytest.raises(Audio2HeadError, match="sigma"):
        curve.smoothed(-1)


def test_retime_loop_trim_fit_and_resample():
    curve = curve_from_keyframes([{"frame": 0, "yaw": 0.0}, {"frame": 10, "yaw": 10.0}],
                                     interpolation="linear")
    stretched = curve.retimed(21).to_ypr()[:, 0]
    np.testing.assert_allclose(stretched, np.linspace(0, 10, 21), atol=1e-10)
    assert len(curve.trimmed(4)) == 4 and len(curve.trimmed(400)) == 11
    np.testing.assert_array_equal(curve.looped(23).values[11:22], curve.values)
    pingpong = curve.looped(25, pingpong=True).to_ypr()[:, 0]
    np.testing.assert_allclose(pingpong[[0, 10, 15, 20, 24]], [0, 10, 5, 0, 4], atol=1e-10)
    assert np.all(curve.fitted(15).values[10:] == curve.values[-1])  # hold, as the original
    assert len(curve.fitted(5, "pingpong")) == 5 and len(curve.fitted(30, "repeat")) == 30
    np.testing.assert_allclose(curve.fitted(6, "stretch").to_ypr()[:, 0], [0, 2, 4, 6, 8, 10], atol=1e-10)
    at_50 = curve.resampled(50)
    assert at_50.fps == 50 and len(at_50) == 21
    np.testing.assert_allclose(at_50.to_ypr()[:, 0], np.linspace(0, 10, 21), atol=1e-10)
    with pytest.raises(Audio2HeadError, match="fit mode"):
        curve.fitted(5, "bounce")


def test_blend():
    a, b = training_curve(10, seed=3), training_curve(14, seed=4)
    np.testing.assert_allclose(a.blended(b, 0.0).values[:10], a.values, atol=1e-13)
    mixed = a.blended(b, 0.25)
    assert len(mixed) == 14
    expected = 0.75 * poses_to_ypr(a.pose_for_frames(14)) + 0.25 * b.to_ypr()
    np.testing.assert_allclose(mixed.to_ypr(), expected, atol=1e-10)
    with pytest.raises(Audio2HeadError, match="finite"):
        a.blended(b, float("nan"))


# ------------------------------------------------------------------------------------------------ command

def run_pose(argv):
    parser = argparse.ArgumentParser()
    pose_command.add_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["pose", *argv])
    return args.func(args)


def test_pose_command(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"interpolation": "linear",
                                "keyframes": [{"frame": 0, "yaw": 0}, {"frame": 20, "yaw": 10}]}))
    out, plot = tmp_path / "curve.csv", tmp_path / "curve.png"
    assert run_pose(["--from-keyframes", str(keys), "--frames", "31", "--scale", "0.5", "--offset",
                     "0,1,0,0,0,0", "--out", str(out), "--plot", str(plot)]) == 0
    curve = load_pose_curve(out)
    ypr = curve.to_ypr()
    assert len(curve) == 31
    np.testing.assert_allclose(ypr[[0, 20, 30], 0], [0, 5, 5], atol=1e-10)
    np.testing.assert_allclose(ypr[:, 1], 1, atol=1e-10)
    assert plot.read_bytes().startswith(b"\x89PNG")
    still = tmp_path / "still.json"
    assert run_pose(["--input", str(out), "--still", "--out", str(still)]) == 0
    assert np.all(load_pose_curve(still).values == curve.values[0])
    with pytest.raises(Audio2HeadError, match="give a starting curve"):
        run_pose(["--out", str(still)])
