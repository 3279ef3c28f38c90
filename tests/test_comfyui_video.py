"""Opt-in: the streamed VIDEO output and the shipped workflows in a real ComfyUI server, driven through its HTTP API.

Set COMFYUI_PATH to a ComfyUI checkout and COMFYUI_PYTHON to the python of an environment with its requirements
(as for tests/test_comfyui_server.py). The server runs from a temporary base directory holding a link to this
repository, random reduced-width weights and a user's inputs: a photo and a speech clip of other sizes, lengths,
rates and names than the ones the workflows were saved with. Checks:
- the all-in-one and Generator nodes' VIDEO output ends in core Save Video as a copy of the MP4 the node streamed
  (the same video packets: remuxed, not decoded and re-encoded), with the sound trimmed to the frames and the
  synthetic mark in the container tags (read with ffprobe);
- every workflow in workflows/ runs as the frontend would queue it (`a2h_devkit.workflow_layout.api_prompt`), with
  the user's files picked in Load Image and Load Audio and nothing else changed; the pose-file workflow's curve
  comes from the pack's example list, not from a file copied by hand.
Run: COMFYUI_PATH=/path/ComfyUI COMFYUI_PYTHON=/path/venv/bin/python python -m pytest tests/test_comfyui_video.py -s
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
from comfyui_server import PACK_FOLDER, Server, running_comfyui

from a2h_core.audio.features import extract_features
from a2h_core.io.image import even_size
from a2h_core.io.mark import SYNTHETIC_TAG
from a2h_devkit.face_scenes import scene
from a2h_devkit.random_weights import write_reduced_weights
from a2h_devkit.speech import speech_like, write_wav
from a2h_devkit.workflow_layout import all_layouts, api_prompt

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
WEIGHTS = "audio2head.safetensors"  # the name the workflows pick in their loaders
PHOTO = "my photo.jpg"  # the user's inputs: 701x533 (odd sides), JPEG, a space in the name
PHOTO_SIZE = (701, 533)
SPEECH = "my speech.wav"  # 3.3 s of mono 22.05 kHz speech (the workflows were saved with 2 s, 16 kHz)

pytestmark = pytest.mark.comfyui

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
if not COMFYUI_PATH or not (Path(COMFYUI_PATH) / "main.py").is_file():
    pytest.skip("set COMFYUI_PATH to a ComfyUI checkout (and COMFYUI_PYTHON to its python) to run the real-server "
                "test", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui_video")
    for sub in ("custom_nodes", "models/audio2head", "input", "output", "temp", "user/default"):
        (base / sub).mkdir(parents=True)
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
    write_reduced_weights(base / "models" / "audio2head" / WEIGHTS)
    from PIL import Image
    photo = scene("user_photo", *PHOTO_SIZE, [(180, 20, 0.9, 0.0)]).image
    Image.fromarray(photo).save(base / "input" / PHOTO, quality=92)
    write_wav(base / "input" / SPEECH, speech_like(3.3, 22050, channels=1, seed=3), 22050)
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    only_this_pack = ("--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_FOLDER)
    with running_comfyui(COMFYUI_PATH, python, base, only_this_pack, stop_seconds=20) as (url, process, log):
        srv = Server(url, process, log)
        srv.base = base
        yield srv
    print(f"server log: {base / 'server.log'}")


def speech_frames(server) -> int:
    return extract_features(str(server.base / "input" / SPEECH)).num_frames


def saved_videos(server, entry) -> dict[str, Path]:
    """Save Video node id -> the MP4 it wrote."""
    return {node: server.base / "output" / result["subfolder"] / result["filename"]
            for node, output in entry["outputs"].items() for result in output.get("images", [])
            if result["filename"].endswith(".mp4")}


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(container.streams.video[0]) if packet.size]


def probe(path: Path) -> dict:
    """ffprobe's view of an MP4: container tags, and per stream its type, frame count and duration."""
    result = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                             "format_tags:stream=codec_type,codec_name,nb_read_frames,duration,width,height,"
                             "avg_frame_rate", "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def check_video(path: Path, frames: int, width: int, height: int) -> dict:
    """The MP4 holds `frames` H.264 frames of width x height at 25 fps and AAC sound as long as the video."""
    info = probe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["avg_frame_rate"]) == ("h264", "25/1")
    assert (int(video["nb_read_frames"]), video["width"], video["height"]) == (frames, width, height)
    assert audio["codec_name"] == "aac" and abs(float(audio["duration"]) - frames / 25) < 0.05, audio
    return info


def all_in_one(frames_output: str) -> dict:
    return {"class_type": "Audio2HeadAllInOne",
            "inputs": {"image": ["image", 0], "audio": ["audio", 0], "weights": WEIGHTS, "device": "auto",
                       "dtype": "auto", "batch_size": 8, "crop": "none", "paste_back": True, "detector": "auto",
                       "frames_output": frames_output}}


