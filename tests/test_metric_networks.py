"""LPIPS and FID through the real `lpips` and `pytorch-fid` packages (test dependencies, with torchvision).

The pretrained weights cannot be downloaded here, so every check uses RANDOM weights saved in the real files'
layouts (`a2h_devkit.metric_weights`): torchvision's AlexNet (`alexnet-owt-7be5be79.pth`, LPIPS's trunk; the linear
layers are the real ones from the lpips wheel) and pytorch-fid's FID Inception
(`pt_inception-2015-12-05-6726825d.pth`). They check the plumbing and the formulas, not the published numbers:

- LPIPS: identical frames give 0, noisier frames more, and the value matches a hand computation of the LPIPS formula
  on the same weights within 1e-5; a local file and the torch download cache give the same network.
- FID: the features come from the package's own InceptionV3 loading the given file (the same as from its download
  cache), and our Fréchet distance matches pytorch-fid's own `calculate_frechet_distance` within 1e-9.
- Offline: the skip reason names the file, its URL and the cache folder; a bad local file is a clear error.
"""
import shutil

import numpy as np
import pytest
import torch

from a2h_core.errors import Audio2HeadError
from a2h_core.training.metric_networks import ALEXNET_URL, FID_WEIGHTS_URL, InceptionFeatures, LpipsMetric
from a2h_core.training.video_metrics import frechet_distance, gaussian_statistics
from a2h_devkit.metric_weights import random_alexnet_file, random_fid_inception_state

lpips = pytest.importorskip("lpips")
torchvision = pytest.importorskip("torchvision")
fid_inception = pytest.importorskip("pytorch_fid.inception")
fid_score = pytest.importorskip("pytorch_fid.fid_score")

CPU = torch.device("cpu")
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
# LPIPS v0.1's input scaling (Zhang et al. 2018, the lpips package's ScalingLayer): (x - shift) / scale.
LPIPS_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
LPIPS_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
ALEXNET_TAPS = (1, 4, 7, 9, 11)  # the ReLUs of torchvision's AlexNet `features` LPIPS compares


def _frames(seed: int, count: int = 3, size: int = 64, noise: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.clip(rng.normal(128, 50, (count, size, size, 3)), 0, 255)
    return np.clip(base + rng.normal(0, noise, base.shape) if noise else base, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def alexnet_state(tmp_path_factory):
    path = random_alexnet_file(tmp_path_factory.mktemp("alexnet") / ALEXNET_FILE)
    return torch.load(path, weights_only=True)


def _lpips_by_hand(state: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalise each tapped feature over channels, square the difference, weight the channels with the wheel's
    linear layers, average over space, sum over layers."""
    trunk = torchvision.models.alexnet()
    trunk.load_state_dict(state)
    linear = torch.load(f"{lpips.__path__[0]}/weights/v0.1/alex.pth", map_location="cpu", weights_only=True)

    def taps(frames):
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
        x = (x - LPIPS_SHIFT) / LPIPS_SCALE
        out = []
        for index, layer in enumerate(trunk.features[:max(ALEXNET_TAPS) + 1]):
            x = layer(x)
            if index in ALEXNET_TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        total = 0
        for layer, (fa, fb) in enumerate(zip(taps(a), taps(b))):
            weights = linear[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
            total = total + ((fa - fb) ** 2 * weights).sum(1).mean((1, 2))
    return total.double().numpy()


def test_lpips_on_random_alexnet_matches_the_formula(alexnet_state, tmp_path, offline_torch_hub):
    local = tmp_path / "my_alexnet.pth"
    torch.save(alexnet_state, local)
    from_file = LpipsMetric(CPU, local)
    assert from_file.reason is None and isinstance(from_file.model, lpips.LPIPS)
    shutil.copy(local, offline_torch_hub / ALEXNET_FILE)  # as if torchvision had downloaded it
    from_cache = LpipsMetric(CPU)
    assert from_cache.reason is None

    real = _frames(0)
    slightly, very = _frames(0, noise=10), _frames(0, noise=60)
    assert np.abs(from_file(real, real)).max() < 1e-6
    near, far = from_file(slightly, real), from_file(very, real)
    assert (near > 0).all() and (far > near).all()
    assert np.abs(near - _lpips_by_hand(alexnet_state, slightly, real)).max() < 1e-5
    assert np.abs(far - _lpips_by_hand(alexnet_state, very, real)).max() < 1e-5
    assert np.abs(from_cache(very, real) - far).max() < 1e-6


def test_lpips_offline_and_bad_file_messages(alexnet_state, tmp_path, offline_torch_hub):
    offline = LpipsMetric(CPU)
    assert offline.model is None
    assert ALEXNET_FILE in offline.reason and ALEXNET_URL in offline.reason and str(offline_torch_hub) in offline.reason
    assert "--lpips-backbone-weights" in offline.reason
    with pytest.raises(Audio2HeadError, match="no such file"):
        LpipsMetric(CPU, tmp_path / "absent.pth")
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in alexnet_state.items() if not k.startswith("features.10")}, partial)
    with pytest.raises(Audio2HeadError, match=r"lacks features\.10"):
        LpipsMetric(CPU, partial)


@pytest.fixture(scope="module")
def inception_state():
    return random_fid_inception_state()


def test_fid_features_come_from_the_package_inception(inception_state, tmp_path, offline_torch_hub):
    local = tmp_path / "inception_copy.pth"
    torch.save(inception_state, local)
    from_file = InceptionFeatures(CPU, local)
    assert from_file.reason is None and isinstance(from_file.model, fid_inception.InceptionV3)
    first_conv = from_file.model.blocks[0][0].conv.weight
    assert torch.equal(first_conv, inception_state["Conv2d_1a_3x3.conv.weight"])

    shutil.copy(local, offline_torch_hub / INCEPTION_FILE)  # pytorch-fid's own loader finds it in the cache
    from_cache = InceptionFeatures(CPU)
    assert from_cache.reason is None
    frames = _frames(1, count=2)
    features = from_file(frames)
    assert features.shape == (2, 2048) and features.std() > 1e-3
    assert np.abs(features - from_cache(frames)).max() < 1e-5



def test_frechet_distance_matches_pytorch_fid():
    rng = np.random.default_rng(0)
    mixing = rng.normal(0, 0.3, (64, 64))
    a, b = rng.normal(0, 1, (300, 64)), rng.normal(0.2, 1.3, (300, 64)) @ mixing
    ours = frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))
    reference = fid_score.calculate_frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))
    assert ours == pytest.approx(reference, rel=1e-9)


def test_fid_offline_and_bad_file_messages(inception_state, tmp_path, offline_torch_hub):
    offline = InceptionFeatures(CPU)
    assert offline.model is None
    assert INCEPTION_FILE in offline.reason and FID_WEIGHTS_URL in offline.reason
    assert str(offline_torch_hub) in offline.reason and "--inception-weights" in offline.reason
    wrong = tmp_path / "wrong.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(Audio2HeadError, match="does not fit FID's Inception"):
        InceptionFeatures(CPU, wrong)
