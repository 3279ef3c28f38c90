"""`generate` on real portraits: automatic crop by default, full-resolution paste-back, and paste-back on a GPU.

Reduced random weights animate the face (the generated face is noise-like); what is checked is the geometry: the
video has the picture's full (even) size, the picture is unchanged outside the crop, and the crop was animated.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from a2h_core import cli
from a2h_core.config import ModelConfig
from a2h_core.face import weights as face_weights
from a2h_core.io.image import CropBox, CropInfo, paste_back
from a2h_core.io.video import read_video_frames
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.media import read_video_info

pytest.importorskip("skimage", reason="the test photographs come from scikit-image (requirements-test.txt)")
from a2h_devkit.face_scenes import scene


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Reduced random weights, 0.5 s of a buzzing 'voice', and a 701x901 portrait photo (odd sides)."""
    from safetensors.torch import save_file
    from scipy.io import wavfile

    if face_weights.find_mtcnn() is None:
        pytest.skip("the 'mtcnn' package (the offline detector's weights) is not installed")
    folder = tmp_path_factory.mktemp("portrait")
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()},
              folder / "reduced.safetensors", metadata={"config": "reduced"})
    rate = 16000
    t = np.arange(int(0.5 * rate)) / rate
    voice = 0.3 * np.sign(np.sin(2 * np.pi * (120 + 30 * t) * t))
    wavfile.write(folder / "speech.wav", rate, (voice * 32767).astype(np.int16))
    portrait = scene("portrait", 701, 901, [(-40, 180, 1.2, 0.0)], seed=6)
    Image.fromarray(portrait.image).save(folder / "portrait.jpg", quality=95)
    return folder


def test_generate_crops_the_face_and_pastes_it_back_at_full_resolution(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "talking.mp4"
    code = cli.main(["generate", "--image", str(inputs / "portrait.jpg"), "--audio", str(inputs / "speech.wav"),
                     "--weights", str(inputs / "reduced.safetensors"), "--out", str(out), "--batch-size", "10"])
    err = capsys.readouterr().err
    assert code == 0, err
    line = next(text for text in err.splitlines() if text.startswith("face found by"))
    x, y, w, h = (int(v) for v in line.split("crop ")[1].split()[0].split(","))
    info = read_video_info(out)
    assert (info["width"], info["height"]) == (700, 900)  # the full picture, cut to even sides
    assert info["frames"] >= 10
    frames, fps = read_video_frames(out, max_frames=3)
    assert fps == 25 and frames.shape == (3, 900, 700, 3)
    picture = np.asarray(Image.open(inputs / "portrait.jpg").convert("RGB"))[:900, :700].astype(float)
    outside = np.ones((900, 700), bool)
    outside[max(y, 0):y + h, max(x, 0):x + w] = False
    assert np.abs(frames[2][outside] - picture[outside]).mean() < 3  # H.264 noise only
    centre = (slice(y + h // 3, y + 2 * h // 3), slice(x + w // 3, x + 2 * w // 3))
    assert np.abs(frames[2][centre] - picture[centre]).mean() > 10  # the (random-weight) face was pasted in


def test_paste_back_of_a_box_past_the_edge_blends_only_the_visible_part():
    full = np.full((100, 120, 3), 50, np.uint8)
    faces = np.full((2, 256, 256, 3), 250, np.uint8)
    out = paste_back(faces, CropInfo(full, CropBox(-30, 60, 80, 80)), feather_fraction=0.1)
    assert out.shape == (2, 100, 120, 3)
    assert (out[:, 70:, :38] == 250).all()  # inside the visible part (the box's left edge is outside the picture)
    assert (out[:, :60] == 50).all() and (out[:, :, 50:] == 50).all()
    assert 50 < out[0, 70, 48, 0] < 250  # feathered along the box's right edge


def test_paste_back_tensor_path_matches_the_array_path():
    rng = np.random.default_rng(1)
    full = rng.integers(0, 256, (181, 243, 3), dtype=np.uint8)
    faces = rng.integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    info = CropInfo(full, CropBox(100, -20, 150, 150))
    on_arrays = paste_back(faces, info, 0.1)
    on_tensors = paste_back(torch.from_numpy(faces), info, 0.1)
    assert isinstance(on_tensors, torch.Tensor)
    np.testing.assert_array_equal(on_tensors.numpy(), on_arrays)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_paste_back_on_the_gpu_matches_the_cpu_within_one_grey_level():
    rng = np.random.default_rng(2)
    full = rng.integers(0, 256, (1081, 1921, 3), dtype=np.uint8)
    faces = rng.integers(0, 256, (8, 256, 256, 3), dtype=np.uint8)
    for box in (CropBox(700, 200, 517, 517), CropBox(-100, 900, 300, 300), CropBox(1800, 10, 100, 100)):
        info = CropInfo(full, box)
        cpu = paste_back(faces, info, 0.1).astype(int)
        gpu = paste_back(torch.from_numpy(faces).cuda(), info, 0.1)
        assert gpu.device.type == "cuda"
        assert np.abs(gpu.cpu().numpy().astype(int) - cpu).max() <= 1