def save(video: list, prefix: str) -> dict:
    return {"class_type": "SaveVideo", "inputs": {"video": video, "filename_prefix": prefix, "format": "auto",
                                                  "codec": "auto"}}


def test_video_outputs_are_copied_by_save_video(server):
    graph = {
        "image": {"class_type": "LoadImage", "inputs": {"image": PHOTO}},
        "audio": {"class_type": "LoadAudio", "inputs": {"audio": SPEECH}},
        "aio": all_in_one("first only"),
        "save_aio": save(["aio", 4], "a2h_video/all_in_one"),
        "model": {"class_type": "Audio2HeadModelLoader", "inputs": {"weights": WEIGHTS, "device": "auto",
                                                                    "dtype": "auto"}},
        "features": {"class_type": "Audio2HeadAudioFeatures", "inputs": {"audio": ["audio", 0]}},
        "kp_source": {"class_type": "Audio2HeadKeypointDetector",
                      "inputs": {"model": ["model", 0], "image": ["image", 0]}},
        "kp_driving": {"class_type": "Audio2HeadMotionField",
                       "inputs": {"model": ["model", 0], "image": ["image", 0], "features": ["features", 0],
                                  "pose": ["aio", 3]}},
        "generator": {"class_type": "Audio2HeadGenerator",
                      "inputs": {"model": ["model", 0], "image": ["image", 0], "source_keypoints": ["kp_source", 0],
                                 "driving_keypoints": ["kp_driving", 0], "batch_size": 8, "audio": ["audio", 0],
                                 "frames_output": "first only"}},
        "save_generator": save(["generator", 2], "a2h_video/generator"),
    }
    entry, seconds = server.run_prompt(graph)
    saved = saved_videos(server, entry)
    assert sorted(saved) == ["save_aio", "save_generator"]
    frames = speech_frames(server)
    streamed = sorted((server.base / "temp").glob("audio2head_*.mp4"))
    assert len(streamed) == 2, streamed
    for node, path in saved.items():
        info = check_video(path, frames, 256, 256)
        tags = info["format"]["tags"]
        assert tags["comment"] == SYNTHETIC_TAG and SYNTHETIC_TAG in tags["description"]
        assert "prompt" in tags  # Save Video's own metadata, added beside ours
        # Remuxed, not re-encoded: the saved video stream is packet for packet the one the node streamed.
        assert any(video_packets(path) == video_packets(source) for source in streamed), node
    print(f"VIDEO outputs -> Save Video: {frames} frames each in {seconds:.1f} s")


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.stem)
def test_workflow_runs_with_other_inputs(server, workflow):
    """The workflow as a user runs it with their own photo and speech: only Load Image and Load Audio change."""
    document = json.loads(workflow.read_text())
    prompt = api_prompt(document, all_layouts())
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = PHOTO
        elif node["class_type"] == "LoadAudio":
            node["inputs"]["audio"] = SPEECH
    entry, seconds = server.run_prompt(prompt)
    saved = list(saved_videos(server, entry).values())
    assert len(saved) == 1, entry["outputs"]
    # Frames pasted back into the photo (Paste Back, or the all-in-one node's crop auto + paste_back) have its size.
    pasted = any(node["class_type"] == "Audio2HeadPasteBack" or (
        node["class_type"] == "Audio2HeadAllInOne" and node["inputs"]["crop"] == "auto"
        and node["inputs"]["paste_back"]) for node in prompt.values())
    width, height = even_size(*PHOTO_SIZE) if pasted else (256, 256)
    check_video(saved[0], speech_frames(server), width, height)
    assert not any(path.name.startswith("example_") for path in (server.base / "input").iterdir())
    print(f"{workflow.stem}: {width}x{height} in {seconds:.1f} s")


def test_missing_model_file_is_named_when_queued(server):
    """A shared workflow naming weights this ComfyUI lacks is refused at queue time with the file, the folder and the
    download command, not ComfyUI's bare "value not in list"."""
    prompt = api_prompt(json.loads((ROOT / "workflows" / "audio2head_quick_start.json").read_text()), all_layouts())
    for node in prompt.values():
        if "weights" in node["inputs"]:
            node["inputs"]["weights"] = "from a friend.safetensors"
    with pytest.raises(AssertionError) as refused:
        server.queue(prompt)
    message = str(refused.value)
    folder = server.base / "models" / "audio2head"
    assert "-> 400" in message and "'from a friend.safetensors' not found" in message, message
    assert str(folder) in message and f"a2h_core download --to {folder}" in message, message
