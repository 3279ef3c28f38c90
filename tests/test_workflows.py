"""The example workflows in workflows/ stay valid as the nodes evolve.

Each workflow is the UI format the ComfyUI canvas saves. It is checked against the widgets and slots the frontend
builds for each node (a2h_devkit.workflow_layout: the pack's nodes from their `define_schema`, core nodes from the
snapshot tests/data/comfyui_core_nodes.json); tests/browser/check_workflows.mjs checks the same files in the real
frontend.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from a2h_devkit.web_fixtures import FIXTURES as WEB_FIXTURES
from a2h_devkit.web_fixtures import expected, node_default_keyframes
from a2h_devkit.workflow_layout import all_layouts, core_snapshot

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / "workflows"

CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
NOTE_TYPES = {"Note", "MarkdownNote"}
# Every workflow ends in core nodes: the inputs and the MP4 with sound, made by Create Video from the frames or
# streamed by the all-in-one node's VIDEO output.
REQUIRED_CORE_NODES = {"LoadImage", "LoadAudio", "SaveVideo"}
VIDEO_SOURCES = {"CreateVideo", "Audio2HeadAllInOne", "Audio2HeadGenerator"}  # what Save Video's input may come from
# Combos whose options are the files a user has (input folder, models folder): any file name with these endings.
FILE_COMBOS = {
    ("LoadImage", "image"): (".png", ".jpg", ".jpeg", ".webp"),
    ("LoadAudio", "audio"): (".wav", ".mp3", ".flac", ".m4a", ".ogg"),
    ("Audio2HeadModelLoader", "weights"): (".safetensors", ".pth.tar", ".pth"),
    ("Audio2HeadAllInOne", "weights"): (".safetensors", ".pth.tar", ".pth"),
}


def workflow_paths() -> list[Path]:
    return sorted(WORKFLOW_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def layouts() -> dict[str, dict]:
    return all_layouts()


# ------------------------------------------------------------------------------------------------ checks
def check_widget_value(node_type: str, widget: dict, value) -> str | None:
    """Why `value` is not a valid value of `widget`, or None."""
    kind, options, name = widget["type"], widget["options"], widget["name"]
    if kind == "INT":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name}={value!r} is not an integer"
    elif kind == "FLOAT":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return f"{name}={value!r} is not a number"
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            return f"{name}={value!r} is not a boolean"
    elif kind == "STRING":
        if not isinstance(value, str):
            return f"{name}={value!r} is not a string"
    elif kind == "COMBO":
        endings = FILE_COMBOS.get((node_type, name))
        if endings is not None:
            if not (isinstance(value, str) and value.lower().endswith(endings)):
                return f"{name}={value!r} is not a file name ending in {endings}"
        elif value not in options.get("options", []):
            return f"{name}={value!r} is not one of {options.get('options')}"
    elif kind == "CONTROL" and value not in CONTROL_VALUES:
        return f"control_after_generate={value!r} is not one of {sorted(CONTROL_VALUES)}"
    if kind in ("INT", "FLOAT"):
        if "min" in options and value < options["min"]:
            return f"{name}={value} is below its minimum {options['min']}"
        if "max" in options and value > options["max"]:
            return f"{name}={value} is above its maximum {options['max']}"
    return None


def check_node(node: dict, layout: dict) -> list[str]:
    """Problems of one saved node against its definition's layout."""
    problems = []
    where = f"node {node['id']} ({node['type']})"
    expected_slots = [(s["name"], s["type"], s["widget"]) for s in layout["slots"]]
    saved_slots = [(i["name"], i["type"], (i.get("widget") or {}).get("name")) for i in node.get("inputs", [])]
    if saved_slots != expected_slots:
        problems.append(f"{where}: inputs {saved_slots} differ from the definition's {expected_slots}")
    expected_outputs = [(o["name"], o["type"]) for o in layout["outputs"]]
    saved_outputs = [(o["name"], o["type"]) for o in node.get("outputs", [])]
    if saved_outputs != expected_outputs:
        problems.append(f"{where}: outputs {saved_outputs} differ from the definition's {expected_outputs}")

    values = node.get("widgets_values", [])
    widgets = layout["widgets"]
    if len(values) > len(widgets):
        problems.append(f"{where}: {len(values)} widget values for {len(widgets)} widgets")
    linked = {i["name"] for i in node.get("inputs", []) if i.get("link") is not None}
    for index, widget in enumerate(widgets):
        if not widget["serialized"]:
            continue  # saved as null (a hole) by the frontend
        if index >= len(values):
            problems.append(f"{where}: no value for widget '{widget['name']}'")
            continue
        if widget["name"] in linked:
            continue  # the link's value is used instead
        reason = check_widget_value(node["type"], widget, values[index])
        if reason:
            problems.append(f"{where}: {reason}")

    for slot in layout["slots"]:
        if not slot["optional"] and slot["widget"] is None and slot["name"] not in linked:
            problems.append(f"{where}: required input '{slot['name']}' is not connected")
    return problems


