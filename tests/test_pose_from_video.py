"""Head motion from a video, checked against known truth.

- Synthetic landmark tracks projected from the template at known poses (plus noise) recover the poses within the
  stated errors: noise-free exactly; with 0.5 px of landmark noise on the 256x256 crop (faces ~60 px between the
  eyes), median error below 2 degrees for yaw and pitch and 1 degree for roll, 95th percentile below 6 / 6 / 2.5.
- A video of the astronaut photo rolled in-plane by a known curve while it moves across the frame gives a roll curve
  correlating >= 0.95 with the truth and within 15 % in amplitude; x follows the motion.
- A mirrored video flips the sign of yaw and roll.
"""
import json
import warnings

import numpy as np
import pytest
import torch

from a2h_core import cli
from a2h_core.config import POSE_MAX, POSE_MIN
from a2h_core.errors import A2HWarning
from a2h_core.face import fit_video_pose, load_face_detector, pose_from_video
from a2h_core.face import weights as face_weights
from a2h_core.face.head_pose import FACE_TEMPLATE, project, solve_head_pose
from a2h_core.io.video import VideoWriter
from a2h_core.pose import PoseCurve, load_pose_curve
from a2h_core.pose.rotations import poses_to_ypr, ypr_to_poses

pytest.importorskip("skimage", reason="the test photographs come from scikit-image (requirements-test.txt)")
from a2h_devkit.face_scenes import background, rolling_video

FRAMES = 36


