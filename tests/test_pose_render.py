"""Pose-box renderer: pixel agreement with the original's OpenCV drawing, and independent expectations."""
import numpy as np
import pytest
import torch

from a2h_core.errors import Audio2HeadError
from a2h_core.pose import PoseCurve, curve_from_keyframes, rotvec_to_matrix
from a2h_core.pose.render import BOX_POINTS_3D, box_points_2d, project_box, render_pose_boxes
from a2h_core.previews.pose_boxes import preview_pose_boxes
from a2h_core.previews.pose_plot import plot_pose_curve, save_png
from a2h_devkit.pose_boxes import CAMERA_MATRIX, opencv_pose_box, random_poses


@pytest.fixture(scope="module")
def cv2():
    module = pytest.importorskip("cv2", reason="opencv-python-headless (test-only) is not installed")
    if not module.__version__.startswith("4."):
        pytest.skip(f"the original drew with OpenCV 4.x; found {module.__version__}, which draws borders differently")
    return module


def test_matches_opencv_on_random_poses(cv2):
    poses = random_poses(300, seed=0)
    ours = render_pose_boxes(torch.from_numpy(poses)).numpy()
    agreement = np.array([(opencv_pose_box(pose) == ours[i]).mean() for i, pose in enumerate(poses)])
    worst = int(agreement.argmin())
    print(f"pixel agreement over {len(poses)} poses: mean {agreement.mean():.6f}, worst {agreement[worst]:.6f} "
          f"(pose {worst}), identical images {np.mean(agreement == 1.0):.3f}")
    assert agreement.min() >= 0.999, f"pose {worst} agrees on only {agreement[worst]:.5f} of pixels"


@pytest.mark.parametrize("spread", [1.5, 5.0])
def test_matches_opencv_where_boxes_cross_the_border(cv2, spread):
    # Beyond the training range boxes leave the image on every side (1.5x) and reach far past it or behind the
    # camera (5x), exercising OpenCV's clipping and its 16.16 arithmetic on large coordinates.
    poses = random_poses(60, seed=1, spread=spread, dtype=np.float64)
    ours = render_pose_boxes(poses).numpy()
    crossing = 0
    for i, pose in enumerate(poses):
        points = box_points_2d(pose).numpy()
        crossing += bool(((points < 0) | (points > 255)).any())
        np.testing.assert_array_equal(ours[i], opencv_pose_box(pose), err_msg=f"pose {i}")
    assert crossing > 10  # the test really covers the border


def test_points_follow_opencv_projection(cv2):
    poses = random_poses(50, seed=2).astype(np.float64)
    ours = project_box(poses).numpy()
    for i, pose in enumerate(poses):
        theirs, _ = cv2.projectPoints(BOX_POINTS_3D, pose[:3], pose[3:], CAMERA_MATRIX, np.zeros((4, 1)))
        np.testing.assert_allclose(ours[i], theirs.reshape(-1, 2), rtol=0, atol=1e-9)


def test_projection_matches_pinhole_model():
    poses = random_poses(20, seed=3).astype(np.float64)
    camera_points = BOX_POINTS_3D @ rotvec_to_matrix(poses[:, :3]).transpose(0, 2, 1) + poses[:, None, 3:]
    expected = camera_points[..., :2] / camera_points[..., 2:] * 233.333 + 128.0
    np.testing.assert_allclose(project_box(poses).numpy(), expected, rtol=0, atol=1e-9)


def test_points_truncate_toward_zero():
    # Identity rotation, box centred left of the image: the rear corners land at negative fractional x.
    pose = np.array([0.0, 0.0, 0.0, -200.0, 0.0, 300.0])
    projected = project_box(pose).numpy()[0]
    points = box_points_2d(pose).numpy()[0]
    assert (projected[:, 0] < 0).any() and not np.all(projected == np.round(projected))
    np.testing.assert_array_equal(points, np.trunc(projected).astype(np.int64))


def test_axis_aligned_box_has_three_pixel_edges():
    # Identity rotation: the rear square spans x, y in [trunc(128 - 233.333 * 75 / 300), trunc(128 + ...)].
    # A 2-thick OpenCV line along an axis covers the centre row and one row on each side, and the joints are
    # plus-shaped, so the top edge fills rows 68..70 exactly between the corners.
    pose = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 300.0])
    image = render_pose_boxes(pose)[0].numpy()
    low, high = int(128 - 233.333 * 75 / 300), int(128 + 233.333 * 75 / 300)
    assert (low, high) == (69, 186)
    assert (image[low - 1:low + 2, low:high + 1] == 255).all()
    assert (image[low - 2, low + 1:high] == 0).all() and (image[low + 2, low + 5:high - 5] == 0).all()
    assert set(np.unique(image)) == {0.0, 255.0}


def test_batch_equals_one_by_one_and_dtypes():
    poses = random_poses(7, seed=4)
    batch = render_pose_boxes(poses, chunk_size=3)
    assert batch.shape == (7, 256, 256) and batch.dtype == torch.float32
    for i in range(7):
        assert torch.equal(render_pose_boxes(torch.from_numpy(poses[i])), batch[i:i + 1])
    assert torch.equal(render_pose_boxes(PoseCurve(poses.astype(np.float64))), batch)


def test_bad_poses_are_refused():
    with pytest.raises(Audio2HeadError, match=r"\[N, 6\]"):
        render_pose_boxes(np.zeros((3, 5)))
    with pytest.raises(Audio2HeadError, match="NaN"):
        render_pose_boxes(np.array([[0, 0, 0, 0, 0, np.nan]]))


def test_preview_draws_the_box_over_the_image():
    image = torch.full((1, 256, 256, 3), 0.5)
    poses = random_poses(3, seed=5)
    preview = preview_pose_boxes(image, poses, color=(0.0, 1.0, 0.0), opacity=1.0)
    boxes = render_pose_boxes(poses) > 0
    assert preview.shape == (3, 256, 256, 3)
    assert torch.allclose(preview[boxes], torch.tensor([0.0, 1.0, 0.0]).expand(int(boxes.sum()), 3))
    assert torch.all(preview[~boxes] == 0.5)
    larger = preview_pose_boxes(torch.rand(300, 400, 3), poses[:1])
    assert larger.shape == (1, 300, 400, 3) and float(larger.min()) >= 0 and float(larger.max()) <= 1
    with pytest.raises(Audio2HeadError, match="one image or one per pose"):
        preview_pose_boxes(torch.rand(2, 64, 64, 3), poses)


def test_plot_and_png(tmp_path):
    curve = curve_from_keyframes([{"frame": 0, "yaw": 0}, {"frame": 30, "yaw": 20, "x": 10}])
    plot = plot_pose_curve(curve, width=320, height=180, frame=10)
    assert plot.shape == (180, 320, 3) and plot.dtype == torch.float32
    red = (plot[..., 0] > 0.9) & (plot[..., 1] < 0.5)
    assert red.any()  # the yaw line is drawn
    path = tmp_path / "plot.png"
    save_png(plot, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data[-12:]