def check_links(workflow: dict) -> list[str]:
    """Links agree with the slots at both ends, in both directions."""
    problems = []
    nodes = {n["id"]: n for n in workflow["nodes"]}
    link_ids = set()
    for link in workflow["links"]:
        link_id, origin_id, origin_slot, target_id, target_slot, kind = link
        if link_id in link_ids:
            problems.append(f"link {link_id} is listed twice")
        link_ids.add(link_id)
        origin, target = nodes.get(origin_id), nodes.get(target_id)
        if origin is None or target is None:
            problems.append(f"link {link_id} joins missing nodes {origin_id} -> {target_id}")
            continue
        try:
            output = origin["outputs"][origin_slot]
            input_ = target["inputs"][target_slot]
        except (IndexError, KeyError):
            problems.append(f"link {link_id} uses a slot its nodes do not have")
            continue
        if link_id not in (output.get("links") or []):
            problems.append(f"link {link_id}: output '{output['name']}' of node {origin_id} does not list it")
        if input_.get("link") != link_id:
            problems.append(f"link {link_id}: input '{input_['name']}' of node {target_id} does not point to it")
        if not (output["type"] == input_["type"] == kind or "*" in (output["type"], input_["type"])):
            problems.append(f"link {link_id}: {output['type']} output '{output['name']}' of node {origin_id} "
                            f"feeds {input_['type']} input '{input_['name']}' of node {target_id} (link type {kind})")
    for node in workflow["nodes"]:
        for input_ in node.get("inputs", []):
            if input_.get("link") is not None and input_["link"] not in link_ids:
                problems.append(f"node {node['id']}: input '{input_['name']}' points to missing link {input_['link']}")
        for output in node.get("outputs", []):
            for link_id in output.get("links") or []:
                if link_id not in link_ids:
                    problems.append(f"node {node['id']}: output '{output['name']}' lists missing link {link_id}")
    if link_ids and workflow.get("last_link_id", 0) < max(link_ids):
        problems.append("last_link_id is below the largest link id")
    if workflow.get("last_node_id", 0) < max(nodes):
        problems.append("last_node_id is below the largest node id")
    return problems


def feeds_output(workflow: dict, layouts: dict) -> set[int]:
    """Ids of the nodes ComfyUI would execute: output nodes (SaveVideo, previews) and what they depend on."""
    upstream = defaultdict(set)
    for _, origin_id, _, target_id, _, _ in workflow["links"]:
        upstream[target_id].add(origin_id)
    reached = set()
    stack = [n["id"] for n in workflow["nodes"]
             if n["type"] == "SaveVideo" or (layouts[n["type"]]["info"] or {}).get("output_node")]
    while stack:
        node_id = stack.pop()
        if node_id not in reached:
            reached.add(node_id)
            stack.extend(upstream[node_id])
    return reached


# ------------------------------------------------------------------------------------------------ tests
def test_there_are_workflows():
    names = {p.stem for p in workflow_paths()}
    assert len(names) >= 7, f"expected the seven example workflows, found {sorted(names)}"
    video_path = [name for name in names if "Audio2HeadAllInOne" in (WORKFLOW_DIR / f"{name}.json").read_text()
                  and '"first only"' in (WORKFLOW_DIR / f"{name}.json").read_text()]
    assert video_path, "no workflow uses the streamed VIDEO output (frames_output 'first only')"


