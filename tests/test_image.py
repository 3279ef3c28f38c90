"""Source-image preparation, the OpenCV-exact resize, crop boxes and paste-back geometry."""
import numpy as np
import pytest
import torch

from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.io.image import (
    CropBox,
    CropInfo,
    even_size,
    feather_mask,
    image_to_tensor,
    load_image,
    paste_back,
    prepare_source_image,
    resize_uint8,
)

SIZES = [(512, 512), (300, 400), (1080, 1920), (100, 80), (257, 255), (37, 500), (256, 256), (1024, 768)]


def _random_image(height, width, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


@pytest.mark.parametrize("height,width", SIZES)
def test_resize_matches_opencv_bit_for_bit(height, width):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is the reference for the resize")
    image = _random_image(height, width, seed=height * width)
    np.testing.assert_array_equal(resize_uint8(image, 256, 256), cv2.resize(image, (256, 256)))


def test_resize_of_a_smooth_image_is_bilinear():
    # Independent expectation: a horizontal ramp stays a ramp (linear functions are reproduced by bilinear).
    ramp = np.tile(np.arange(0, 256, 2, dtype=np.uint8)[None, :, None], (64, 1, 3))  # 64 x 128
    out = resize_uint8(ramp, 64, 64).astype(int)
    interior = out[:, 1:-1, 0]
    np.testing.assert_allclose(np.diff(interior, axis=1), 4, atol=1)
    assert (out == out[:1]).all()  # every row is the same


def test_source_tensor_is_uint8_times_float32_reciprocal():
    image = _random_image(256, 256)
    tensor = image_to_tensor(image)
    assert tensor.shape == (1, 3, 256, 256) and tensor.dtype == torch.float32
    expected = image.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(tensor[0].numpy(), expected)


def test_grayscale_rgba_and_float_inputs_agree():
    gray = _random_image(300, 200, channels=1)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full_like(gray[:, :, None], 7)], axis=2)
    comfy = torch.from_numpy(rgb.astype(np.float32) / 255.0)[None]  # ComfyUI IMAGE [1, H, W, 3]
    reference = load_image(rgb)
    for variant in (gray, gray[:, :, None], rgba, comfy, comfy[0]):
        np.testing.assert_array_equal(load_image(variant), reference)


def test_image_files_and_errors(tmp_path):
    from PIL import Image

    image = _random_image(120, 90, channels=4)
    Image.fromarray(image, "RGBA").save(tmp_path / "face.png")
    Image.fromarray(image[:, :, 0], "L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(load_image(tmp_path / "face.png"), image[:, :, :3])
    assert load_image(str(tmp_path / "gray.png")).shape == (120, 90, 3)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(Audio2HeadError, match="cannot read the source image"):
        load_image(tmp_path / "broken.png")
    with pytest.raises(Audio2HeadError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(Audio2HeadError, match="batch of 2 images"):
        load_image(torch.zeros(2, 8, 8, 3))
    with pytest.raises(Audio2HeadError, match="channels"):
        load_image(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(Audio2HeadError, match="NaN"):
        load_image(np.full((8, 8, 3), np.nan, np.float32))


def test_crop_box_parsing_and_bounds():
    assert CropBox.parse("10, 20,30,40") == CropBox(10, 20, 30, 40)
    with pytest.raises(Audio2HeadError, match="x,y,width,height"):
        CropBox.parse("10,20,30")
    CropBox(80, 0, 30, 30).check_overlaps(100, 50)  # partly outside: padded, not refused
    with pytest.raises(Audio2HeadError, match="entirely outside the 100x50 image"):
        CropBox(100, 0, 30, 30).check_overlaps(100, 50)
    with pytest.raises(Audio2HeadError, match="no area"):
        CropBox(0, 0, 0, 10).check_overlaps(100, 50)


def test_prepare_with_crop_resizes_only_the_box():
    image = _random_image(400, 600)
    source, info = prepare_source_image(image, "100,50,300,300")
    expected = image_to_tensor(resize_uint8(image[50:350, 100:400], 256, 256))
    assert torch.equal(source, expected)  # the same integer resize and the same scaling: exact
    assert info.box == CropBox(100, 50, 300, 300)
    assert info.full_image.shape == (400, 600, 3)
    with pytest.warns(A2HWarning, match="far from square"):
        prepare_source_image(image, "0,0,400,200")


def test_feather_mask_shape_and_ramp():
    mask = feather_mask(40, 20, feather=5)
    assert mask.shape == (20, 40)
    assert mask[10, 20] == 1.0  # centre untouched
    assert 0 < mask[0, 0] < mask[2, 2] < mask[10, 20]  # fades toward the border
    np.testing.assert_array_equal(mask, mask[::-1, ::-1])  # symmetric


def test_paste_back_geometry():
    full = _random_image(101, 151)  # odd size: the output is cut to even
    box = CropBox(40, 30, 60, 50)
    faces = np.full((3, 256, 256, 3), 200, np.uint8)
    out = paste_back(faces, CropInfo(full, box), feather_fraction=0.1)
    assert out.shape == (3, 100, 150, 3) and out.dtype == np.uint8
    assert even_size(151, 101) == (150, 100)
    # Outside the box the picture is unchanged.
    outside = np.ones((100, 150), bool)
    outside[30:80, 40:100] = False
    np.testing.assert_array_equal(out[0][outside], full[:100, :150][outside])
    # The box's centre is the generated face; its border is blended between face and background.
    assert (out[:, 45:65, 60:80] == 200).all()
    corner = out[0, 30, 40].astype(int)
    assert np.all(np.minimum(full[30, 40], 200) <= corner) and np.all(corner <= np.maximum(full[30, 40], 200))


def test_paste_back_box_on_the_odd_border_is_clipped():
    full = _random_image(51, 51)
    out = paste_back(np.zeros((1, 256, 256, 3), np.uint8), CropInfo(full, CropBox(11, 11, 40, 40)), 0.0)
    assert out.shape == (1, 50, 50, 3)
    assert (out[0, 11:50, 11:50] == 0).all()
