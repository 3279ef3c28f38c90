"""`python -m a2h_core evaluate pose`: the head-motion metrics of a weights file on prepared data, with baselines."""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from a2h_core.device import parse_device
from a2h_core.io.weights import load_models
from a2h_core.pose import POSE_COLUMNS
from a2h_core.training.datasets import shard_clips
from a2h_core.training.pose_task import evaluate_constant, evaluate_predictor, mean_pose
from a2h_core.training.shards import TrainingData


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `evaluate`; its handler is stored as the parser default `func`."""
    parser = subparsers.add_parser("evaluate", help="metrics of trained weights on prepared data",
                                   description="Predict every clip of a split of prepared data from its first frame "
                                               "and audio, as at inference, and compare with the true poses.")
    networks = parser.add_subparsers(dest="network", required=True, metavar="NETWORK")
    pose = networks.add_parser("pose", help="the head-motion predictor: HE, correlation, HS*, per-dimension stats")
    pose.add_argument("--weights", required=True, help="weights file, folder or Hub repo id")
    pose.add_argument("--data", type=Path, required=True, help="prepared data folder")
    pose.add_argument("--split", choices=("val", "train"), default="val", help="which clips (default val)")
    pose.add_argument("--max-clips", type=int, default=None, help="only the first N clips (by name)")
    pose.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps")
    pose.add_argument("--json", type=Path, help="also write the numbers here")
    pose.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    device = parse_device(args.device)
    data = TrainingData.open(args.data)
    clips = shard_clips(data, args.split, args.max_clips)
    models = load_models(args.weights, device=device)
    model, _ = evaluate_predictor(models.audio2pose, clips, device)
    baseline_pose = mean_pose(shard_clips(data, "train")) if any(c.split == "train" for c in data.clips) \
        else mean_pose(clips)
    baseline = evaluate_constant(baseline_pose, clips)
    print(f"{args.split}: {model['clips']} clips, {model['frames']} frames; weights {args.weights}")
    print(f"{'':<22}{'HE (norm.) ↓':>14}{'correlation ↑':>15}{'HS* ↑':>8}")
    for name, result in (("model", model), ("mean-pose baseline", baseline)):
        print(f"{name:<22}{result['he']:>14.4f}{_fmt(result['correlation']):>15}{result['hs_star']:>8.3f}")
    print("per dimension (model; rotations in rad, translations in camera units):")
    print(f"{'':<4}{'mean pred':>11}{'mean true':>11}{'motion pred':>13}{'motion true':>13}{'|error|':>10}")
    for name in POSE_COLUMNS:
        row = model["per_dim"][name]
        print(f"{name:<4}{row['mean_pred']:>11.4g}{row['mean_true']:>11.4g}{row['motion_pred']:>13.4g}"
              f"{row['motion_true']:>13.4g}{row['he_per_dim']:>10.4g}")
    print("HS* is a documented substitute for the HS metric of Yi et al. 2020 (see a2h_core.training.metrics).")
    if args.json:
        document = {"weights": str(args.weights), "split": args.split, "model": model,
                    "mean_pose_baseline": baseline}
        partial = args.json.with_name(f".{args.json.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(document, indent=1, default=float) + "\n", encoding="utf-8")
        os.replace(partial, args.json)
        print(f"wrote {args.json}")
    return 0


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
