"""The shipped crop-and-paste-back workflow runs, through the node classes, on portraits of other sizes.

The workflow file is executed as ComfyUI would: nodes in dependency order, widget values from the file, links
between outputs and inputs. The core nodes at the ends are stood in for: LoadImage gives the portrait (of a size
the workflow was not built with), LoadAudio a short clip, CreateVideo/SaveVideo check what they receive.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import nodes
from a2h_core.config import ModelConfig
from a2h_core.face import weights as face_weights
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.workflow_layout import frontend_layout, pack_object_info

pytest.importorskip("skimage", reason="the test photographs come from scikit-image (requirements-test.txt)")
from a2h_devkit.face_scenes import scene

ROOT = Path(__file__).resolve().parents[1]

WORKFLOW = ROOT / "workflows" / "audio2head_crop_and_paste_back.json"


def run_workflow(workflow: dict, image: torch.Tensor, audio: dict) -> dict:
    """Execute a UI-format workflow with the pack's node classes; returns {node id: outputs}."""
    layouts = {name: frontend_layout(info) for name, info in pack_object_info().items()}
    classes = {cls.GET_SCHEMA().node_id: cls for cls in nodes.NODE_CLASSES}
    by_id = {n["id"]: n for n in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    results = {}

    def evaluate(node_id):
        if node_id in results:
            return results[node_id]
        node = by_id[node_id]
        kind = node["type"]
        inputs = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, origin, origin_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = evaluate(origin)[origin_slot]
        if kind == "LoadImage":
            out = (image, torch.zeros(1, 64, 64))
        elif kind == "LoadAudio":
            out = (audio,)
        elif kind == "CreateVideo":
            out = ({"images": inputs["images"], "fps": node["widgets_values"][0] if "fps" not in inputs
                    else inputs["fps"], "audio": inputs.get("audio")},)
        elif kind == "SaveVideo":
            out = (inputs["video"],)
        else:
            names = [w["name"] for w in layouts[kind]["widgets"]]
            values = dict(zip(names, node.get("widgets_values", [])))
            values.update(inputs)
            out = classes[kind].execute(**values).args
        results[node_id] = out
        return out

    for node in workflow["nodes"]:
        if node["type"] not in ("Note", "MarkdownNote"):
            evaluate(node["id"])
    return results


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    if face_weights.find_mtcnn() is None:
        pytest.skip("the 'mtcnn' package (the offline detector's weights) is not installed")
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()}
    save_file(state, str(tmp_path / "audio2head.safetensors"), metadata={"config": "reduced"})
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("AUDIO2HEAD_FACE_MODELS_DIR", str(tmp_path / "face_detection"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


@pytest.mark.parametrize("width,height,placement", [
    (777, 555, (200, 40, 1.0)),  # landscape, face well inside
    (450, 641, (-120, 150, 1.0)),  # portrait, face near the left edge: the crop is padded
], ids=["landscape_777x555", "portrait_450x641"])
def test_crop_and_paste_back_workflow_runs_on_another_portrait_size(models_dir, width, height, placement):
    workflow = json.loads(WORKFLOW.read_text())
    crop_node = next(n for n in workflow["nodes"] if n["type"] == "Audio2HeadCrop")
    assert crop_node["widgets_values"][0] == "auto"
    picture = scene("photo", width, height, [(*placement, 0.0)], seed=11).image
    image = torch.from_numpy(picture).float()[None] / 255.0
    rate = 16000
    t = np.arange(int(0.24 * rate)) / rate
    audio = {"waveform": torch.from_numpy(0.3 * np.sign(np.sin(2 * np.pi * 130 * t)))[None, None].float(),
             "sample_rate": rate}
    results = run_workflow(workflow, image, audio)
    video = next(results[n["id"]][0] for n in workflow["nodes"] if n["type"] == "SaveVideo")
    frames = video["images"]
    assert frames.shape[1:] == (height - height % 2, width - width % 2, 3)  # the full picture, even sides
    assert len(frames) >= 5 and video["fps"] == 25
    face, crop, preview = results[crop_node["id"]]
    assert face.shape == (1, 256, 256, 3) and preview.shape[-1] == 3
    box = crop.box
    assert box.width == box.height
    # Outside the crop the picture is untouched; the face region was animated.
    outside = np.ones(frames.shape[1:3], bool)
    outside[max(box.y, 0):box.bottom, max(box.x, 0):box.right] = False
    original = image[0, :frames.shape[1], :frames.shape[2]]
    assert torch.equal(frames[0][torch.from_numpy(outside)], original[torch.from_numpy(outside)])
