"""Opt-in: the example workflows and the web extension in a real ComfyUI, in headless chromium.

Needs, and skips with the reason when one is missing:
- COMFYUI_PATH: a ComfyUI checkout (its main.py is started with COMFYUI_PYTHON, default: this Python);
- chromium (Debian: `apt-get install -y chromium`; another binary through CHROMIUM_PATH); no browser is downloaded;
- node and playwright-core (`npm install` in the repository root installs it from package.json).

The server runs from a temporary base directory holding only this pack (linked into custom_nodes), a portrait and a
speech file in input/, and the frontend settings that avoid a start-up error of a fresh user directory. The browser
script (tests/browser/check_workflows.mjs) loads every workflow, compares the frontend's re-save with the file,
drives the pose-curve editor with the mouse, queues every workflow and waits for its MP4, and takes screenshots (kept
in A2H_SCREENSHOT_DIR when set). The weights are random reduced-width networks (declared "reduced" in the file's
metadata, which the loader honours), so a run takes seconds on a CPU; A2H_BROWSER_WEIGHTS=<file> uses a real file.

    COMFYUI_PATH=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python pytest tests/test_browser.py -m comfyui
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from comfyui_server import PACK_FOLDER, running_comfyui

from a2h_devkit.random_weights import write_reduced_weights
from a2h_devkit.speech import speech_like, write_wav
from a2h_devkit.workflow_layout import frontend_layout

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "browser" / "check_workflows.mjs"
IMAGE_FILE, AUDIO_FILE, WEIGHTS_FILE = "portrait.png", "speech.wav", "audio2head.safetensors"  # the workflows' files
FRONTEND_SETTINGS = {  # a fresh user directory otherwise throws in frontend 1.27 (see comfyui-notes)
    "Comfy.Canvas.NavigationMode": "legacy",
    "Comfy.Canvas.LeftMouseClickBehavior": "panning",
    "Comfy.Canvas.MouseWheelScroll": "zoom",
    "Comfy.TutorialCompleted": True,
}

pytestmark = pytest.mark.comfyui


def requirements() -> tuple[Path, str, str]:
    """(ComfyUI path, its Python, node) or a skip naming what is missing."""
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy or not (Path(comfy) / "main.py").is_file():
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout to run the real-browser test")
    chromium = [p for p in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                            "/usr/bin/google-chrome") if p and Path(p).is_file()]
    if not chromium:
        pytest.skip("no chromium (apt-get install -y chromium, or set CHROMIUM_PATH)")
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is not installed (run `npm install` in the repository root)")
    pytest.importorskip("PIL", reason="Pillow draws the test portrait")
    return Path(comfy), os.environ.get("COMFYUI_PYTHON", sys.executable), node


def write_portrait(path: Path, size: int = 512) -> None:
    """A simple drawn face (skin oval, eyes, mouth) on a plain background, as an 8-bit PNG."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (70, 110, 160))
    draw = ImageDraw.Draw(image)
    s = size / 256
    draw.ellipse([68 * s, 40 * s, 188 * s, 200 * s], fill=(225, 185, 160))
    draw.rectangle([104 * s, 190 * s, 152 * s, 256 * s], fill=(215, 175, 150))
    for x in (100, 156):
        draw.ellipse([(x - 10) * s, 100 * s, (x + 10) * s, 112 * s], fill=(250, 250, 250))
        draw.ellipse([(x - 4) * s, 102 * s, (x + 4) * s, 110 * s], fill=(60, 40, 30))
    draw.arc([104 * s, 140 * s, 152 * s, 172 * s], 20, 160, fill=(150, 60, 60), width=int(4 * s))
    draw.pieslice([60 * s, 24 * s, 196 * s, 120 * s], 180, 360, fill=(60, 40, 30))
    image.save(path)


