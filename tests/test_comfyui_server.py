"""Opt-in: the pack inside a real ComfyUI server, driven through its HTTP API.

Set COMFYUI_PATH to a ComfyUI checkout (Comfy-Org/ComfyUI) and COMFYUI_PYTHON to the python of an environment with
ComfyUI's requirements installed (default: this python). The test starts the server on 127.0.0.1 on a free port with
a temporary base directory (models, input, output, custom_nodes) holding a link to this repository and random
reduced-width weights, then checks that:
- the pack imports without error and every node appears in /object_info;
- a stage-by-stage graph (loader -> features -> pose predictor -> keypoint detector -> motion field -> generator ->
  core CreateVideo -> SaveVideo) writes an MP4 with 25 fps video and an audio track of the same length;
- a second graph using every other node (all-in-one, pose tools, previews, crop and paste-back) runs.
Run: COMFYUI_PATH=/path/ComfyUI COMFYUI_PYTHON=/path/venv/bin/python python -m pytest tests/test_comfyui_server.py -s
"""
import ast
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from comfyui_server import PACK_FOLDER, Server, running_comfyui

from a2h_devkit.random_weights import write_reduced_weights
from a2h_devkit.speech import speech_like, write_wav

ROOT = Path(__file__).resolve().parent.parent  # this repository

pytestmark = pytest.mark.comfyui

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
WEIGHTS = "reduced.safetensors"

if not COMFYUI_PATH or not (Path(COMFYUI_PATH) / "main.py").is_file():
    pytest.skip("set COMFYUI_PATH to a ComfyUI checkout (and COMFYUI_PYTHON to its python) to run the real-server "
                "test", allow_module_level=True)



def pack_node_ids() -> list[str]:
    """The node ids the pack registers: the class names in nodes.NODE_CLASSES (test_nodes.py checks they match)."""
    tree = ast.parse((ROOT / "nodes" / "__init__.py").read_text())
    listing = next(node for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "NODE_CLASSES")
    return [element.id for element in listing.value.elts]


