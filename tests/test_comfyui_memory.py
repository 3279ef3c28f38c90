"""Opt-in: the pack under a real ComfyUI server's model management, and Cancel (/interrupt) at the slow stages.

Set COMFYUI_PATH to a ComfyUI checkout and COMFYUI_PYTHON to its python (see test_comfyui_server.py). The server gets
random weights at the published widths (about 760 MB, so that their memory is plain to see in the server's resident
memory) and a small probe pack of this test's own that reports `comfy.model_management.current_loaded_models` and
the node being executed. The test checks that:
- a prompt using the loader puts our networks in ComfyUI's list of loaded models;
- POST /free {"unload_models": true, "free_memory": true} takes them off the list and the server's resident memory
  falls by about their size; the same prompt then runs again and gives the same result;
- POST /interrupt stops the Audio Features node and the Pose Predictor node while they work on a long recording
  (the time it took is printed; tools/bench_cancel.py measures the longest stretch between cancel points).
Run: COMFYUI_PATH=/path/ComfyUI COMFYUI_PYTHON=/path/venv/bin/python python -m pytest tests/test_comfyui_memory.py -s
"""
import os
import sys
import time
from pathlib import Path

import pytest
from comfyui_server import PACK_FOLDER, Server, running_comfyui

from a2h_devkit.resident_memory import resident_mb
from a2h_devkit.speech import speech_like, write_wav

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.comfyui

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
WEIGHTS = "published_random.safetensors"
PROBE = "a2h_memory_probe"  # custom node folder of the probe, written by the fixture
PROBE_CODE = '''
import comfy.model_management
from aiohttp import web
from server import PromptServer

NODE_CLASS_MAPPINGS = {}


@PromptServer.instance.routes.get("/a2h_probe")
async def probe(request):
    loaded = [type(m.model.model).__name__ for m in comfy.model_management.current_loaded_models
              if m.model is not None]
    return web.json_response({"loaded": loaded, "executing": PromptServer.instance.last_node_id})
'''
SETTLE_S = 20  # seconds allowed for the server to act on /free

if not COMFYUI_PATH or not (Path(COMFYUI_PATH) / "main.py").is_file():
    pytest.skip("set COMFYUI_PATH to a ComfyUI checkout (and COMFYUI_PYTHON to its python) to run the real-server "
                "test", allow_module_level=True)


def write_published_random_weights(path: Path) -> Path:
    import torch

    from a2h_core.config import ModelConfig
    from a2h_core.io.weights import save_models
    from a2h_core.modules.models import Audio2HeadModels
    torch.manual_seed(0)
    return save_models(Audio2HeadModels(ModelConfig.published()), path)


