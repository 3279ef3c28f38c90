"""Side-by-side check of our four networks against the original Audio2Head code, on the same random weights.

    python tools/compare_networks.py --original /path/to/Audio2Head [--frames 40] [--generator-frames 4]
    python tools/compare_networks.py --original /path/to/Audio2Head \
        --write-manifest tests/data/published_state_dict_shapes.json

The original is imported at run time from --original (nothing of it is copied): its modules are built at the
published sizes with random weights (random init, random Jacobian heads, random batch-norm affine parameters and
running statistics so that no layer is an identity, the generator's last layer scaled so its output spreads over
0..1), the weights are strict-loaded into `Audio2HeadModels`, and both run on the same inputs on the CPU in
float32: a real demo image, features of the original's demo audio computed with the original's own feature code,
pose boxes drawn with the original's own drawing function, and driving keypoints near the source keypoints. The
original renders frame by frame; ours renders all frames in one batch from one source encoding.
Printed per output: largest and mean absolute difference, the reference's value range, and for context how far the
original itself moves between float32 and float64 (not for audio2kp: float64 3-D convolutions on the CPU unfold
their input and would need over 20 GB).

`--write-manifest` writes the original's state-dict key -> shape table that tests/test_networks.py checks against.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2h_core.modules.keypoints import Keypoints
from a2h_devkit.original import build_original, flat_state_dict, import_original, original_image, same_weights


def diff(name: str, ours: torch.Tensor, theirs: torch.Tensor, context: torch.Tensor | None = None) -> None:
    d = (ours.double() - theirs.double()).abs()
    line = (f"{name:<34} max {d.max().item():.3e}   mean {d.mean().item():.3e}   "
            f"(values {theirs.min().item():+.3g}..{theirs.max().item():+.3g}, std {theirs.double().std().item():.3g})")
    if context is not None:
        c = (context.double() - theirs.double()).abs()
        line += f"   | original f64 vs f32: max {c.max().item():.3e}   mean {c.mean().item():.3e}"
    print(line, flush=True)


def item(outputs: dict | None, key: str) -> torch.Tensor | None:
    return None if outputs is None else outputs[key]


@contextlib.contextmanager
def float64(modules: list[nn.Module]):
    """Run the original in float64 (its code makes new tensors in the default dtype, so switch that too)."""
    for module in modules:
        module.double()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(torch.float32)
        for module in modules:
            module.float()


def make_inputs(root: Path, frames: int, seed: int):
    """The original's demo image, its features of the demo audio (`frames` frames), one motion-field window of them
    (zero-padded) and 64 random pose boxes drawn with its own drawing function."""
    inference = import_original(root).inference
    image = original_image(root / "demo" / "img" / "paint.jpg")
    features = inference.get_audio_feature_from_audio(str(root / "demo" / "audio" / "intro.wav"))
    features = features[: frames * 4].astype(np.float32).reshape(frames, 4, 41)
    rng = np.random.default_rng(seed)
    low = np.array([-0.639, -0.501, -0.47, -102.6, -32.5, 184.6])
    high = np.array([0.411, 0.547, 0.433, 159.1, 116.5, 376.5])
    poses = low + (high - low) * rng.uniform(0.2, 0.8, size=(64, 6))
    boxes = []
    for pose in poses:
        canvas = np.zeros([256, 256])
        inference.draw_annotation_box(canvas, np.array(pose[:3]), np.array(pose[3:]))
        boxes.append(canvas)
    boxes = torch.from_numpy(np.array(boxes, dtype=np.float32)).unsqueeze(0)
    window = np.zeros((64, 4, 41), dtype=np.float32)
    window[: min(frames, 64)] = features[:64]
    return image, torch.from_numpy(features).unsqueeze(0), torch.from_numpy(window).unsqueeze(0), boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, required=True, help="folder of the original Audio2Head repository")
    parser.add_argument("--frames", type=int, default=40, help="audio frames for the pose predictor")
    parser.add_argument("--generator-frames", type=int, default=4, help="driving frames rendered by the generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-float64", action="store_true", help="skip the original's float64 reference runs")
    parser.add_argument("--write-manifest", type=Path, help="write the original's key -> shape table and exit")
    args = parser.parse_args()
    root = args.original.resolve()

    torch.manual_seed(args.seed)
    original = build_original(root)
    if args.write_manifest:
        shapes = {key: list(value.shape) for key, value in flat_state_dict(original).items()}
        args.write_manifest.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{json.dumps(key)}: {json.dumps(shape)}" for key, shape in shapes.items()]
        args.write_manifest.write_text("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"wrote {len(shapes)} keys to {args.write_manifest}")
        return

    ours = same_weights(original, args.seed)
    print(f"strict load of the original's {len(ours.state_dict())} tensors: ok")
    image, audio, window, boxes = make_inputs(root, args.frames, args.seed)
    with_f64 = not args.no_float64

    def reference(module_names, run):
        """The original's float32 output and its float64 output (None when skipped)."""
        out32 = run(torch.float32)
        if not with_f64:
            return out32, None
        with float64([original[name] for name in module_names]):
            out64 = run(torch.float64)
        return out32, out64

    with torch.no_grad():
        start = time.time()
        poses = ours.audio2pose(image, audio)
        ref, ref64 = reference(["audio2pose"], lambda dt: original["audio2pose"](
            {"img": image.to(dt), "audio": audio.to(dt)}))
        diff(f"audio2pose poses [1,{args.frames + 1},6] (normalised)", poses, ref, ref64)
        print(f"  ({time.time() - start:.1f} s)", flush=True)

        start = time.time()
        kp_drv = ours.audio2kp(window, boxes, image)
        # No float64 run here: CPU float64 3-D convolutions unfold their input (over 20 GB for this network).
        ref = original["audio2kp"]({"audio": window, "pose": boxes, "id_img": image})
        diff("audio2kp keypoints [64,10,2]", kp_drv.value, ref["value"][0])
        diff("audio2kp jacobians [64,10,2,2]", kp_drv.jacobian, ref["jacobian"][0])
        print(f"  ({time.time() - start:.1f} s)", flush=True)

        start = time.time()
        kp_src = ours.kp_detector(image)
        ref, ref64 = reference(["kp_detector"], lambda dt: original["kp_detector"](image.to(dt)))
        diff("kp_detector keypoints [1,10,2]", kp_src.value, ref["value"], item(ref64, "value"))
        diff("kp_detector jacobians [1,10,2,2]", kp_src.jacobian, ref["jacobian"], item(ref64, "jacobian"))
        print(f"  ({time.time() - start:.1f} s)", flush=True)

        # Driving keypoints: the source's, moved and with perturbed Jacobians, as real head motion does (random
        # motion-field outputs would send most of the warp outside the image).
        start = time.time()
        n = args.generator_frames
        noise = torch.Generator().manual_seed(args.seed + 1)
        driving = Keypoints(
            (kp_src.value + 0.05 * torch.randn(n, *kp_src.value.shape[1:], generator=noise)).clamp(-1, 1),
            kp_src.jacobian @ (torch.eye(2) + 0.1 * torch.randn(n, *kp_src.jacobian.shape[1:], generator=noise)),
        )
        features = ours.generator.encode_source(image)
        out = ours.generator(image, features, kp_src, driving)
        ours_time = time.time() - start

        def run_generator(dt):
            source = {"value": kp_src.value.to(dt), "jacobian": kp_src.jacobian.to(dt)}
            frames = [original["generator"](image.to(dt), kp_source=source,
                                            kp_driving={"value": driving.value[i:i + 1].to(dt),
                                                        "jacobian": driving.jacobian[i:i + 1].to(dt)})
                      for i in range(n)]
            return {key: torch.cat([f[key] for f in frames]) for key in ("prediction", "occlusion_map", "deformation")}

        start = time.time()
        ref, ref64 = reference(["generator"], run_generator)
        for key, shape in (("prediction", f"[{n},3,256,256]"), ("occlusion_map", f"[{n},1,64,64]"),
                           ("deformation", f"[{n},64,64,2]")):
            diff(f"generator {key} {shape}", out[key], ref[key], item(ref64, key))
        print(f"  (ours, batched: {ours_time:.1f} s; original, per frame, f32{'+f64' if with_f64 else ''}: "
              f"{time.time() - start:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