def write_inputs(input_dir: Path) -> None:
    """A 300x240 portrait-like PNG, and 2.2 s (speech.wav) and 30 s (long.wav) of synthetic stereo 44.1 kHz speech
    as WAV."""
    from PIL import Image
    yy, xx = np.mgrid[0:300, 0:240]
    face = ((xx - 120) / 70.0) ** 2 + ((yy - 140) / 95.0) ** 2 < 1
    rgb = np.stack([90 + 100 * face, 110 + 70 * face, 160 - 40 * face], -1) + (xx[..., None] * 3 + yy[..., None]) % 17
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(input_dir / "portrait.png")
    for name, seconds in (("speech.wav", 2.2), ("long.wav", 30.0)):
        write_wav(input_dir / name, speech_like(seconds, 44100, channels=2), 44100)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui_base")
    for sub in ("custom_nodes", "models/audio2head", "input", "output", "temp", "user/default"):
        (base / sub).mkdir(parents=True)
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
    write_reduced_weights(base / "models" / "audio2head" / WEIGHTS)
    write_inputs(base / "input")
    from a2h_core.pose import PoseCurve, save_pose_curve
    save_pose_curve(PoseCurve.still(num_poses=10).offset([5, 0, 0, 0, 0, 0]), base / "input" / "curve.json")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    only_this_pack = ("--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_FOLDER)
    started = time.perf_counter()
    try:
        with running_comfyui(COMFYUI_PATH, python, base, only_this_pack, stop_seconds=20) as (url, process, log):
            print(f"\nComfyUI ready after {time.perf_counter() - started:.1f} s (port {url.rsplit(':', 1)[1]})")
            srv = Server(url, process, log)
            srv.base = base
            yield srv
    finally:
        print(f"server log: {base / 'server.log'}")


def test_pack_imports_and_every_node_is_registered(server):
    log = server.log.read_text()
    assert "IMPORT FAILED" not in log and "Cannot import" not in log, log[-4000:]
    info = server.get("/object_info")
    node_ids = pack_node_ids()
    assert len(node_ids) == 21
    missing = [node for node in node_ids if node not in info]
    assert not missing, f"missing from /object_info: {missing}\n{log[-4000:]}"
    for node in node_ids:
        assert info[node]["python_module"] == f"custom_nodes.{PACK_FOLDER}"
        assert info[node]["category"].startswith("Audio2Head")
    assert WEIGHTS in info["Audio2HeadModelLoader"]["input"]["required"]["weights"][1]["options"]
    assert server.get("/models/audio2head") == [WEIGHTS]


def test_web_extension_is_served_once(server):
    """WEB_DIRECTORY and pyproject's [tool.comfy] web each register the folder (under the folder name and the project
    name): with both, the frontend loads every script twice and the second registerExtension call throws."""
    scripts = [path for path in server.get("/extensions") if "audio2head" in path.lower()]
    names = sorted(path.rsplit("/", 1)[-1] for path in scripts)
    assert "audio2head.js" in names and len(names) == len(set(names)), f"web extension served twice: {scripts}"


def loader(weights=WEIGHTS):
    return {"class_type": "Audio2HeadModelLoader",
            "inputs": {"weights": weights, "device": "auto", "dtype": "auto", "hub_repo_id": "",
                       "hub_filename": "audio2head.safetensors", "hub_revision": ""}}


def save_video(images, fps, audio, prefix):
    return {"create": {"class_type": "CreateVideo", "inputs": {"images": images, "fps": fps, "audio": audio}},
            "save": {"class_type": "SaveVideo", "inputs": {"video": ["create", 0], "filename_prefix": prefix,
                                                           "format": "auto", "codec": "auto"}}}


PREDICTED_POSE = {"class_type": "Audio2HeadPosePredictor",
                  "inputs": {"model": ["model", 0], "image": ["image", 0], "features": ["features", 0]}}


def stage_graph(audio: str = "speech.wav", pose: dict = PREDICTED_POSE, batch_size: int = 8,
                prefix: str = "a2h_test/stages") -> dict:
    """Loader -> features -> `pose` -> keypoint detector -> motion field -> generator -> CreateVideo -> SaveVideo."""
    graph = {
        "image": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "audio": {"class_type": "LoadAudio", "inputs": {"audio": audio}},
        "model": loader(),
        "features": {"class_type": "Audio2HeadAudioFeatures", "inputs": {"audio": ["audio", 0]}},
        "pose": pose,
        "kp_source": {"class_type": "Audio2HeadKeypointDetector",
                      "inputs": {"model": ["model", 0], "image": ["image", 0]}},
        "kp_driving": {"class_type": "Audio2HeadMotionField",
                       "inputs": {"model": ["model", 0], "image": ["image", 0], "features": ["features", 0],
                                  "pose": ["pose", 0]}},
        "generator": {"class_type": "Audio2HeadGenerator",
                      "inputs": {"model": ["model", 0], "image": ["image", 0], "source_keypoints": ["kp_source", 0],
                                 "driving_keypoints": ["kp_driving", 0], "batch_size": batch_size}},
    }
    graph.update(save_video(["generator", 0], ["generator", 1], ["audio", 0], prefix))
    return graph


def saved_video(server, entry) -> Path:
    result = entry["outputs"]["save"]["images"][0]
    return server.base / "output" / result["subfolder"] / result["filename"]


def speech_frames(server) -> int:
    """Video frames the test audio gives, computed by the library in this process."""
    from a2h_core.audio.features import extract_features
    return extract_features(str(server.base / "input" / "speech.wav")).num_frames


def check_mp4(path: Path, frames: int, width: int, height: int) -> None:
    import av
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video)]
        assert float(video.average_rate) == 25.0
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        assert len(decoded) == frames
        video_seconds = frames / 25.0
        audio_seconds = float(audio.duration * audio.time_base)
        assert abs(audio_seconds - video_seconds) < 0.1, (audio_seconds, video_seconds)
    assert np.std(np.stack(decoded).astype(np.float32)) > 1.0  # not a blank video


def test_stage_by_stage_graph_writes_mp4_with_sound(server):
    entry, seconds = server.run_prompt(stage_graph())
    path = saved_video(server, entry)
    frames = speech_frames(server)
    check_mp4(path, frames, 256, 256)
    assert entry["outputs"]["pose"]["a2h_pose"][0]["fps"] == 25.0
    print(f"stage-by-stage graph: {frames} frames in {seconds:.1f} s ({path.name}, {path.stat().st_size} bytes)")