def test_core_snapshot():
    """The snapshot covers the core nodes; with COMFYUI_PATH set, it is of the frontend that ComfyUI pins."""
    snapshot = core_snapshot()
    assert set(snapshot["frontend"]) >= REQUIRED_CORE_NODES | {"Note", "CreateVideo"}
    assert set(snapshot["object_info"]) >= REQUIRED_CORE_NODES | {"CreateVideo"}
    comfy = os.environ.get("COMFYUI_PATH")
    if comfy and (Path(comfy) / "requirements.txt").is_file():
        pin = f"comfyui-frontend-package=={snapshot['frontend_version']}"
        assert pin in (Path(comfy) / "requirements.txt").read_text(), (
            "ComfyUI pins another frontend: refresh tests/data/comfyui_core_nodes.json with "
            "tests/browser/snapshot_core_nodes.mjs")


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.stem)
def test_workflow_is_valid(path: Path, layouts: dict):
    workflow = json.loads(path.read_text())
    for key in ("nodes", "links", "version", "last_node_id", "last_link_id"):
        assert key in workflow, f"{path.name}: UI-format key '{key}' missing"
    types = [n["type"] for n in workflow["nodes"]]
    missing = sorted({t for t in types if t not in layouts})
    assert not missing, f"{path.name}: unknown node types {missing}"
    assert len({n["id"] for n in workflow["nodes"]}) == len(types), f"{path.name}: duplicate node ids"

    problems = []
    for node in workflow["nodes"]:
        problems += check_node(node, layouts[node["type"]])
    problems += check_links(workflow)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)

    assert set(types) >= REQUIRED_CORE_NODES, f"{path.name}: lacks {REQUIRED_CORE_NODES - set(types)}"
    by_id = {n["id"]: n for n in workflow["nodes"]}
    video_from = {by_id[link[1]]["type"] for link in workflow["links"] if by_id[link[3]]["type"] == "SaveVideo"}
    assert video_from and video_from <= VIDEO_SOURCES, f"{path.name}: Save Video's video comes from {video_from}"
    notes = [n for n in workflow["nodes"] if n["type"] in NOTE_TYPES]
    assert notes and all(len(n["widgets_values"][0]) > 80 for n in notes), f"{path.name}: needs a note explaining it"
    executed = feeds_output(workflow, layouts)
    unused = [f"{n['id']} ({n['type']})" for n in workflow["nodes"] if n["type"] not in NOTE_TYPES
              and n["id"] not in executed]
    assert not unused, f"{path.name}: nodes that would never run: {unused}"


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.stem)
def test_workflow_pose_inputs_load(path: Path, layouts: dict):
    """Keyframe widgets hold documents pose.py accepts; files Pose Load names ship beside the workflows."""
    from a2h_core.pose import curve_from_keyframes, load_pose_curve

    workflow = json.loads(path.read_text())
    for node in workflow["nodes"]:
        names = [w["name"] for w in layouts[node["type"]]["widgets"]]
        values = dict(zip(names, node.get("widgets_values", [])))
        if node["type"] == "Audio2HeadPoseKeyframes":
            curve = curve_from_keyframes(json.loads(values["keyframes"]))
            assert len(curve) > 1
        if node["type"] == "Audio2HeadPoseLoad":
            example = WORKFLOW_DIR / values["path"]
            assert example.is_file(), f"{path.name}: {values['path']} is not shipped in workflows/"
            assert len(load_pose_curve(example, fps=values["fps"])) > 1


# ------------------------------------------------------------------------------------------------ web extension
def _flat(lists) -> list:
    return [value for values in lists for value in values]


def test_web_fixtures_match_pose_py():
    """The numbers the JavaScript interpolation is tested against are still what a2h_core/pose/curve.py gives."""
    stored = json.loads(WEB_FIXTURES.read_text())
    fresh = expected(json.loads(WEB_FIXTURES.read_text()))
    for kind in ("interpolate_keys", "curves"):
        for number, (old, new) in enumerate(zip(stored[kind], fresh[kind])):
            old_values = old["expected"] if kind == "interpolate_keys" else _flat(old["expected"].values())
            new_values = new["expected"] if kind == "interpolate_keys" else _flat(new["expected"].values())
            assert len(old_values) == len(new_values), f"{kind} {number}: length changed; run make_fixtures.py"
            assert max((abs(a - b) for a, b in zip(old_values, new_values)), default=0) < 1e-9, (
                f"{kind} {number}: pose.py changed; update web/js/pose_curve_logic.js and run make_fixtures.py")
    assert stored["default_ypr"] == fresh["default_ypr"], "pose.py's DEFAULT_YPR changed: update web/js and fixtures"
    assert stored["node_default_keyframes"] == node_default_keyframes(), "run web/tests/make_fixtures.py"


def test_web_logic_under_node():
    """The extension's pure logic under node's test runner (`node --test web/tests/`)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the web logic tests need node >= 18)")
    result = subprocess.run([node, "--test", str(ROOT / "web" / "tests")], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