def write_portrait(path: Path) -> None:
    import numpy as np
    from PIL import Image
    yy, xx = np.mgrid[0:256, 0:256]
    face = ((xx - 128) / 70.0) ** 2 + ((yy - 130) / 95.0) ** 2 < 1
    rgb = np.stack([90 + 100 * face, 110 + 70 * face, 160 - 40 * face], -1)
    Image.fromarray(rgb.astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui_memory")
    for sub in ("custom_nodes", "models/audio2head", "input", "output", "temp", "user/default"):
        (base / sub).mkdir(parents=True)
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
    (base / "custom_nodes" / PROBE).mkdir()
    (base / "custom_nodes" / PROBE / "__init__.py").write_text(PROBE_CODE)
    write_published_random_weights(base / "models" / "audio2head" / WEIGHTS)
    write_portrait(base / "input" / "portrait.png")
    write_wav(base / "input" / "long.wav", speech_like(120.0, 44100, channels=2), 44100)
    write_wav(base / "input" / "short.wav", speech_like(3.0, 44100, channels=2), 44100)
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    only_these = ("--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_FOLDER, PROBE)
    with running_comfyui(COMFYUI_PATH, python, base, only_these, stop_seconds=20) as (url, process, log):
        srv = Server(url, process, log)
        srv.base = base
        yield srv
    print(f"server log: {base / 'server.log'}")


def loader():
    return {"class_type": "Audio2HeadModelLoader",
            "inputs": {"weights": WEIGHTS, "device": "auto", "dtype": "auto", "hub_repo_id": "",
                       "hub_filename": "audio2head.safetensors", "hub_revision": ""}}


KEYPOINTS_GRAPH = {
    "image": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
    "model": loader(),
    "kp": {"class_type": "Audio2HeadKeypointDetector", "inputs": {"model": ["model", 0], "image": ["image", 0]}},
    "show": {"class_type": "PreviewAny", "inputs": {"source": ["kp", 0]}},
}

def pose_graph(audio: str) -> dict:
    return {
        "image": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "audio": {"class_type": "LoadAudio", "inputs": {"audio": audio}},
        "model": loader(),
        "features": {"class_type": "Audio2HeadAudioFeatures", "inputs": {"audio": ["audio", 0]}},
        "pose": {"class_type": "Audio2HeadPosePredictor",
                 "inputs": {"model": ["model", 0], "image": ["image", 0], "features": ["features", 0]}},
        "show": {"class_type": "PreviewAny", "inputs": {"source": ["pose", 0]}},
    }


def settled_resident_mb(server, seconds: float = 2.0) -> float:
    """The server's resident memory once it has stopped changing by more than 5 MB over `seconds`."""
    last = resident_mb(pid=server.process.pid)
    for _ in range(SETTLE_S):
        time.sleep(seconds)
        now = resident_mb(pid=server.process.pid)
        if abs(now - last) < 5:
            return now
        last = now
    return last


def test_free_unloads_our_networks_and_releases_their_memory(server):
    weights_mb = (server.base / "models" / "audio2head" / WEIGHTS).stat().st_size / 2**20
    start_mb = settled_resident_mb(server)
    first, _ = server.run_prompt(KEYPOINTS_GRAPH)
    assert server.get("/a2h_probe")["loaded"] == ["Audio2HeadModels"]
    loaded_mb = settled_resident_mb(server)

    server.post("/free", {"unload_models": True, "free_memory": True})
    deadline = time.perf_counter() + SETTLE_S
    while server.get("/a2h_probe")["loaded"] and time.perf_counter() < deadline:
        time.sleep(0.25)
    assert server.get("/a2h_probe")["loaded"] == []
    freed_mb = settled_resident_mb(server)
    print(f"\nserver resident memory: {start_mb:.0f} MB at start, {loaded_mb:.0f} MB with the networks loaded "
          f"(weights file {weights_mb:.0f} MB), {freed_mb:.0f} MB after /free: {loaded_mb - freed_mb:.0f} MB released")
    assert loaded_mb - freed_mb > 0.8 * weights_mb

    again, _ = server.run_prompt(KEYPOINTS_GRAPH)  # /free emptied ComfyUI's cache: every node runs again
    assert not any(event == "execution_cached" and data["nodes"] for event, data in again["status"]["messages"])
    assert server.get("/a2h_probe")["loaded"] == ["Audio2HeadModels"]
    assert again["outputs"]["show"] == first["outputs"]["show"]


def interrupt_latency(server, prompt_id: str, node: str, delay_s: float) -> float:
    """Presses Cancel (/interrupt) `delay_s` after `node` starts executing; the seconds from the press to the
    server's execution_interrupted message, which must name `node`."""
    deadline = time.perf_counter() + 600
    while server.get("/a2h_probe")["executing"] != node:
        assert time.perf_counter() < deadline, f"{node} never ran"
        time.sleep(0.05)
    time.sleep(delay_s)
    assert server.get("/a2h_probe")["executing"] == node, f"{node} ended before Cancel: make the audio longer"
    pressed = time.time()
    server.post("/interrupt", {})
    entry = server.wait(prompt_id)
    messages = dict(entry["status"]["messages"])
    assert "execution_interrupted" in messages, entry["status"]
    assert messages["execution_interrupted"]["node_id"] == node
    return messages["execution_interrupted"]["timestamp"] / 1000 - pressed


def test_cancel_stops_features_and_pose_prediction(server):
    server.run_prompt(pose_graph("short.wav"))  # the nodes' first run, on 3 s of audio
    latency = interrupt_latency(server, server.queue(pose_graph("long.wav")), "features", delay_s=1.0)
    print(f"\nAudio Features (2 min of audio): Cancel took {latency * 1000:.0f} ms")
    latency = interrupt_latency(server, server.queue(pose_graph("long.wav")), "pose", delay_s=2.0)
    print(f"Pose Predictor (2 min of audio, published widths): Cancel took {latency * 1000:.0f} ms")