def test_every_other_node_runs(server):
    keyframes = json.dumps({"interpolation": "smooth", "keyframes": [
        {"time": 0.0, "yaw": 0, "pitch": 0, "roll": 0}, {"time": 1.0, "yaw": 15, "pitch": -5, "roll": 3}]})
    offsets = {f"{name}_offset": 0.0 for name in ("yaw", "pitch", "roll", "x", "y", "z")}
    graph = {
        "image": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "audio": {"class_type": "LoadAudio", "inputs": {"audio": "speech.wav"}},
        "model": loader(),
        "features": {"class_type": "Audio2HeadAudioFeatures", "inputs": {"audio": ["audio", 0]}},
        "crop": {"class_type": "Audio2HeadCrop",
                 "inputs": {"image": ["image", 0], "mode": "manual", "detector": "auto", "face_index": 0,
                            "crop_scale": 3.8, "crop_offset": -0.5, "x": 20, "y": 30, "width": 200, "height": 200}},
        "predicted": {"class_type": "Audio2HeadPosePredictor",
                      "inputs": {"model": ["model", 0], "image": ["crop", 0], "features": ["features", 0]}},
        "keyframes": {"class_type": "Audio2HeadPoseKeyframes",
                      "inputs": {"keyframes": keyframes, "features": ["features", 0], "base": ["predicted", 0]}},
        "edit": {"class_type": "Audio2HeadPoseEdit",
                 "inputs": {"pose": ["keyframes", 0], "scale": 0.8, **offsets, "smooth": 2.0}},
        "blend": {"class_type": "Audio2HeadPoseBlend",
                  "inputs": {"pose_a": ["predicted", 0], "pose_b": ["edit", 0], "weight": 0.5}},
        "load": {"class_type": "Audio2HeadPoseLoad", "inputs": {"path": "curve.json", "fps": 25.0}},
        "retime": {"class_type": "Audio2HeadPoseRetime",
                   "inputs": {"pose": ["load", 0], "mode": "pingpong", "num_frames": 0, "features": ["features", 0]}},
        "still": {"class_type": "Audio2HeadStillHead", "inputs": {"num_frames": 0, "pose": ["retime", 0]}},
        "save_pose": {"class_type": "Audio2HeadPoseSave",
                      "inputs": {"pose": ["blend", 0], "filename_prefix": "a2h_test/pose", "format": "json",
                                 "columns": "ypr"}},
        "plot": {"class_type": "Audio2HeadPosePlot", "inputs": {"pose": ["blend", 0], "width": 640, "height": 360}},
        "boxes": {"class_type": "Audio2HeadPoseBoxes", "inputs": {"pose": ["still", 0], "image": ["crop", 0]}},
        "kp_source": {"class_type": "Audio2HeadKeypointDetector",
                      "inputs": {"model": ["model", 0], "image": ["crop", 0]}},
        "aio": {"class_type": "Audio2HeadAllInOne",
                "inputs": {"image": ["crop", 0], "audio": ["audio", 0], "weights": WEIGHTS, "device": "auto",
                           "dtype": "auto", "batch_size": 8, "crop": "none", "paste_back": True, "detector": "auto",
                           "pose": ["blend", 0]}},
        "overlay": {"class_type": "Audio2HeadKeypointOverlay",
                    "inputs": {"images": ["crop", 0], "keypoints": ["kp_source", 0], "radius": 3}},
        "paste": {"class_type": "Audio2HeadPasteBack",
                  "inputs": {"frames": ["aio", 0], "crop": ["crop", 1], "feather": 0.1}},
        "preview_plot": {"class_type": "PreviewImage", "inputs": {"images": ["plot", 0]}},
        "preview_boxes": {"class_type": "PreviewImage", "inputs": {"images": ["boxes", 0]}},
        "preview_overlay": {"class_type": "PreviewImage", "inputs": {"images": ["overlay", 0]}},
        "preview_mask": {"class_type": "MaskToImage", "inputs": {"mask": ["paste", 1]}},
        "preview_mask_image": {"class_type": "PreviewImage", "inputs": {"images": ["preview_mask", 0]}},
    }
    graph.update(save_video(["paste", 0], ["aio", 1], ["aio", 2], "a2h_test/pasted"))
    entry, seconds = server.run_prompt(graph)
    path = saved_video(server, entry)
    frames = speech_frames(server)
    check_mp4(path, frames, 240, 300)
    for node in ("predicted", "keyframes", "edit", "blend", "load", "retime", "still", "aio"):
        assert "a2h_pose" in entry["outputs"][node], node
    assert len(entry["outputs"]["still"]["a2h_pose"][0]["yaw"]) == frames + 1
    assert len(entry["outputs"]["preview_boxes"]["images"]) == frames + 1
    saved = list((server.base / "output" / "a2h_test").glob("pose_*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["columns"][0] == "yaw"
    print(f"every-node graph: {frames} frames at 240x300 in {seconds:.1f} s")


def test_cancel_stops_a_long_generation_promptly(server):
    """30 s of audio (750 frames) with a keyframe pose: interrupting mid-run ends the prompt within seconds."""
    still = {"class_type": "Audio2HeadStillHead", "inputs": {"num_frames": 0, "features": ["features", 0]}}
    graph = stage_graph("long.wav", still, batch_size=4, prefix="a2h_test/cancelled")
    prompt_id = server.queue(graph)
    time.sleep(8.0)  # features take ~1 s; then the motion field windows run with a progress bar
    interrupted_at = time.perf_counter()
    server.post("/interrupt", {})
    entry = server.wait(prompt_id)
    latency = time.perf_counter() - interrupted_at
    kinds = [message[0] for message in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, entry["status"]
    assert latency < 20.0
    assert not list((server.base / "output" / "a2h_test").glob("cancelled*"))
    print(f"interrupt honoured after {latency:.1f} s")
