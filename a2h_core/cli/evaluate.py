"""`python -m a2h_core evaluate pose|video`: the head-motion metrics of a weights file on prepared data, with
baselines; and the paper's video evaluation (PSNR, SSIM, KE, LPIPS, FID, SyncNet's LSE-D/LSE-C) with figures."""
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

    video = networks.add_parser(
        "video", help="the paper's protocol: generate each held-out clip from its first frame and audio; PSNR, "
                      "SSIM, KE, LPIPS, FID, LSE-D/LSE-C against the real frames",
        description="For each clip of the split: generate from its first frame and its audio (predicted poses, or "
                    "the clip's true poses with --true-poses, Table 2's GT-head), compare with the real frames. "
                    "LPIPS needs the lpips package and AlexNet's weights, FID the pytorch-fid package and its "
                    "Inception weights (pip install -e .[metrics]; the weights download once, or come from the "
                    "files given below), lip sync (SyncNet's LSE-D/LSE-C) the --syncnet-weights file: each is "
                    "skipped with the reason when unavailable.")
    video.add_argument("--weights", required=True, help="weights file, folder or Hub repo id")
    video.add_argument("--data", type=Path, required=True, help="prepared data folder (frames at the model's size)")
    video.add_argument("--split", choices=("val", "train"), default="val", help="which clips (default val)")
    video.add_argument("--max-clips", type=int, default=None, help="only the first N clips (by name)")
    video.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each clip")
    video.add_argument("--true-poses", action="store_true", help="drive with the clips' true poses (GT-head)")
    video.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps")
    video.add_argument("--batch-size", type=int, default=8, help="frames rendered per pass (default 8)")
    video.add_argument("--json", type=Path, help="write the numbers here")
    video.add_argument("--figures", type=Path, default=None,
                       help="folder for the PNG figures (default: beside --json as <name>_figures, else none)")
    video.add_argument("--inception-weights", type=Path, default=None,
                       help="a local pt_inception-2015-12-05-6726825d.pth for FID (default: pytorch-fid's download)")
    video.add_argument("--lpips-backbone-weights", type=Path, default=None,
                       help="a local alexnet-owt-7be5be79.pth (torchvision's AlexNet) for LPIPS (default: "
                            "torchvision's download)")
    video.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    video.add_argument("--no-fid", action="store_true", help="skip FID")
    video.add_argument("--syncnet-weights", type=Path, default=None,
                       help="SyncNet's syncnet_v2.model (joonson/syncnet_python's download_model.sh) for the lip-sync "
                            "scores LSE-D/LSE-C; skipped without it")
    video.set_defaults(func=run_video)
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


# The overall numbers printed, in this order, where computed (real_*: SyncNet on the real frames, for reference).
OVERALL_KEYS = ("psnr", "ssim", "ke", "lpips", "fid", "lse_d", "lse_c", "real_lse_d", "real_lse_c")


def run_video(args: argparse.Namespace) -> int:
    from a2h_core.previews.frame_strip import frame_strip, plot_per_frame
    from a2h_core.previews.pose_plot import save_png
    from a2h_core.training.datasets import check_image_size
    from a2h_core.training.trainer import safe_name
    from a2h_core.training.video_evaluation import evaluate_video

    device = parse_device(args.device)
    data = TrainingData.open(args.data)
    clips = shard_clips(data, args.split, args.max_clips)
    models = load_models(args.weights, device=device)
    check_image_size(clips, models.config.image_size)
    figures = args.figures or (args.json.with_name(args.json.stem + "_figures") if args.json else None)
    written = []

    def on_clip(result) -> None:
        optional = "".join(f", {key.upper()} {result.metrics[key]:.4f}" for key in ("lpips", "lse_d", "lse_c")
                           if key in result.metrics)
        print(f"{result.name}: PSNR {result.metrics['psnr']:.2f} dB, SSIM {result.metrics['ssim']:.4f}, "
              f"KE {result.metrics['ke']:.4f}{optional} ({result.metrics['frames']} frames)")
        if figures is not None:
            figures.mkdir(parents=True, exist_ok=True)
            name = safe_name(result.name)
            written.append(save_png(frame_strip({"real": result.real, "generated": result.generated}),
                                    figures / f"{name}_strip.png"))
            written.append(save_png(plot_per_frame(result.psnr, f"{result.name} PSNR", " dB"),
                                    figures / f"{name}_psnr.png"))

    poses = "true poses (GT-head)" if args.true_poses else "predicted poses"
    print(f"{args.split}: {len(clips)} clips; weights {args.weights}; {poses}")
    report = evaluate_video(models, clips, device, args.true_poses, args.batch_size, args.max_frames,
                            args.inception_weights, lpips_metric=not args.no_lpips, fid=not args.no_fid,
                            lpips_backbone_weights=args.lpips_backbone_weights,
                            syncnet_weights=args.syncnet_weights, on_clip=on_clip)
    overall = report["overall"]
    print(f"overall ({overall['frames']} frames): " + ", ".join(
        f"{key.upper()} {_fmt_value(overall.get(key))}" for key in OVERALL_KEYS if key in overall))
    for metric, reason in report["skipped"].items():
        print(f"{metric.upper()} skipped: {reason}")
    report.update({"weights": str(args.weights), "split": args.split, "image_size": models.config.image_size,
                   "figures": [str(p) for p in written]})
    if args.json:
        partial = args.json.with_name(f".{args.json.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
        os.replace(partial, args.json)
        print(f"wrote {args.json}" + (f" and {len(written)} figures in {figures}" if written else ""))
    return 0


def _fmt_value(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
