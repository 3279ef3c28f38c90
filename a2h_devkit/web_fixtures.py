"""The keyframe documents and curves the web editor's JavaScript interpolation is tested against
(web/tests/*.test.mjs): web/tests/fixtures/keyframe_curves.json holds keyframe documents and the curves
a2h_core/pose builds from them. web/tests/make_fixtures.py writes the file; tests/test_workflows.py checks in CI
that the stored numbers are still what a2h_core/pose gives."""
from __future__ import annotations

import json
import warnings

import numpy as np

from a2h_devkit.imports import REPOSITORY, ensure_comfy_api

FIXTURES = REPOSITORY / "web" / "tests" / "fixtures" / "keyframe_curves.json"
CHANNELS = ("yaw", "pitch", "roll", "x", "y", "z")


def curve_cases(rng: np.random.Generator) -> list:
    """Keyframe documents covering the schema: frame/time keys, missing channels, relative, base, every mode."""
    cases = [
        {"interpolation": "linear", "keyframes": [{"frame": 0, "yaw": 0}, {"frame": 10, "yaw": 20, "x": 5},
                                                  {"frame": 30, "yaw": -10}]},
        {"interpolation": "smooth", "fps": 25, "keyframes": [{"time": 0.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0},
                                                             {"time": 1.0, "yaw": 12.0, "pitch": -4.0, "roll": 2.0},
                                                             {"time": 2.0, "yaw": -8.0, "pitch": 5.0, "roll": -2.0},
                                                             {"time": 3.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0}]},
        {"interpolation": "ease", "num_frames": 40,
         "keyframes": [{"frame": 5, "pitch": 10}, {"frame": 25, "pitch": -10}]},
        [{"frame": 0, "roll": 3}, {"frame": 7.5, "roll": -4, "z": 300}, {"frame": 12, "roll": 8}],  # a bare list
        {"interpolation": "smooth", "relative": True, "base": {"yaw": 5, "x": 10},
         "keyframes": [{"frame": 0, "yaw": 0, "x": 0}, {"frame": 20, "yaw": 10, "x": -30}]},
        {"interpolation": "linear", "relative": True, "base": [0.1, -0.05, 0.02, 20.0, 40.0, 290.0],
         "keyframes": [{"frame": 0, "pitch": 0}, {"frame": 15, "pitch": 6}]},
        {"interpolation": "smooth", "fps": 30, "keyframes": [{"time": 0.5, "yaw": 4}]},  # one key: held
    ]
    for mode in ("linear", "smooth", "ease"):
        for count in (2, 3, 5, 8):
            frames = np.sort(rng.choice(np.arange(0, 60), size=count, replace=False)).astype(float)
            frames[1:] += rng.uniform(0, 0.9, count - 1).round(2)  # some fractional keys
            keys = []
            for frame in frames:
                key = {"frame": float(frame)}
                for c in CHANNELS:
                    if rng.random() < 0.8:
                        key[c] = round(float(rng.uniform(-25, 25) if c in CHANNELS[:3] else rng.uniform(-40, 40)
                                             + {"x": 28.0, "y": 42.0, "z": 280.0}.get(c, 0.0)), 3)
                keys.append(key)
            cases.append({"interpolation": mode, "num_frames": int(frames[-1]) + 6, "keyframes": keys})
    return cases


def interpolation_cases(rng: np.random.Generator) -> list:
    cases = []
    for mode in ("linear", "smooth", "ease"):
        for count in (1, 2, 3, 4, 7):
            t = np.cumsum(rng.uniform(0.3, 3.0, count)) - 1.0
            v = rng.normal(0, 10, count)
            if count > 3:
                v[2] = v[1]  # a flat segment: PCHIP's zero-slope branch
            at = np.sort(np.concatenate([rng.uniform(t[0] - 2, t[-1] + 2, 25), t]))
            cases.append({"t": t.tolist(), "v": v.tolist(), "at": at.tolist(), "mode": mode})
    return cases


def expected(fixtures: dict) -> dict:
    """The fixtures with pose.py's results filled in."""
    from a2h_core.pose import DEFAULT_YPR, curve_from_keyframes, interpolate_keys

    fixtures["default_ypr"] = dict(zip(CHANNELS, (float(v) + 0.0 for v in DEFAULT_YPR)))  # + 0.0: no -0.0

    for case in fixtures["interpolate_keys"]:
        case["expected"] = interpolate_keys(np.array(case["t"]), np.array(case["v"]), np.array(case["at"]),
                                            case["mode"]).tolist()
    for case in fixtures["curves"]:
        document = case["document"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            curve = curve_from_keyframes(document if isinstance(document, dict) else {"keyframes": document})
        ypr = curve.to_ypr()
        case["fps"] = curve.fps
        case["expected"] = {c: ypr[:, i].tolist() for i, c in enumerate(CHANNELS)}
    return fixtures


def node_default_keyframes() -> str:
    """The keyframe node's default widget text (the editor must read it)."""
    ensure_comfy_api()
    from nodes.pose_tools import DEFAULT_KEYFRAMES
    return DEFAULT_KEYFRAMES


def format_fixtures(fixtures: dict) -> str:
    """JSON with one case per line (readable diffs when pose.py changes)."""
    parts = []
    for name, value in fixtures.items():
        if isinstance(value, list):
            rows = ",\n  ".join(json.dumps(case) for case in value)
            parts.append(f"{json.dumps(name)}: [\n  {rows}\n ]")
        else:
            parts.append(f"{json.dumps(name)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def build_fixtures(seed: int = 7) -> dict:
    """The whole fixture document: random keyframe cases (seeded) with a2h_core/pose's results filled in."""
    rng = np.random.default_rng(seed)
    fixtures = {
        "about": "Generated by web/tests/make_fixtures.py from a2h_core/pose/curve.py; yaw/pitch/roll in degrees.",
        "interpolate_keys": interpolation_cases(rng),
        "curves": [{"document": d} for d in curve_cases(rng)],
        "node_default_keyframes": node_default_keyframes(),
    }
    return expected(fixtures)
