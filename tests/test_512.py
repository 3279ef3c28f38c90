"""The 512-pixel configuration: every network's forward and backward pass at reduced widths, `generate` with random
weights writing a 512 x 512 MP4, conversion and loading, and the pose-box camera scaling with the image."""
import av
import numpy as np
import pytest
import torch
from PIL import Image

from a2h_core.cli import main
from a2h_core.config import ModelConfig
from a2h_core.io.weights import load_models, save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose.render import project_box, render_pose_boxes
from a2h_devkit.random_weights import random_state, save_original
from a2h_devkit.speech import speech_like, write_wav
from a2h_devkit.synthetic_clips import small_frame_config

SIZE = 512


def test_at_image_size_keeps_the_working_resolutions():
    config = ModelConfig.published().at_image_size(SIZE)
    assert config.image_size == SIZE
    assert config.kp_detector.scale_factor == 0.125 and config.generator.dense_motion.scale_factor == 0.125
    assert ModelConfig.published().at_image_size(256) == ModelConfig.published()  # 256 is the published model
    with pytest.raises(ValueError):
        ModelConfig.published().at_image_size(500)


def test_every_network_trains_at_512():
    torch.manual_seed(0)
    models = Audio2HeadModels(small_frame_config(size=SIZE)).train().requires_grad_(True)
    image = torch.rand(2, 3, SIZE, SIZE)
    kp, heatmaps = models.kp_detector(image, with_heatmaps=True)
    assert heatmaps.shape[-2:] == (58, 58)  # the detector works at 64 x 64, as at 256
    frames = models.generator(image, None, kp[:2], kp[[1, 0]])
    assert frames["prediction"].shape == (2, 3, SIZE, SIZE)
    assert frames["deformation"].shape[1:3] == (64, 64)  # dense motion at 64 x 64, as at 256
    seq_len = models.config.motion_field.seq_len
    boxes = render_pose_boxes(np.tile([0.1, -0.2, 0.05, 10.0, -5.0, 280.0], (seq_len, 1)), size=SIZE)
    driving, motion_heatmaps = models.audio2kp(torch.randn(1, seq_len, 4, 41), boxes[None], image[:1],
                                               with_heatmaps=True)
    assert driving.value.shape == (seq_len, 10, 2) and motion_heatmaps.shape[-2:] == heatmaps.shape[-2:]
    poses = models.audio2pose(image, torch.randn(2, 5, 4, 41))
    loss = (frames["prediction"].mean() + driving.value.sum() + driving.jacobian.sum() + poses.sum()
            + kp.jacobian.sum())
    loss.backward()
    for name, parameter in models.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_generate_writes_a_512_video(tmp_path):
    weights = tmp_path / "random512.safetensors"
    torch.manual_seed(0)
    save_models(Audio2HeadModels(small_frame_config(size=SIZE)), weights)
    image = tmp_path / "portrait.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 260, 3), dtype=np.uint8)).save(image)
    audio = tmp_path / "speech.wav"
    write_wav(audio, speech_like(1.0), 16000)
    out = tmp_path / "out.mp4"
    assert main(["generate", "--image", str(image), "--audio", str(audio), "--weights", str(weights), "--out",
                 str(out), "--crop", "none"]) == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (SIZE, SIZE)
        assert sum(1 for _ in container.decode(video=0)) >= 24  # 1 s of speech at 25 fps


def test_convert_and_load_a_512_checkpoint(tmp_path):
    """A checkpoint in the original's pickle layout trained at 512 converts with --config and loads as 512."""
    config = ModelConfig.reduced().at_image_size(SIZE)
    original = save_original(random_state(config, seed=1), tmp_path / "trained512.pth.tar")
    out = tmp_path / "trained512.safetensors"
    assert main(["convert", str(original), str(out), "--config", "reduced-512"]) == 0
    models = load_models(out)
    assert models.config == config and models.config.image_size == SIZE


def test_pose_box_camera_scales_with_the_image():
    """Focal length and principal point scale with the side (233.333 and 128 at 256): the projected box at 512 is
    the one at 256 times two, so a pose draws the same box relative to the frame."""
    poses = np.array([[0.1, -0.2, 0.05, 10.0, -5.0, 280.0], [-0.3, 0.2, 0.1, -40.0, 20.0, 330.0]])
    assert torch.allclose(project_box(poses, size=SIZE), 2 * project_box(poses, size=256), atol=1e-9)
    assert render_pose_boxes(poses, size=SIZE).shape == (2, SIZE, SIZE)


def test_nodes_follow_a_512_model(tmp_path, monkeypatch, run_node, comfy_image, comfy_audio):
    """The ComfyUI nodes prepare the portrait at the loaded model's image size: Crop with the model connected cuts
    a 512x512 face, and the stage nodes render 512x512 frames (random reduced-width 512 networks)."""
    torch.manual_seed(0)
    save_models(Audio2HeadModels(small_frame_config(size=SIZE)), tmp_path / "random512.safetensors")
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(tmp_path))
    model = run_node("Audio2HeadModelLoader", weights="random512.safetensors", device="cpu", dtype="fp32")[0]
    manual = {"mode": "manual", "detector": "auto", "face_index": 0, "crop_scale": 3.8, "crop_offset": -0.5,
              "x": 40, "y": 20, "width": 150, "height": 150}
    picture = comfy_image(height=181, width=240)
    assert run_node("Audio2HeadCrop", image=picture, **manual)[0].shape == (1, 256, 256, 3)  # no model: 256
    face = run_node("Audio2HeadCrop", image=picture, **manual, model=model)[0]
    assert face.shape == (1, SIZE, SIZE, 3)
    features = run_node("Audio2HeadAudioFeatures", audio=comfy_audio(seconds=0.5))[0]
    pose = run_node("Audio2HeadPosePredictor", model=model, image=face, features=features)[0]
    kp_source = run_node("Audio2HeadKeypointDetector", model=model, image=face)[0]
    kp_driving = run_node("Audio2HeadMotionField", model=model, image=face, features=features, pose=pose)[0]
    frames = run_node("Audio2HeadGenerator", model=model, image=face, source_keypoints=kp_source,
                      driving_keypoints=kp_driving, batch_size=4)[0]
    assert frames.shape == (features.num_frames, SIZE, SIZE, 3) and float(frames.std()) > 0
