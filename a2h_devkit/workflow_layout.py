"""The widgets and slots the ComfyUI frontend builds for each node type, for writing (tools/build_workflows.py) and
checking (tests/test_workflows.py, tests/test_browser.py) the example workflows in workflows/.

- the pack's nodes: `/object_info` entries built from the node classes' `define_schema` (through the `comfy_api`
  test double when ComfyUI is not importable);
- core nodes (LoadImage, LoadAudio, CreateVideo, SaveVideo, Note): tests/data/comfyui_core_nodes.json, a snapshot
  taken from a real ComfyUI server and its pinned frontend by tests/browser/snapshot_core_nodes.mjs.

For the pack's nodes the frontend's layout is derived from the `/object_info` entry (sockets first, then one widget
and one widget slot per widget input, in `input_order`); tests/browser/check_workflows.mjs checks it in the real
frontend.
"""
from __future__ import annotations

import json

from a2h_devkit.imports import REPOSITORY, pack_nodes

CORE_SNAPSHOT = REPOSITORY / "tests" / "data" / "comfyui_core_nodes.json"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def pack_object_info() -> dict[str, dict]:
    """`/object_info` entries of the pack's nodes, from their `define_schema`."""
    nodes = pack_nodes()
    infos = {}
    for cls in nodes.NODE_CLASSES:
        info = json.loads(json.dumps(cls.GET_NODE_INFO_V1()))  # tuples -> lists, as the server sends them
        infos[info["name"]] = info
    return infos


def core_snapshot() -> dict:
    """The recorded `/object_info` entries and frontend layouts of the core nodes the workflows use."""
    return json.loads(CORE_SNAPSHOT.read_text())


def _ordered_inputs(info: dict) -> list[tuple[str, str, dict, bool]]:
    """(name, type, options, optional) of every visible input, required first, in `input_order`."""
    result = []
    for group in ("required", "optional"):
        specs = info["input"].get(group, {})
        for name in info.get("input_order", {}).get(group, list(specs)):
            spec = specs[name]
            kind, options = spec[0], (spec[1] if len(spec) > 1 and spec[1] else {})
            if isinstance(kind, list):  # V1 combo: the options are the type
                kind, options = "COMBO", {**options, "options": kind}
            result.append((name, kind, options, group == "optional"))
    return result


def frontend_layout(info: dict) -> dict:
    """Widgets and slots the frontend builds for a node definition (see litegraphService.#addInputs)."""
    inputs = _ordered_inputs(info)
    is_widget = {name: kind in WIDGET_TYPES and not options.get("forceInput") for name, kind, options, _ in inputs}
    slots = [{"name": n, "type": k, "widget": None, "optional": o} for n, k, _, o in inputs if not is_widget[n]]
    widgets = []
    for name, kind, options, optional in inputs:
        if not is_widget[name]:
            continue
        widgets.append({"name": name, "type": kind, "options": options, "serialized": True})
        if options.get("control_after_generate") or (kind == "INT" and name in ("seed", "noise_seed")):
            widgets.append({"name": "control_after_generate", "type": "CONTROL", "options": {}, "serialized": True})
        slots.append({"name": name, "type": kind, "widget": name, "optional": optional})
    outputs = [{"name": name, "type": kind} for name, kind in zip(info["output_name"], info["output"])]
    return {"slots": slots, "widgets": widgets, "outputs": outputs, "info": info}


def core_layout(snapshot: dict, node_type: str) -> dict:
    """The recorded frontend layout of a core node, with widget options from its `/object_info` entry."""
    front = snapshot["frontend"][node_type]
    info = snapshot["object_info"].get(node_type)
    specs = {name: (kind, options) for name, kind, options, _ in _ordered_inputs(info)} if info else {}
    optional = {name for name, *_, opt in _ordered_inputs(info) if opt} if info else set()
    widgets = [{"name": w["name"], "type": specs.get(w["name"], (w["type"].upper(), {}))[0],
                "options": specs.get(w["name"], (None, {}))[1], "serialized": w["serialized"]}
               for w in front["widgets"]]
    slots = [{"name": s["name"], "type": s["type"], "widget": s["widget"], "optional": s["name"] in optional}
             for s in front["inputs"]]
    return {"slots": slots, "widgets": widgets, "outputs": front["outputs"], "info": info}


def all_layouts() -> dict[str, dict]:
    """Node type -> layout, for the snapshot's core nodes and every node of the pack."""
    snapshot = core_snapshot()
    result = {name: core_layout(snapshot, name) for name in snapshot["frontend"]}
    result.update({name: frontend_layout(info) for name, info in pack_object_info().items()})
    return result


def api_prompt(workflow: dict, layouts: dict[str, dict]) -> dict[str, dict]:
    """The API-format prompt ComfyUI's frontend queues for a UI-format workflow ("Queue" / graphToPrompt): every
    node but notes and muted or bypassed ones, its widget values by name, and each linked input as
    [origin node id, origin slot]. Widget values the frontend does not send (None, the control_after_generate
    choice) are left out."""
    skipped = {node["id"] for node in workflow["nodes"] if node["type"] in ("Note", "MarkdownNote")
               or node.get("mode", 0) != 0}
    prompt = {}
    for node in workflow["nodes"]:
        if node["id"] in skipped:
            continue
        widgets = layouts[node["type"]]["widgets"]
        inputs = {widget["name"]: value for widget, value in zip(widgets, node.get("widgets_values") or [])
                  if widget["type"] != "CONTROL" and value is not None}
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    for _, origin, origin_slot, target, target_slot, _ in workflow["links"]:
        if origin in skipped or target in skipped:
            continue
        target_node = next(node for node in workflow["nodes"] if node["id"] == target)
        prompt[str(target)]["inputs"][target_node["inputs"][target_slot]["name"]] = [str(origin), origin_slot]
    return prompt
