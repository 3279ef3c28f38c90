"""Writes the example workflows in workflows/ (ComfyUI's UI format) from short graph descriptions.

Widgets, slots and outputs come from the node definitions exactly as tests/test_workflows.py reads them
(a2h_devkit.workflow_layout: pack nodes from `define_schema`, core nodes from tests/data/comfyui_core_nodes.json), so
the files match the nodes they name.
Afterwards, `node tests/browser/check_workflows.mjs --url <ComfyUI with this pack> --resave workflows` lets the
real frontend load and re-save each file (node sizes, slot names and order then come from the frontend itself).

    python tools/build_workflows.py            # writes workflows/*.json
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from a2h_devkit.workflow_layout import all_layouts

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / "workflows"
IMAGE_FILE = "portrait.png"  # what a user puts in ComfyUI/input
AUDIO_FILE = "speech.wav"
WEIGHTS_FILE = "audio2head.safetensors"  # in ComfyUI/models/audio2head
FRONTEND_DEFAULTS = {  # values the frontend gives widgets that have no default in /object_info, as a re-save has them
    ("LoadAudio", "upload"): None,
    ("LoadImage", "upload"): "image",
}


@dataclass
class Node:
    key: str  # name used in this file's graph descriptions
    type: str
    pos: tuple[float, float]
    values: dict = field(default_factory=dict)  # widget name -> value (defaults otherwise)
    title: str | None = None
    size: tuple[float, float] | None = None


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    links: list[tuple[str, str, str, str]]  # (from node key, output name, to node key, input name)


def widget_default(node_type: str, widget: dict):
    if widget["type"] == "CONTROL":
        return "fixed"
    if (node_type, widget["name"]) in FRONTEND_DEFAULTS:
        return FRONTEND_DEFAULTS[node_type, widget["name"]]
    options = widget["options"]
    if "default" in options:
        return options["default"]
    if widget["type"] == "COMBO":
        return (options.get("options") or [None])[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(widget["type"])


def build(graph: Graph, layouts: dict) -> dict:
    ids = {node.key: index + 1 for index, node in enumerate(graph.nodes)}
    saved = {}
    for order, node in enumerate(graph.nodes):
        layout = layouts[node.type]
        unknown = set(node.values) - {w["name"] for w in layout["widgets"]}
        if unknown:
            raise KeyError(f"{graph.name}: {node.type} has no widgets {sorted(unknown)}")
        values = [node.values.get(w["name"], widget_default(node.type, w)) if w["serialized"] else None
                  for w in layout["widgets"]]
        while values and values[-1] is None and not layout["widgets"][len(values) - 1]["serialized"]:
            values.pop()  # the frontend leaves trailing unsaved widgets out
        entry = {
            "id": ids[node.key],
            "type": node.type,
            "pos": list(node.pos),
            "size": list(node.size or (320, 60 + 26 * (len(layout["slots"]) + len(layout["outputs"])))),
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": [{"localized_name": s["name"], "name": s["name"], "type": s["type"],
                        **({"shape": 7} if s["optional"] else {}),
                        **({"widget": {"name": s["widget"]}} if s["widget"] else {}), "link": None}
                       for s in layout["slots"]],
            "outputs": [{"localized_name": o["name"], "name": o["name"], "type": o["type"], "links": []}
                        for o in layout["outputs"]],
            "properties": {"Node name for S&R": node.type},
            "widgets_values": values,
        }
        if node.type in ("Note", "MarkdownNote"):
            entry["properties"] = {}
            entry["color"], entry["bgcolor"] = "#432", "#653"
        if node.title:
            entry["title"] = node.title
        saved[node.key] = entry

    links = []
    for link_id, (src, output_name, dst, input_name) in enumerate(graph.links, start=1):
        origin, target = saved[src], saved[dst]
        origin_slot = [o["name"] for o in origin["outputs"]].index(output_name)
        target_slot = [i["name"] for i in target["inputs"]].index(input_name)
        kind = origin["outputs"][origin_slot]["type"]
        origin["outputs"][origin_slot]["links"].append(link_id)
        target["inputs"][target_slot]["link"] = link_id
        links.append([link_id, origin["id"], origin_slot, target["id"], target_slot, kind])
    for entry in saved.values():
        for output in entry["outputs"]:
            output["links"] = output["links"] or None

    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-audio2head/workflows/{graph.name}")),
        "revision": 0,
        "last_node_id": len(graph.nodes),
        "last_link_id": len(links),
        "nodes": list(saved.values()),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [40, 40]}},
        "version": 0.4,
    }


# ------------------------------------------------------------------------------------------------ the examples
# Layout: columns left to right (inputs, loader/features, predictor, pose tools, motion/generator, video), a note on
# top. Sizes are generous; the frontend grows a node that needs more room when it loads the file.
GAP = 50
NOTE_HEIGHT = 280


def note(text: str, width: int = 900) -> Node:
    return Node("note", "Note", (0, -NOTE_HEIGHT - GAP), {"text": text.strip()}, size=(width, NOTE_HEIGHT))


SETUP = (
    "Setup: put the Audio2Head weights in ComfyUI/models/audio2head (the original audio2head.pth.tar is converted "
    "to .safetensors on first use; or pick the Hub entry), then choose your portrait in Load Image and your speech "
    "in Load Audio. Frames, fps and the original audio go into Create Video (25 fps) and Save Video writes an MP4 "
    "with sound to ComfyUI/output/video."
)


def inputs(x: int = 0) -> list:
    return [
        Node("image", "LoadImage", (x, 0), {"image": IMAGE_FILE}, size=(300, 340)),
        Node("audio", "LoadAudio", (x, 340 + GAP), {"audio": AUDIO_FILE}, size=(300, 150)),
    ]


def video_out(x: int, frames: tuple[str, str], fps: tuple[str, str]) -> tuple[list, list]:
    """Core CreateVideo (frames, fps, the original audio) -> SaveVideo, from column x."""
    nodes = [
        Node("video", "CreateVideo", (x, 0), {"fps": 25.0}, size=(280, 110)),
        Node("save", "SaveVideo", (x + 280 + GAP, 0), {"filename_prefix": "video/Audio2Head"}, size=(360, 440)),
    ]
    links = [(*frames, "video", "images"), (*fps, "video", "fps"), ("audio", "AUDIO", "video", "audio"),
             ("video", "VIDEO", "save", "video")]
    return nodes, links


def stage_graph(image: tuple[str, str], x: int, pose_tools: list, pose_width: int = 0) -> tuple[list, list]:
    """Loader, features, predictor, keypoint detector, motion field and generator from column x, then the video.

    `pose_tools` are nodes placed in a column of `pose_width` between the predictor and the motion field; the
    caller links them. Returns the nodes and the links (the motion field's pose comes from the predictor)."""
    loader_x, predictor_x = x, x + 360 + GAP
    motion_x = predictor_x + 420 + GAP + (pose_width + GAP if pose_width else 0)
    for node in pose_tools:
        node.pos = (predictor_x + 420 + GAP + node.pos[0], node.pos[1])
    nodes = [
        Node("loader", "Audio2HeadModelLoader", (loader_x, 0), {"weights": WEIGHTS_FILE}, size=(360, 220)),
        Node("features", "Audio2HeadAudioFeatures", (loader_x, 340 + GAP), size=(360, 120)),
        Node("kp_source", "Audio2HeadKeypointDetector", (predictor_x, 0), size=(420, 90)),
        Node("poses", "Audio2HeadPosePredictor", (predictor_x, 90 + GAP), size=(420, 320)),
        *pose_tools,
        Node("generator", "Audio2HeadGenerator", (motion_x, 0), size=(340, 170)),
        Node("motion", "Audio2HeadMotionField", (motion_x, 170 + GAP), size=(340, 130)),
    ]
    links = [
        ("audio", "AUDIO", "features", "audio"),
        ("loader", "model", "poses", "model"), (*image, "poses", "image"),
        ("features", "features", "poses", "features"),
        ("loader", "model", "kp_source", "model"), (*image, "kp_source", "image"),
        ("loader", "model", "motion", "model"), (*image, "motion", "image"),
        ("features", "features", "motion", "features"), ("poses", "pose", "motion", "pose"),
        ("loader", "model", "generator", "model"), (*image, "generator", "image"),
        ("kp_source", "source_keypoints", "generator", "source_keypoints"),
        ("motion", "driving_keypoints", "generator", "driving_keypoints"),
    ]
    return nodes, links


def end_x(nodes: list) -> int:
    return max(n.pos[0] + (n.size or (340, 0))[0] for n in nodes if n.type != "Note") + GAP


def replace_pose(links: list, pose_from: tuple[str, str]) -> list:
    """The links with the motion field's pose taken from `pose_from` instead of the predictor."""
    return [link for link in links if link[2:] != ("motion", "pose")] + [(*pose_from, "motion", "pose")]


def finish(nodes: list, frames: tuple[str, str], fps: tuple[str, str], text: str, width: int = 900) -> list:
    """Appends the video nodes after the last column and the note (`text` + SETUP); returns the video links."""
    video, links = video_out(end_x(nodes), frames, fps)
    nodes += [*video, note(text + SETUP, width=width)]
    return links


def generator_graph(name: str, text: str, pose_tools: list, pose_width: int = 0, pose_from: tuple | None = None,
                    pose_links: tuple = (), predictor: bool = True, width: int = 900) -> Graph:
    """The inputs, `stage_graph` from column 350 on the loaded image with `pose_tools`, the generator's frames to
    the video, and the note. `pose_from` replaces the predictor's pose at the motion field, `pose_links` link the
    pose tools, and `predictor=False` leaves the pose predictor out."""
    nodes, links = stage_graph(("image", "IMAGE"), 350, pose_tools, pose_width=pose_width)
    nodes = inputs() + [n for n in nodes if predictor or n.key != "poses"]
    if not predictor:
        links = [link for link in links if "poses" not in (link[0], link[2])]
    video_links = finish(nodes, ("generator", "frames"), ("generator", "fps"), text, width=width)
    if pose_from:
        links = replace_pose(links, pose_from)
    return Graph(name, nodes, links + list(pose_links) + video_links)


def quick_start() -> Graph:
    nodes = [*inputs(), Node("a2h", "Audio2HeadAllInOne", (350, 0), {"weights": WEIGHTS_FILE}, size=(400, 470))]
    links = finish(nodes, ("a2h", "frames"), ("a2h", "fps"), (
        "Audio2Head quick start: one portrait + one speech recording -> a talking-head video.\n\n"
        "Audio2Head (all-in-one) runs every stage: audio features, natural head motion predicted from the "
        "speech, the motion field, keypoints and the warping generator. The head-pose curve it used is plotted on "
        "the node after a run (top: yaw, pitch, roll in degrees; bottom: x, y, z offsets). Connect a curve from "
        "the pose tools to its 'pose' input to choose the head motion yourself.\n\n"))
    links += [("image", "IMAGE", "a2h", "image"), ("audio", "AUDIO", "a2h", "audio")]
    return Graph("audio2head_quick_start", nodes, links)


def long_clip() -> Graph:
    """The VIDEO path: the all-in-one node streams its MP4 to disk and Save Video copies it; no IMAGE batch."""
    nodes = [*inputs(),
             Node("a2h", "Audio2HeadAllInOne", (350, 0), {"weights": WEIGHTS_FILE, "frames_output": "first only"},
                  size=(400, 500))]
    nodes.append(Node("save", "SaveVideo", (end_x(nodes), 0), {"filename_prefix": "video/Audio2Head"},
                      size=(360, 440)))
    nodes.append(note(
        "Audio2Head for long clips (minutes of speech): the video output streams.\n\n"
        "The all-in-one node encodes the frames into an MP4 batch by batch while it renders (in ComfyUI's temp "
        "folder), and Save Video copies that file to ComfyUI/output/video without decoding it again, so memory "
        "stays flat however long the speech is. 'frames_output' is 'first only': the frames output holds a single "
        "preview frame instead of every frame (set it to 'all' to post-process frames, which needs about 1.2 GB "
        "per minute at 256x256 and far more at a full picture's size). The MP4 has the speech as its sound, "
        "trimmed to the video, and is marked as synthetic in its metadata.\n\n"
        "Setup: put the Audio2Head weights in ComfyUI/models/audio2head (the original audio2head.pth.tar is "
        "converted to .safetensors on first use; or pick the Hub entry), then choose your portrait in Load Image "
        "and your speech in Load Audio."))
    links = [("image", "IMAGE", "a2h", "image"), ("audio", "AUDIO", "a2h", "audio"), ("a2h", "video", "save", "video")]
    return Graph("audio2head_long_clip", nodes, links)


def stage_by_stage() -> Graph:
    return generator_graph("audio2head_stage_by_stage", (
        "Audio2Head stage by stage: the same result as the all-in-one node, with every stage as its own node so "
        "you can inspect or replace any of them.\n\n"
        "Audio Features (41 per 10 ms) -> Pose Predictor (head motion from the speech; its curve is plotted on "
        "the node after a run) -> Motion Field (driving keypoints per frame) + Keypoint Detector (source "
        "keypoints, once) -> Generator (frames, 25 fps).\n\n"), [])


def crop_and_paste() -> Graph:
    crop = Node("crop", "Audio2HeadCrop", (350, 0), {"mode": "auto"}, size=(300, 420))
    nodes, links = stage_graph(("crop", "image"), 350 + 300 + GAP, [])
    nodes = [*inputs(), crop, *nodes]
    paste = Node("paste", "Audio2HeadPasteBack", (end_x(nodes), 0), {"feather": 0.1}, size=(300, 120))
    nodes.append(paste)
    video_links = finish(nodes, ("paste", "frames"), ("generator", "fps"), (
        "Audio2Head on a face inside a larger picture: crop, animate, paste back.\n\n"
        "Audio2Head Crop finds the face in any portrait (mode auto) and cuts the square head-and-shoulders crop the "
        "model was trained on, resized to 256x256; its preview shows the face box (green) and the crop (orange). "
        "Several faces: the largest is used, face_index picks another; crop_scale and crop_offset change the "
        "framing; mode manual takes your own x, y, width, height. After the Generator, Paste Back blends every "
        "frame into the full picture with a feathered edge, so the video has the full picture's size (cut to even "
        "width and height for H.264).\n\n"))
    links += [("image", "IMAGE", "crop", "image"), ("generator", "frames", "paste", "frames"),
              ("crop", "crop", "paste", "crop")]
    return Graph("audio2head_crop_and_paste_back", nodes, links + video_links)


KEYFRAMES = {
    "interpolation": "smooth",
    "keyframes": [
        {"time": 0.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0},
        {"time": 0.6, "yaw": 10.0, "pitch": -3.0, "roll": 2.0},
        {"time": 1.4, "yaw": -8.0, "pitch": 4.0, "roll": -2.0},
        {"time": 2.2, "yaw": 4.0, "pitch": -2.0, "roll": 1.0},
        {"time": 3.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0},
    ],
}


def keyframe_text(document: dict) -> str:
    """The widget text as the web editor writes it (one key per line), so an untouched re-save keeps it."""
    head = "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in document.items() if k != "keyframes")
    keys = ",\n  ".join(json.dumps(k, separators=(",", ":")) for k in document["keyframes"])
    return "{\n" + head + ' "keyframes": [\n  ' + keys + "\n ]\n}"


def custom_keyframes() -> Graph:
    keys = Node("keys", "Audio2HeadPoseKeyframes", (0, 0), {"keyframes": keyframe_text(KEYFRAMES)}, size=(520, 600))
    return generator_graph("audio2head_custom_keyframes", (
        "Audio2Head with your own head motion: a keyframe curve replaces the predicted one.\n\n"
        "Pose Keyframes builds the head-pose curve that drives the Motion Field. Drag the dots in its plot (top: "
        "yaw, pitch, roll in degrees; bottom: x, y, z), double-click the plot to add a keyframe, double-click or "
        "right-click a dot to delete it, click a legend entry to hide a channel. The JSON box holds the same "
        "keyframes (times in seconds or 'frame', interpolation linear / smooth / ease) and is saved with the "
        "workflow.\n\n'features' makes the curve as long as the audio (the last keyframe is held); 'base' gives "
        "the channels no keyframe sets (here x, y, z, dashed in the plot) from the predicted curve's first pose, "
        "the portrait's own.\n\n"), [keys], pose_width=520, pose_from=("keys", "pose"),
        pose_links=(("features", "features", "keys", "features"), ("poses", "pose", "keys", "base")), width=1000)


def still_head() -> Graph:
    still = Node("still", "Audio2HeadStillHead", (0, 90 + GAP), {"num_frames": 0}, size=(320, 120))
    return generator_graph("audio2head_still_head", (
        "Audio2Head without head motion: the lips and face move with the speech, the head stays still.\n\n"
        "Still Head holds the first pose of the predicted curve (pose 0 is estimated from the portrait itself, so "
        "the head keeps the angle it has in the picture) for the whole video; 'features' sizes the curve to the "
        "audio. Disconnect its pose input for a frontal head instead.\n\n"), [still], pose_width=320,
        pose_from=("still", "pose"),
        pose_links=(("poses", "pose", "still", "pose"), ("features", "features", "still", "features")))


OPENFACE_FILE = "example_openface_pose.csv"  # shipped in workflows/; Pose Load offers it in its dropdown


def pose_from_file() -> Graph:
    tools = [
        Node("load", "Audio2HeadPoseLoad", (0, 90 + GAP), {"path": OPENFACE_FILE, "fps": 25.0}, size=(380, 320)),
        Node("retime", "Audio2HeadPoseRetime", (0, 460 + 2 * GAP), {"mode": "pingpong", "num_frames": 0},
             size=(380, 330)),
        Node("edit", "Audio2HeadPoseEdit", (380 + GAP, 90 + GAP), {"scale": 1.0, "smooth": 1.5}, size=(380, 560)),
    ]
    return generator_graph("audio2head_pose_from_file", (
        "Audio2Head driven by a head-pose curve from a file.\n\n"
        "Pose Load reads a .json or .csv pose curve (this pack's format, see a2h_core/pose/curve.py) or an "
        "OpenFace 2.0 "
        "FeatureExtraction CSV (pose_Tx .. pose_Rz, the tool the paper used for its ground truth) from "
        "ComfyUI/input (upload one with the node's button), resampled to 25 fps. The dropdown also offers the pack's "
        "example_openface_pose.csv (synthetic motion in OpenFace's layout, 30 fps). Pose Retime fits the curve to the "
        "audio (pingpong: loops "
        "back and forth), Pose Edit scales the motion, offsets it and smooths jitter. Each pose node plots its "
        "curve after a run.\n\n"), tools, pose_width=810, pose_from=("edit", "pose"),
        pose_links=(("load", "pose", "retime", "pose"), ("features", "features", "retime", "features"),
                    ("retime", "pose", "edit", "pose")), predictor=False, width=1000)


def write_openface_example(path: Path, seconds: float = 3.0, fps: float = 30.0) -> None:
    """A synthetic OpenFace 2.0 head-pose CSV: slow turns and nods in the model's training range, 30 fps."""
    import numpy as np

    t = np.arange(int(seconds * fps)) / fps
    rows = ["frame, face_id, timestamp, confidence, success, pose_Tx, pose_Ty, pose_Tz, pose_Rx, pose_Ry, pose_Rz"]
    for i, time in enumerate(t):
        pitch = 0.06 * np.sin(2 * np.pi * 0.7 * time)
        yaw = 0.15 * np.sin(2 * np.pi * 0.4 * time + 0.5)
        roll = 0.04 * np.sin(2 * np.pi * 0.5 * time + 1.0)
        tx, ty, tz = 28 + 6 * np.sin(2 * np.pi * 0.4 * time), 42 + 3 * np.sin(2 * np.pi * 0.7 * time), 280.0
        rows.append(f"{i + 1}, 0, {time:.3f}, 0.98, 1, {tx:.1f}, {ty:.1f}, {tz:.1f}, {pitch:.3f}, {yaw:.3f}, "
                    f"{roll:.3f}")
    path.write_text("\n".join(rows) + "\n")


EXAMPLES = [quick_start, long_clip, stage_by_stage, custom_keyframes, still_head, pose_from_file, crop_and_paste]


def main() -> None:
    layouts = all_layouts()
    WORKFLOW_DIR.mkdir(exist_ok=True)
    write_openface_example(WORKFLOW_DIR / OPENFACE_FILE)
    for example in EXAMPLES:
        graph = example()
        path = WORKFLOW_DIR / f"{graph.name}.json"
        path.write_text(json.dumps(build(graph, layouts), indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
