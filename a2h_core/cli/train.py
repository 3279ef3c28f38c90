"""`python -m a2h_core train pose|keypoints|motion`: train the networks on prepared data (one process, or many with
torchrun), in the order a user runs them: N_H (pose) on its own; N_D + N_I (keypoints); then N_M (motion, stage 1
then stage 2) with N_D and N_I frozen, from the keypoints run's weights."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from a2h_core.cli.progress import ProgressBar
from a2h_core.config import model_config_from_dict
from a2h_core.errors import Audio2HeadError
from a2h_core.training.config import (
    BATCH_NORM_MODES,
    LR_SCHEDULES,
    NO_AUGMENTATION,
    PRECISIONS,
    KeypointLossConfig,
    MotionLossConfig,
    PoseLossConfig,
    TrainConfig,
    config_from_dict,
    recipe_defaults,
)
from a2h_core.training.datasets import shard_clips
from a2h_core.training.setup import CONFIG_CHOICES, discriminator_config, initial_models, model_config
from a2h_core.training.shards import TrainingData
from a2h_core.training.trainer import STATE_FILE, Trainer

# Options a resumed run may change; every other option must match the saved run (or be left out).
RESUMABLE_CHANGES = {"steps", "val_every", "log_every", "checkpoint_every", "data_workers", "device"}
_LOSS_CONFIGS = {"pose": PoseLossConfig, "keypoints": KeypointLossConfig, "motion": MotionLossConfig}
_LOSS_OPTIONS = {  # command-line options that go into each network's loss config
    "pose": {"window", "ssim_weight", "gan_weight"},
    "keypoints": {"gan_weight", "equivariance_value", "equivariance_jacobian", "repeats", "augmentation"},
    "motion": {"stage", "heatmap_decay_steps", "render_frames", "stage2_keypoint_weight", "reconstruction_weight"},
}


def _common(parser: argparse.ArgumentParser, network: str) -> None:
    defaults = TrainConfig()
    parser.add_argument("--data", type=Path, help="prepared data folder (prepare --out); a resumed run reuses its own")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--config", default=None, help=f"model config: {CONFIG_CHOICES} (default published; "
                                                       "ignored with --init, whose file declares its own)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    # Options default to None so that a resumed run can tell what was asked for.
    parser.add_argument("--steps", type=int, help=f"optimiser steps to reach (default {defaults.steps})")
    batch = recipe_defaults(network).get("batch_size", defaults.batch_size)
    parser.add_argument("--batch-size", type=int, help=f"global batch (default {batch})")
    recipe = " (keypoints: FOMM's values, below)" if network == "keypoints" else ""
    parser.add_argument("--lr", type=float, help=f"Adam learning rate (default {defaults.lr})")
    parser.add_argument("--weight-decay", type=float,
                        help=f"Adam weight decay (default {defaults.weight_decay}{recipe})")
    parser.add_argument("--betas", type=float, nargs=2, metavar=("B1", "B2"),
                        help=f"Adam betas (default {' '.join(map(str, defaults.betas))}{recipe})")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                        help=f"constant (default{recipe}), cosine to 0 at --steps, or multistep: x --lr-gamma after "
                             "each of --lr-milestones epochs")
    parser.add_argument("--lr-milestones", type=float, nargs="+", metavar="EPOCH",
                        help="multistep: epochs after which the rate drops (default 60 90, FOMM's of 100 epochs; "
                             "log.jsonl's first line gives the steps per epoch)")
    parser.add_argument("--lr-gamma", type=float, help=f"multistep: the factor at each milestone (default "
                                                       f"{defaults.lr_gamma})")
    parser.add_argument("--precision", choices=PRECISIONS, help="fp32 (default), bf16 or fp16 (with a grad scaler)")
    parser.add_argument("--batch-norm", choices=BATCH_NORM_MODES,
                        help="auto (default: frozen with --init, else batch), batch or frozen")
    parser.add_argument("--grad-clip", type=float, help="clip gradient norms (default 0: off)")
    parser.add_argument("--seed", type=int, help="seed of initialisation and data order (default 0)")
    parser.add_argument("--val-every", type=int, help=f"steps between validations (default {defaults.val_every})")
    parser.add_argument("--log-every", type=int, help=f"steps between log lines (default {defaults.log_every})")
    parser.add_argument("--checkpoint-every", type=int,
                        help=f"steps between saves of the training state (default {defaults.checkpoint_every})")
    parser.add_argument("--data-workers", type=int, help=f"data-loader processes (default {defaults.data_workers})")
    parser.add_argument("--device", help="auto (default: this process's GPU, else CPU), cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per process (default: torch's choice)")
    if network != "pose":
        parser.add_argument("--vgg-weights", type=Path, default=None,
                            help="a local copy of torchvision's ImageNet VGG weights (vgg19-dcbb9e9d.pth for "
                                 "keypoints, vgg16-397923af.pth for motion --stage 2); default: downloaded once "
                                 "into the torch hub cache")
        parser.add_argument("--vgg-width-divisor", type=int, default=None,
                            help="narrow the VGG by this factor with RANDOM weights (tests and benchmarks only)")
    parser.set_defaults(func=run, network=network)


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `train`; its handler is stored as the parser default `func`."""
    parser = subparsers.add_parser(
        "train", help="train a network on prepared data (pose: N_H; keypoints: N_D + N_I; motion: N_M)",
        description="Train on data written by `prepare`. Works unchanged under torchrun (several GPUs or nodes; "
                    "gloo on the CPU). The run folder gets last.safetensors and best.safetensors (complete weights "
                    "files), state/last.pt (for --resume), log.jsonl, plots/ and config.json.")
    networks = parser.add_subparsers(dest="network", required=True, metavar="NETWORK")

    pose = networks.add_parser("pose", help="the head-motion predictor N_H (SSIM + LSGAN, paper Sec. 3.2)")
    _common(pose, "pose")
    loss = PoseLossConfig()
    pose.add_argument("--init", default=None, help="start from these weights (e.g. the published checkpoint); the "
                                                   "other networks are copied from it into the output")
    pose.add_argument("--window", type=int, help=f"frames per sample, T (default {loss.window})")
    pose.add_argument("--ssim-weight", type=float, help="weight of the SSIM loss, eq. 3 (default 1)")
    pose.add_argument("--gan-weight", type=float, help="weight of the LSGAN loss, eq. 4 (default 1; 0: SSIM only)")

    keypoints = networks.add_parser(
        "keypoints", help="the keypoint detector N_D and generator N_I (FOMM's reconstruction, vox-256 weights)")
    _common(keypoints, "keypoints")
    keypoints.add_argument("--init", default=None, help="start from these weights (e.g. the published checkpoint); "
                                                        "N_H and N_M are copied from it into the output")
    keypoints.add_argument("--gan-weight", type=float,
                           help="FOMM's optional generator GAN weight with feature matching (default 0: off)")
    keypoints.add_argument("--equivariance-value", type=float, help="keypoint equivariance weight (default 10)")
    keypoints.add_argument("--equivariance-jacobian", type=float, help="Jacobian equivariance weight (default 10)")
    keypoints.add_argument("--repeats", type=int, help="pairs drawn from each clip per epoch (default 75, FOMM's "
                                                       "num_repeats)")
    keypoints.add_argument("--no-augmentation", dest="augmentation", action="store_const", const=NO_AUGMENTATION,
                           help="no flips and no colour jitter (default: FOMM's vox-256 augmentation)")
    keypoints.epilog = ("FOMM's vox-256 recipe is the default: Adam betas 0.5 0.999 without weight decay, the rate "
                        "x0.1 after epochs 60 and 90 of 100 (--steps = 100 x the steps per epoch in log.jsonl), "
                        "horizontal and time flips and colour jitter of 0.1")

    motion = networks.add_parser(
        "motion", help="the motion field generator N_M with N_D and N_I frozen (stage 1: eq. 5; stage 2: eq. 7)")
    _common(motion, "motion")
    motion.add_argument("--init", default=None, required=False,
                        help="weights holding the trained N_D and N_I (the keypoints run's best.safetensors); for "
                             "--stage 2 also the stage-1 N_M. N_H is copied into the output")
    motion.add_argument("--stage", type=int, choices=(1, 2), help="1 (default): imitate N_D (eq. 5); 2: render "
                                                                  "through N_I (eq. 7)")
    motion.add_argument("--heatmap-decay-steps", type=int,
                        help="stage 1: lambda_m decays from 1 to 0 over this many steps (default 10000; 0: never)")
    motion.add_argument("--stage2-keypoint-weight", type=float,
                        help="stage 2: eq. 7's lambda'_p on the keypoint L1 against N_D (default 100)")
    motion.add_argument("--reconstruction-weight", type=float,
                        help="stage 2: eq. 7's lambda_rec on the VGG-16 reconstruction loss (default 10)")
    motion.add_argument("--render-frames", type=int,
                        help="stage 2: frames of each window rendered through N_I per step (default 8)")
    return parser


