"""Face detection and the automatic crop on real photographs (scikit-image's astronaut in built scenes).

The offline detector's weights come from the `mtcnn` package (requirements.txt); nothing is downloaded. YuNet's
real weights cannot be fetched here: its network is checked against kornia's reference implementation on random
weights instead (skipped without kornia).
"""
import io
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from a2h_core import cli
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.face import detectors, face_crop, load_face_detector
from a2h_core.face import weights as face_weights
from a2h_core.face.framing import DEFAULT_FRAMING, face_size
from a2h_core.io.image import CropBox, crop_padded, prepare_source_image
from a2h_core.previews.face_boxes import CROP_COLOUR, FACE_COLOUR, draw_face_crop

pytest.importorskip("skimage", reason="the test photographs come from scikit-image (requirements-test.txt)")
from a2h_devkit.face_scenes import background, build_scenes, scene

ROOT = Path(__file__).resolve().parents[1]
SCENES = build_scenes()


@pytest.fixture(scope="module")
def mtcnn():
    if face_weights.find_mtcnn() is None:
        pytest.skip("the 'mtcnn' package (its weight files) is not installed: pip install -r requirements.txt")
    return load_face_detector("mtcnn")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No downloads and no YuNet weights anywhere: auto must fall back to MTCNN."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real = face_weights.find_yunet
    monkeypatch.setattr(face_weights, "find_yunet",
                        lambda models_dir=None: real(models_dir) if models_dir else None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(face_weights.MODELS_DIR_ENV, raising=False)
    detectors._CACHE.clear()
    yield
    detectors._CACHE.clear()


def overlap(a, b) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def contains(outer, inner, slack: float = 0.0) -> bool:
    return (outer[0] - slack <= inner[0] and outer[1] - slack <= inner[1]
            and inner[0] + inner[2] <= outer[0] + outer[2] + slack
            and inner[1] + inner[3] <= outer[1] + outer[3] + slack)


# ------------------------------------------------------------------------------------------------ the command line
@pytest.mark.parametrize("built", SCENES, ids=lambda s: s.name)
def test_crop_command_finds_the_face_on_every_scene(built, mtcnn, offline, tmp_path, capsys):
    path = tmp_path / f"{built.name}.jpg"
    Image.fromarray(built.image).save(path, quality=92)
    assert cli.main(["crop", "--image", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["detector"] == "mtcnn" and "auto chose MTCNN" in result["detector_info"]
    truth = built.faces[0]
    face, crop = result["face"], result["crop"]
    assert overlap(face, truth) > 0.5, (face, truth)
    assert crop[2] == crop[3]  # square
    assert contains(crop, face)  # head and shoulders around the face
    assert 1.8 < crop[2] / face[2] < 4.0  # the face is about a quarter to a half of the crop's width
    assert result["score"] > 0.9
    assert len(result["faces"]) == len(built.faces)


def test_crop_command_as_a_process_with_preview(tmp_path):
    """The real entry point, offline, with the preview of both boxes."""
    built = SCENES[0]
    path, preview = tmp_path / "portrait.png", tmp_path / "boxes.png"
    Image.fromarray(built.image).save(path)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "a2h_core", "crop", "--image", str(path), "--json", "--preview",
                           str(preview)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    if "offline detector needs" in done.stderr:
        pytest.skip("the 'mtcnn' package is not installed")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"face", "crop", "detector", "score"}
    drawn = np.asarray(Image.open(preview).convert("RGB"))
    assert drawn.shape == built.image.shape
    x, y, _, h = result["crop"]
    assert tuple(drawn[y + h // 2, x + 1]) == CROP_COLOUR  # the crop's left edge
    fx, fy, _, fh = (round(v) for v in result["face"])
    assert np.abs(drawn[fy + fh // 2, fx - 2:fx + 3].astype(int) - FACE_COLOUR).sum(1).min() < 30


def test_no_face_names_the_picture_and_the_ways_out(mtcnn, tmp_path, capsys):
    path = tmp_path / "wall.png"
    Image.fromarray(background(640, 480, seed=9)).save(path)
    assert cli.main(["crop", "--image", str(path), "--face-detector", "mtcnn"]) == 2
    message = capsys.readouterr().err
    assert "no face found in" in message and "wall.png" in message
    assert "--crop X,Y,W,H" in message and "--crop none" in message
    assert len(message.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ several faces
def test_largest_face_by_default_with_a_warning_and_face_index(mtcnn):
    built = SCENES[4]  # second_smaller_face
    with pytest.warns(A2HWarning, match="2 faces found.*largest.*face_index"):
        largest = face_crop(built.image, detector=mtcnn)
    assert overlap(largest.face.box, built.faces[0]) > 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = face_crop(built.image, detector=mtcnn, face_index=1)
    assert overlap(other.face.box, built.faces[1]) > 0.5
    with pytest.raises(Audio2HeadError, match="face_index 2 does not exist: 2 face"):
        face_crop(built.image, detector=mtcnn, face_index=2)


def test_overrides_change_scale_and_offset(mtcnn):
    built = SCENES[0]
    base = face_crop(built.image, detector=mtcnn)
    wide = face_crop(built.image, detector=mtcnn, scale=2 * DEFAULT_FRAMING.scale)
    higher = face_crop(built.image, detector=mtcnn, offset=DEFAULT_FRAMING.offset - 0.5)
    assert abs(wide.box.width - 2 * base.box.width) <= 2
    size = face_size(base.face.landmarks)
    assert higher.box.y == pytest.approx(base.box.y - 0.5 * size, abs=1.5) and higher.box.width == base.box.width
    with pytest.raises(Audio2HeadError, match=r"scale of 0\.5\.\.20"):
        face_crop(built.image, detector=mtcnn, scale=0.1)


def test_mirrored_picture_keeps_the_landmark_order(mtcnn):
    built = SCENES[0]
    face = mtcnn.detect(built.image)[0]
    mirrored = mtcnn.detect(np.ascontiguousarray(built.image[:, ::-1]))[0]
    assert face.landmarks[0, 0] < face.landmarks[1, 0] and mirrored.landmarks[0, 0] < mirrored.landmarks[1, 0]
    width = built.image.shape[1]
    np.testing.assert_allclose(width - 1 - mirrored.landmarks[1, 0], face.landmarks[0, 0], atol=4)


def test_tiny_face_warns_and_batches_are_refused(mtcnn):
    tiny = scene("tiny", 800, 600, [(300, 200, 0.45, 0.0)], seed=3)
    with pytest.warns(A2HWarning, match="is small"):
        face_crop(tiny.image, detector=mtcnn)
    with pytest.raises(Audio2HeadError, match="batch of 2 images"):
        mtcnn.detect(torch.zeros(2, 64, 64, 3))


# ------------------------------------------------------------------------------------------------ edges
def test_crop_past_the_edge_is_padded_by_repeating_the_edge():
    rgb = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    cut = crop_padded(rgb, CropBox(-2, -1, 5, 4))
    assert cut.shape == (4, 5, 3)
    np.testing.assert_array_equal(cut[1:, 2:], rgb[:3, :3])
    np.testing.assert_array_equal(cut[0, 0], rgb[0, 0])  # corner repeated
    np.testing.assert_array_equal(cut[2, 0], rgb[1, 0])  # left edge repeated along its row
    picture = np.zeros((64, 64, 3), np.uint8)  # crop boxes need 32x32 pixels (the issue-16 limit)
    source, info = prepare_source_image(picture, CropBox(-8, -4, 40, 40))
    assert source.shape == (1, 3, 256, 256) and info.box == CropBox(-8, -4, 40, 40)
    with pytest.raises(Audio2HeadError, match="entirely outside"):
        prepare_source_image(picture, CropBox(64, 0, 40, 40))


# ------------------------------------------------------------------------------------------------ detectors
def test_auto_offline_uses_mtcnn_and_says_why(mtcnn, offline):
    chosen = load_face_detector("auto")
    assert chosen.name == "mtcnn" and "YuNet" in chosen.note
    with pytest.raises(Audio2HeadError, match=r"yunet_final\.pth.*put it into .*pip install mtcnn"):
        load_face_detector("yunet")


def test_yunet_file_and_folder_and_bad_choices(tmp_path, offline):
    from a2h_core.face.networks.yunet import YuNet

    torch.save(YuNet().state_dict(), tmp_path / face_weights.YUNET_FILE)
    for choice in (tmp_path / face_weights.YUNET_FILE, tmp_path):
        found = load_face_detector(choice)
        assert found.name == "yunet"
        found.detect(np.zeros((64, 80, 3), np.uint8))  # random weights: any result, no crash
    assert load_face_detector("yunet", models_dir=tmp_path).name == "yunet"
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(Audio2HeadError, match="do not fit the yunet network"):
        load_face_detector(tmp_path / "other.pth")
    with pytest.raises(Audio2HeadError, match="is unknown: choose auto, yunet, mtcnn"):
        load_face_detector("retinaface")


def test_yunet_matches_kornia_reference_on_random_weights():
    kornia_yunet = pytest.importorskip("kornia.models.yunet", reason="kornia is the reference (requirements-test)")
    from kornia.contrib import FaceDetector as KorniaFaceDetector

    from a2h_core.face.networks.yunet import YuNet

    torch.manual_seed(0)
    reference = kornia_yunet.YuNet("test", pretrained=False).eval()
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    ours = YuNet().eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    image = torch.rand(1, 3, 120, 200) * 255
    with torch.no_grad():
        expected = reference(image)
        loc, face, iou = ours(image)
    torch.testing.assert_close(loc, expected["loc"])
    torch.testing.assert_close(face, expected["conf"][..., 1])
    torch.testing.assert_close(iou, expected["iou"][..., 0])
    # Decoding: kornia's post-processing of the same outputs gives our boxes, landmarks and scores.
    wrapper = KorniaFaceDetector.__new__(KorniaFaceDetector)
    torch.nn.Module.__init__(wrapper)
    wrapper.min_sizes, wrapper.steps, wrapper.variance, wrapper.clip = ours.config.min_sizes, [8, 16, 32, 64], \
        [0.1, 0.2], False
    wrapper.top_k, wrapper.keep_top_k, wrapper.confidence_threshold, wrapper.nms_threshold = 5000, 750, 0.5, 0.3
    from kornia.geometry.bbox import nms as kornia_nms
    wrapper.nms = kornia_nms
    kornia_dets = wrapper.postprocess(expected, 120, 200)[0]
    detector = detectors.FaceDetector("yunet", {"yunet": ours}, torch.device("cpu"))
    rgb = image[0].permute(1, 2, 0).flip(-1).numpy()  # our detector flips RGB to BGR itself
    with torch.inference_mode():
        faces = detectors._detect_yunet(detector, rgb, threshold=0.5)
    assert len(faces) == len(kornia_dets) > 0
    for face, row in zip(sorted(faces, key=lambda f: -f.score), kornia_dets):
        np.testing.assert_allclose(face.box[:2], row[:2].numpy(), atol=1e-3)
        np.testing.assert_allclose(face.landmarks, row[4:14].view(5, 2).numpy(), atol=1e-3)
        assert face.score == pytest.approx(float(row[14]), abs=1e-5)


def test_weight_reader_refuses_anything_but_arrays(tmp_path):
    lz4_frame = pytest.importorskip("lz4.frame", reason="lz4 comes with the mtcnn package")

    class Sneaky:
        def __reduce__(self):
            return (print, ("executed",))

    (tmp_path / "pnet.lz4").write_bytes(lz4_frame.compress(pickle.dumps([Sneaky()])))
    with pytest.raises(Audio2HeadError, match="is not a numpy array"):
        face_weights._read_joblib_arrays(tmp_path / "pnet.lz4")
    buffer = io.BytesIO()
    pickle.dump([np.zeros(3, np.float32)], buffer)
    (tmp_path / "rnet.lz4").write_bytes(lz4_frame.compress(buffer.getvalue()))
    assert face_weights._read_joblib_arrays(tmp_path / "rnet.lz4")[0].shape == (3,)


def test_preview_draws_face_and_crop(mtcnn):
    built = SCENES[5]  # face_at_the_edge: the crop reaches past the left edge, drawn on a grey margin
    crop = face_crop(built.image, detector=mtcnn)
    assert crop.box.x < 0 and crop.to_dict()["padded"]
    drawn = draw_face_crop(built.image, crop)
    assert drawn.shape[1] == built.image.shape[1] - crop.box.x
    assert tuple(drawn[crop.box.y + crop.box.height // 2, 0]) == CROP_COLOUR
    small = draw_face_crop(built.image, crop, max_side=300)
    assert max(small.shape[:2]) == 300
