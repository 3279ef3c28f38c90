"""One curve-to-video policy for every path: `PoseCurve.for_video` resamples a curve to 25 fps and warns when it is
shorter than the video or leaves the training range. The pipeline and the stage-by-stage Motion Field node both
apply it (the node used to skip it and drove a 50 fps curve at double speed)."""
import numpy as np
import pytest
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FPS
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.inference.wrapper import frame_poses
from a2h_core.pose import DEFAULT_POSE, PoseCurve
from nodes.pose import source_tensor

FRAMES = 12


def _nodding_curve(num_poses: int, fps: float) -> PoseCurve:
    """A head nodding 1.5 times a second, sampled at `fps`."""
    t = np.arange(num_poses) / fps
    values = np.repeat(DEFAULT_POSE[None], num_poses, 0)
    values[:, 0] = 0.2 * np.sin(2 * np.pi * 1.5 * t)
    return PoseCurve(values, fps)


def test_a_curve_at_another_rate_is_resampled_and_a_short_one_is_reported():
    curve = _nodding_curve(2 * FRAMES - 4, fps=50)  # 0.38 s: shorter than the 0.52 s the video needs
    with pytest.warns(A2HWarning, match=f"needs {FRAMES + 1}.*last pose is held"):
        video = curve.for_video(FRAMES)
    assert video.fps == FPS and len(video) == 10  # 20 poses at 50 fps span 0.38 s: 10 poses at 25 fps
    np.testing.assert_allclose(video.values[:, 0], 0.2 * np.sin(2 * np.pi * 1.5 * np.arange(len(video)) / FPS),
                               atol=2e-3)  # linear interpolation of a 1.5 Hz sine sampled at 50 Hz


def test_a_long_enough_curve_at_25_fps_passes_unchanged(recwarn):
    curve = _nodding_curve(FRAMES + 1, fps=FPS)
    assert curve.for_video(FRAMES) is curve
    assert not [w for w in recwarn if issubclass(w.category, A2HWarning)]


def test_the_wrapper_refuses_a_curve_that_skipped_the_policy():
    with pytest.raises(Audio2HeadError, match=r"50 fps.*for_video"):
        frame_poses(_nodding_curve(30, fps=50), FRAMES)


def test_the_motion_field_node_applies_the_pipeline_policy(reduced_weights, run_node, comfy_image, monkeypatch):
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(reduced_weights.parent))
    model = run_node("Audio2HeadModelLoader", weights=reduced_weights.name, device="cpu", dtype="fp32")[0]
    image = comfy_image(256, 256)
    features = AudioFeatures(np.random.default_rng(3).normal(size=(FRAMES * 4, 41)))
    curve = _nodding_curve(2 * FRAMES - 4, fps=50)
    with pytest.warns(A2HWarning, match="last pose is held"):
        from_node = run_node("Audio2HeadMotionField", model=model, image=image, features=features, pose=curve)[0]
    with model.wrapper() as wrapper, pytest.warns(A2HWarning):
        as_pipeline = wrapper.driving_keypoints(source_tensor(image, model), features, curve.for_video(FRAMES))
    # The same instance on the same input: identical, bit for bit.
    torch.testing.assert_close(from_node.value, as_pipeline.value.cpu(), rtol=0, atol=0)