_TRAIN_OPTIONS = {f.name for f in dataclasses.fields(TrainConfig)}


def _asked(args: argparse.Namespace, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _plain(value):
    """An option's value as config.json holds it (lists for tuples, dicts for configs)."""
    if dataclasses.is_dataclass(value):
        return json.loads(json.dumps(dataclasses.asdict(value)))
    return list(value) if isinstance(value, tuple) else value


def _perceptual_override(args, loss_cls, asked: dict) -> dict:
    divisor = getattr(args, "vgg_width_divisor", None)
    if divisor:
        base = loss_cls().perceptual
        asked = {**asked, "perceptual": dataclasses.replace(base, width_divisor=divisor)}
    return asked


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    network = args.network
    if args.data is None and not args.resume:
        raise Audio2HeadError("--data is needed: the folder written by python -m a2h_core prepare")
    data = TrainingData.open(args.data or _saved_config(args.out)["data"])
    loss_cls = _LOSS_CONFIGS[network]
    train_asked, loss_asked = _asked(args, _TRAIN_OPTIONS), _asked(args, _LOSS_OPTIONS[network])
    vgg_weights = getattr(args, "vgg_weights", None)
    if args.resume:
        saved = _saved_config(args.out)
        if saved.get("task", "pose") != network:
            raise Audio2HeadError(f"--resume: {args.out} holds a {saved.get('task')!r} run, not {network!r}")
        changed = {k: v for k, v in {**train_asked, **loss_asked}.items()
                   if k not in RESUMABLE_CHANGES and _plain(v) != saved["train"].get(k, saved["loss"].get(k))}
        if args.config is not None and args.config != saved["model_choice"]:
            changed["config"] = args.config
        if args.init is not None and args.init != saved["init"]:
            changed["init"] = args.init
        if changed:
            names = ", ".join(f"--{k.replace('_', '-')}" for k in changed)
            raise Audio2HeadError(f"--resume continues the saved run exactly: {names} differ from it; leave them "
                                  "out (only --steps, --val-every, --log-every, --checkpoint-every, --data-workers "
                                  "and --device may change)")
        kept = {k: v for k, v in train_asked.items() if k in RESUMABLE_CHANGES}
        train = config_from_dict(TrainConfig, {**saved["train"], **kept}, "config.json train")
        loss = config_from_dict(loss_cls, saved["loss"], "config.json loss")
        choice, init_source = saved["model_choice"], saved["init"]
        init, config = initial_models(init_source, model_config_from_dict(saved["model_config"]))
        vgg_weights = vgg_weights or saved.get("vgg_weights")
    else:
        train = TrainConfig(**{**recipe_defaults(network), **train_asked})
        choice, init_source = args.config or ("from --init" if args.init else "published"), args.init
        init, config = initial_models(args.init, model_config(args.config) if args.config else None)
        if network == "pose":
            loss = PoseLossConfig(**loss_asked, discriminator=discriminator_config(config))
        else:
            loss = loss_cls(**_perceptual_override(args, loss_cls, loss_asked))
    train_clips = shard_clips(data, "train")
    val_clips = shard_clips(data, "val", train.val_max_clips)
    task = _task(network, args, config, loss, train_clips, val_clips, init, init_source, train, vgg_weights)
    run_config = {"task": network, "data": str(data.root), "model_choice": choice, "init": init_source,
                  "model_config": dataclasses.asdict(config), "train": dataclasses.asdict(train),
                  "loss": dataclasses.asdict(loss), "vgg_weights": str(vgg_weights) if vgg_weights else None}
    start = _saved_step(args.out) if args.resume else 0
    label = f"train {network}" + (f" stage {loss.stage}" if network == "motion" else "")
    bar = ProgressBar(label, unit="steps", initial=start)
    summary = Trainer(task, train, args.out, resume=args.resume, progress=bar, run_config=run_config).fit()
    if not summary.is_main:
        return 0
    if summary.last_metrics is not None:
        print(f"step {summary.steps}: validation " + _describe(network, summary.last_metrics))
    print(f"weights: {summary.last_weights} (last), {summary.best_weights} (best, score {summary.best_score:.4f})")
    return 0


def _task(network, args, config, loss, train_clips, val_clips, init, init_source, train, vgg_weights):
    from a2h_core.training.datasets import check_image_size

    if network == "pose":
        from a2h_core.training.pose_task import PoseTask

        return PoseTask(config, loss, train_clips, val_clips, init=init, plot_clips=train.plot_clips,
                        init_source=init_source)
    check_image_size(train_clips, config.image_size)
    if network == "keypoints":
        from a2h_core.training.keypoint_task import KeypointTask

        return KeypointTask(config, loss, train_clips, val_clips, init=init, init_source=init_source,
                            vgg_weights=vgg_weights, plot_clips=train.plot_clips)
    from a2h_core.training.motion_task import MotionTask

    if init is None:
        raise Audio2HeadError("train motion needs --init: the weights with the trained N_D and N_I (the keypoints "
                              "run's best.safetensors, or the published checkpoint)")
    return MotionTask(config, loss, train_clips, val_clips, init=init, init_source=init_source,
                      vgg_weights=vgg_weights, plot_clips=train.plot_clips)


def _describe(network: str, m: dict) -> str:
    if network == "pose":
        return f"HE {m['he']:.4f}, correlation {m['correlation']:.3f}, HS* {m['hs_star']:.3f} ({m['clips']} clips)"
    return ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float)) + f" ({m.get('clips')} clips)"


def _saved_config(out: Path) -> dict:
    path = out / "config.json"
    if not path.is_file() or not (out / STATE_FILE).is_file():
        raise Audio2HeadError(f"--resume: {out} holds no run to continue (config.json and {STATE_FILE} are needed); "
                              "leave out --resume to start one")
    return json.loads(path.read_text(encoding="utf-8"))


def _saved_step(out: Path) -> int:
    try:
        for line in reversed((out / "log.jsonl").read_text(encoding="utf-8").splitlines()):
            record = json.loads(line)
            if record.get("kind") == "train":
                return int(record["step"])
    except (OSError, ValueError):
        pass
    return 0
