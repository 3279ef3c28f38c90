"""Shared fixtures of the test suite.

pytest.ini puts the repository root (`a2h_core`, `nodes`, `a2h_devkit`) and tests/comfy_stub (the `comfy_api` test
double, see its README) on the path. Helpers the tools use as well live in `a2h_devkit`.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from a2h_devkit.random_weights import write_reduced_weights
from a2h_devkit.speech import speech_like
from a2h_devkit.synthetic_clips import prepared_dataset, small_frame_config, write_model_config


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """No test touches the internet: the Hugging Face client (face detector, Hub weights) works offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def offline_torch_hub(tmp_path, monkeypatch):
    """An empty torch download cache ($TORCH_HOME/hub/checkpoints, returned) that refuses downloads as an offline
    machine would: the metric networks' "weights already cached" and "cannot download" paths, without the network."""
    def refuse(url, *args, **kwargs):
        raise OSError(f"offline test: no download of {url}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


@pytest.fixture(autouse=True)
def node_temp_folder(monkeypatch, tmp_path_factory):
    """The nodes' VIDEO files (ComfyUI's temp folder, AUDIO2HEAD_TEMP_DIR outside it) go below pytest's temporary
    folder, not the system's."""
    monkeypatch.setenv("AUDIO2HEAD_TEMP_DIR", str(tmp_path_factory.getbasetemp() / "node_temp"))


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a whole module (`pytestmark = pytest.mark.usefixtures("one_thread")`): the training
    checks compare runs bit for bit and measure learning with the same thread count on every machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reduced_weights(tmp_path_factory):
    """A models/audio2head-like folder holding one file, reduced.safetensors: random reduced-width networks (as
    built after torch.manual_seed(0)) marked "reduced" for the loader, as a user would have a real file. The path of
    the file."""
    return write_reduced_weights(tmp_path_factory.mktemp("audio2head") / "reduced.safetensors")


@pytest.fixture
def weights(reduced_weights, monkeypatch):
    """The name of the reduced weights file, in the folder the loader lists (AUDIO2HEAD_MODELS_DIR)."""
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(reduced_weights.parent))
    return reduced_weights.name


@pytest.fixture(scope="session")
def frames_data(tmp_path_factory):
    """Synthetic talking-head clips prepared at 128 px (8 training and 2 validation clips of 4 s): the data folder
    the N_D/N_I, N_M and video-evaluation tests share. One process: a session fixture may first be asked for after
    torch's thread pool started, and forked workers would then deadlock."""
    return prepared_dataset(tmp_path_factory.mktemp("frames"), train=8, val=2, seconds=4.0, size=128, workers=1)


@pytest.fixture(scope="session")
def frames_config(tmp_path_factory):
    """`small_frame_config()` (reduced widths, 128 px, 16-frame motion windows) as a --config JSON file."""
    return write_model_config(small_frame_config(), tmp_path_factory.mktemp("config") / "small128.json")


@pytest.fixture
def run_node():
    """run_node(node_id, **inputs): calls a node's execute the way ComfyUI does (keyword arguments named by input
    id) and returns its io.NodeOutput."""
    import nodes

    def run(node_id: str, **inputs):
        node = next(cls for cls in nodes.NODE_CLASSES if cls.__name__ == node_id)
        return node.execute(**inputs)

    return run


@pytest.fixture
def comfy_image():
    """comfy_image(height, width, batch, seed): a ComfyUI IMAGE, float32 [B, H, W, 3] of random uint8 / 255 values
    (what LoadImage gives)."""
    def make(height: int = 300, width: int = 220, batch: int = 1, seed: int = 1) -> torch.Tensor:
        pixels = np.random.default_rng(seed).integers(0, 256, size=(batch, height, width, 3), dtype=np.uint8)
        return torch.from_numpy(pixels).float() / 255.0

    return make


@pytest.fixture
def comfy_audio():
    """comfy_audio(seconds, rate, channels): a ComfyUI AUDIO dict of synthetic speech, waveform [1, C, T] float32."""
    def make(seconds: float = 1.3, rate: int = 44100, channels: int = 2) -> dict:
        waveform = torch.from_numpy(speech_like(seconds, rate, channels).astype(np.float32))[None]
        return {"waveform": waveform, "sample_rate": rate}

    return make


@pytest.fixture
def espeak_ng():
    """Skips the test when espeak-ng (real speech in several voices and languages) is not installed."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