def prepare_base(base: Path, weights: str | None) -> None:
    """custom_nodes/<pack> -> this checkout, input files (and the pose files the workflows ship), weights, frontend
    user settings."""
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
    (base / "input").mkdir()
    write_portrait(base / "input" / IMAGE_FILE)
    write_wav(base / "input" / AUDIO_FILE, speech_like(2.0, 16000), 16000)
    for pose_file in (ROOT / "workflows").glob("*.csv"):
        shutil.copy(pose_file, base / "input" / pose_file.name)
    (base / "models" / "audio2head").mkdir(parents=True)
    if weights:
        (base / "models" / "audio2head" / WEIGHTS_FILE).symlink_to(Path(weights).resolve())
    else:
        write_reduced_weights(base / "models" / "audio2head" / WEIGHTS_FILE)
    user = base / "user" / "default"
    for folder in ("workflows", "subgraphs"):
        (user / folder).mkdir(parents=True)
    (user / "comfy.settings.json").write_text(json.dumps(FRONTEND_SETTINGS))
    (user / "user.css").write_text("")  # the frontend asks for it; 404 otherwise
    (user / "comfy.templates.json").write_text("[]")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy, python, _ = requirements()
    base = tmp_path_factory.mktemp("comfy_base")
    prepare_base(base, os.environ.get("A2H_BROWSER_WEIGHTS"))
    with running_comfyui(comfy, python, base, request_seconds=2, poll_seconds=1) as (url, _, _):
        yield url, base


def test_pack_imported(server):
    url, base = server
    log = (base / "server.log").read_text()
    assert "IMPORT FAILED" not in log, log[-3000:]
    info = json.load(urllib.request.urlopen(f"{url}/object_info"))
    assert "Audio2HeadPoseKeyframes" in info, "the pack's nodes are not registered"
    listed = json.load(urllib.request.urlopen(f"{url}/extensions"))
    served = [path for path in listed if path.endswith("/audio2head.js")]
    assert served == [f"/extensions/{PACK_FOLDER}/audio2head.js"], (
        f"the web extension is served as {served}: register the web folder once (WEB_DIRECTORY, not also "
        "pyproject's [tool.comfy] web)")


def test_workflows_in_browser(server):
    url, base = server
    _, _, node = requirements()
    out = Path(os.environ.get("A2H_SCREENSHOT_DIR") or base / "screenshots")
    command = [node, str(SCRIPT), "--url", url, "--workflows", str(ROOT / "workflows"), "--out", str(out),
               "--run", "1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    report_line = next((line for line in result.stdout.splitlines() if line.startswith("REPORT ")), None)
    assert report_line, f"no report from the browser script:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    report = json.loads(report_line[len("REPORT "):])
    assert result.returncode == 0, "\n".join(report["failures"]) + "\n" + result.stderr[-2000:]
    workflows = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    assert sorted(report["workflows"]) == workflows
    assert all(not w["missing"] for w in report["workflows"].values())
    assert any("editor" in w for w in report["workflows"].values()), "no workflow exercised the keyframe editor"
    for name, result in report["workflows"].items():
        assert result["run"]["status"] == "success" and result["run"]["videos"], f"{name}: {result['run']}"

    # The CI check of tests/test_workflows.py derives each node's widgets and slots from /object_info; the real
    # frontend must build the same for every pack node (its own editor and plot widgets are not saved).
    info = json.load(urllib.request.urlopen(f"{url}/object_info"))
    pack_nodes = sorted(name for name in info if name.startswith("Audio2Head"))
    assert sorted(report["pack_layouts"]) == pack_nodes
    for name in pack_nodes:
        derived = frontend_layout(info[name])
        seen = report["pack_layouts"][name]
        assert seen["widgets"] == [w["name"] for w in derived["widgets"]], name
        assert seen["inputs"] == [[s["name"], s["type"], s["widget"]] for s in derived["slots"]], name
        assert seen["outputs"] == [[o["name"], o["type"]] for o in derived["outputs"]], name