def random_poses(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ypr = np.stack([rng.uniform(-25, 25, count), rng.uniform(-15, 15, count), rng.uniform(-20, 20, count)], 1)
    t = np.stack([rng.uniform(-40, 60, count), rng.uniform(-10, 60, count), rng.uniform(300, 450, count)], 1)
    return ypr_to_poses(np.concatenate([ypr, t], 1))


# ------------------------------------------------------------------------------------------------ synthetic tracks
def test_synthetic_tracks_recover_known_poses():
    truth = random_poses(300, seed=0)
    marks = project(truth)
    exact, error = solve_head_pose(marks)
    np.testing.assert_allclose(poses_to_ypr(exact), poses_to_ypr(truth), atol=1e-4)
    assert error.max() < 1e-4
    noisy = marks + np.random.default_rng(1).normal(0, 0.5, marks.shape)
    fitted, _ = solve_head_pose(noisy)
    angles = np.abs(poses_to_ypr(fitted) - poses_to_ypr(truth))[:, :3]
    median, p95 = np.median(angles, 0), np.percentile(angles, 95, 0)
    assert median[0] < 2 and median[1] < 2 and median[2] < 1, median
    assert p95[0] < 6 and p95[1] < 6 and p95[2] < 2.5, p95
    depth = np.abs(fitted[:, 5] - truth[:, 5]) / truth[:, 5]
    assert np.median(depth) < 0.02


def test_mirrored_landmarks_flip_yaw_and_roll():
    truth = random_poses(50, seed=2)
    marks = project(truth)
    mirrored = marks[:, [1, 0, 2, 4, 3]].copy()  # the detector still lists the eye on the image's left first
    mirrored[..., 0] = 256 - mirrored[..., 0]  # mirror about the principal point (128)
    fitted, _ = solve_head_pose(mirrored)
    ypr, original = poses_to_ypr(fitted), poses_to_ypr(truth)
    np.testing.assert_allclose(ypr[:, 0], -original[:, 0], atol=1e-3)  # yaw
    np.testing.assert_allclose(ypr[:, 2], -original[:, 2], atol=1e-3)  # roll
    np.testing.assert_allclose(ypr[:, 1], original[:, 1], atol=1e-3)  # pitch unchanged
    assert FACE_TEMPLATE.shape == (5, 3)


# ------------------------------------------------------------------------------------------------ real video
@pytest.fixture(scope="module")
def detector():
    if face_weights.find_mtcnn() is None:
        pytest.skip("the 'mtcnn' package (the offline detector's weights) is not installed")
    return load_face_detector("mtcnn")


@pytest.fixture(scope="module")
def rolled(detector):
    frames, roll = rolling_video(frames=FRAMES, scale=0.7)
    return frames, roll, fit_video_pose(frames, 25, detector=detector)


@pytest.fixture(scope="module")
def mirrored(detector):
    frames, roll = rolling_video(frames=FRAMES, scale=0.7, mirror=True)
    return frames, roll, fit_video_pose(frames, 25, detector=detector)


def test_rolled_and_moving_photo_gives_the_known_roll_curve(rolled):
    _, roll, result = rolled
    ypr = result.curve.to_ypr()
    assert len(result.curve) == FRAMES and result.curve.fps == 25 and result.found.all() and not result.gaps
    assert np.corrcoef(ypr[:, 2], roll)[0, 1] >= 0.95
    slope = np.polyfit(roll, ypr[:, 2], 1)[0]
    assert 0.85 <= slope <= 1.15, slope  # amplitude within 15 %
    # The photo slides 60 px to the right: x follows; a face framed like the demo images is inside the training range.
    assert np.corrcoef(ypr[:, 3], np.arange(FRAMES))[0, 1] > 0.9
    assert not result.curve.out_of_range()
    assert POSE_MIN[5] < np.median(result.curve.values[:, 5]) < POSE_MAX[5]


def test_mirrored_video_flips_yaw_and_roll(rolled, mirrored):
    _, roll, original = rolled
    _, mirrored_roll, flipped = mirrored
    np.testing.assert_allclose(mirrored_roll, -roll)
    a, b = original.curve.to_ypr(), flipped.curve.to_ypr()
    assert np.corrcoef(b[:, 2], -a[:, 2])[0, 1] >= 0.95  # roll flips
    assert np.corrcoef(b[:, 2], mirrored_roll)[0, 1] >= 0.95
    assert np.abs(b[:, 0] + a[:, 0]).mean() < 2.0  # yaw flips (it stays near 0 for a photo rolled in-plane)
    assert np.corrcoef(b[:, 3], -a[:, 3])[0, 1] > 0.9  # x mirrors too


def test_frames_without_a_face_are_bridged_and_reported(detector):
    frames, _ = rolling_video(frames=12, scale=0.7)
    frames[4:7] = background(frames.shape[2], frames.shape[1], seed=3)
    as_comfy_images = torch.from_numpy(frames).float() / 255.0  # the node's IMAGE batch
    with pytest.warns(A2HWarning, match=r"bridged 1 gap\(s\) without a face: frames 4-6"):
        curve = pose_from_video(as_comfy_images, 25, detector=detector)
    assert isinstance(curve, PoseCurve) and len(curve) == 12 and np.isfinite(curve.values).all()
    values = curve.to_ypr()
    assert values[3, 5] != values[7, 5] or values[3, 3] != values[7, 3]  # interpolated, not constant filler


def test_pose_command_from_a_video_file_and_the_node(detector, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    frames, _ = rolling_video(frames=10, scale=0.7)
    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, frames.shape[2], frames.shape[1]) as writer:
        writer.write(frames)
    out, plot = tmp_path / "curve.csv", tmp_path / "curve.png"
    assert cli.main(["pose", "--from-video", str(clip), "--face-detector", "mtcnn", "--out", str(out),
                     "--plot", str(plot)]) == 0
    assert "face found in 10" in capsys.readouterr().err
    curve = load_pose_curve(out, fps=None)
    assert len(curve) == 10 and plot.stat().st_size > 1000
    # What generate --pose-curve and the Motion Field node do with it.
    assert len(curve.for_video(25).values) == 10

    import nodes

    node = next(c for c in nodes.NODE_CLASSES if c.__name__ == "Audio2HeadPoseFromVideo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", A2HWarning)
        output = node.execute(fps=25.0, detector="mtcnn", smoothing=0.06,
                              frames=torch.from_numpy(frames).float() / 255.0)
    pose = output.args[0]
    assert isinstance(pose, PoseCurve) and len(pose) == 10
    np.testing.assert_allclose(pose.values, curve.values, atol=0.05 * np.abs(curve.values).max())
    assert json.dumps(output.ui)  # the plot payload for the web extension
