"""`python -m a2h_core train pose`: train the head-motion predictor N_H on prepared data (one process, or many with
torchrun)."""
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
    PRECISIONS,
    PoseLossConfig,
    TrainConfig,
    config_from_dict,
)
from a2h_core.training.datasets import shard_clips
from a2h_core.training.pose_task import PoseTask
from a2h_core.training.setup import discriminator_config, initial_models, model_config
from a2h_core.training.shards import TrainingData
from a2h_core.training.trainer import STATE_FILE, Trainer

# Options a resumed run may change; every other option must match the saved run (or be left out).
RESUMABLE_CHANGES = {"steps", "val_every", "log_every", "checkpoint_every", "data_workers", "device"}


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `train`; its handler is stored as the parser default `func`."""
    parser = subparsers.add_parser(
        "train", help="train a network on prepared data (pose: the head-motion predictor N_H)",
        description="Train on data written by `prepare`. Works unchanged under torchrun (several GPUs or nodes; "
                    "gloo on the CPU). The run folder gets last.safetensors and best.safetensors (complete weights "
                    "files), state/last.pt (for --resume), log.jsonl, plots/ and config.json.")
    networks = parser.add_subparsers(dest="network", required=True, metavar="NETWORK")
    pose = networks.add_parser("pose", help="the head-motion predictor N_H (SSIM + LSGAN, paper Sec. 3.2)")
    pose.add_argument("--data", type=Path, help="prepared data folder (prepare --out); a resumed run reuses its own")
    pose.add_argument("--out", type=Path, required=True, help="run folder")
    pose.add_argument("--config", default=None, help="model config: published (default), reduced or FILE.json")
    pose.add_argument("--init", default=None, help="start from these weights (e.g. the published checkpoint); the "
                                                   "other networks are copied from it into the output")
    pose.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    defaults = TrainConfig()
    loss_defaults = PoseLossConfig()
    # Options default to None so that a resumed run can tell what was asked for.
    pose.add_argument("--steps", type=int, help=f"optimiser steps to reach (default {defaults.steps})")
    pose.add_argument("--batch-size", type=int, help=f"global batch (default {defaults.batch_size})")
    pose.add_argument("--window", type=int, help=f"frames per sample, T (default {loss_defaults.window})")
    pose.add_argument("--lr", type=float, help=f"Adam learning rate (default {defaults.lr})")
    pose.add_argument("--weight-decay", type=float, help=f"Adam weight decay (default {defaults.weight_decay})")
    pose.add_argument("--lr-schedule", choices=LR_SCHEDULES, help="constant (default) or cosine")
    pose.add_argument("--precision", choices=PRECISIONS, help="fp32 (default), bf16 or fp16 (with a grad scaler)")
    pose.add_argument("--batch-norm", choices=BATCH_NORM_MODES,
                      help="auto (default: frozen with --init, else batch), batch or frozen")
    pose.add_argument("--ssim-weight", type=float, help="weight of the SSIM loss, eq. 3 (default 1)")
    pose.add_argument("--gan-weight", type=float, help="weight of the LSGAN loss, eq. 4 (default 1; 0: SSIM only)")
    pose.add_argument("--grad-clip", type=float, help="clip gradient norms (default 0: off)")
    pose.add_argument("--seed", type=int, help="seed of initialisation and data order (default 0)")
    pose.add_argument("--val-every", type=int, help=f"steps between validations (default {defaults.val_every})")
    pose.add_argument("--log-every", type=int, help=f"steps between log lines (default {defaults.log_every})")
    pose.add_argument("--checkpoint-every", type=int,
                      help=f"steps between saves of the training state (default {defaults.checkpoint_every})")
    pose.add_argument("--data-workers", type=int, help=f"data-loader processes (default {defaults.data_workers})")
    pose.add_argument("--device", help="auto (default: this process's GPU, else CPU), cpu or cuda")
    pose.add_argument("--threads", type=int, default=0, help="CPU threads per process (default: torch's choice)")
    pose.set_defaults(func=run)
    return parser


_TRAIN_OPTIONS = {f.name for f in dataclasses.fields(TrainConfig)}
_LOSS_OPTIONS = {"window", "ssim_weight", "gan_weight"}


def _asked(args: argparse.Namespace, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data is None and not args.resume:
        raise Audio2HeadError("--data is needed: the folder written by python -m a2h_core prepare")
    data = TrainingData.open(args.data or _saved_config(args.out)["data"])
    train_asked, loss_asked = _asked(args, _TRAIN_OPTIONS), _asked(args, _LOSS_OPTIONS)
    if args.resume:
        saved = _saved_config(args.out)
        changed = {k: v for k, v in {**train_asked, **loss_asked}.items()
                   if k not in RESUMABLE_CHANGES and v != saved["train"].get(k, saved["loss"].get(k))}
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
        loss = config_from_dict(PoseLossConfig, saved["loss"], "config.json loss")
        choice, init_source = saved["model_choice"], saved["init"]
        init, config = initial_models(init_source, model_config_from_dict(saved["model_config"]))
    else:
        train = TrainConfig(**train_asked)
        choice, init_source = args.config or ("from --init" if args.init else "published"), args.init
        init, config = initial_models(args.init, model_config(args.config) if args.config else None)
        loss = PoseLossConfig(**loss_asked, discriminator=discriminator_config(config))
    task = PoseTask(config, loss, shard_clips(data, "train"), shard_clips(data, "val", train.val_max_clips),
                    init=init, plot_clips=train.plot_clips, init_source=init_source)
    run_config = {"task": "pose", "data": str(data.root), "model_choice": choice, "init": init_source,
                  "model_config": dataclasses.asdict(config), "train": dataclasses.asdict(train),
                  "loss": dataclasses.asdict(loss)}
    start = _saved_step(args.out) if args.resume else 0
    bar = ProgressBar("train pose", unit="steps", initial=start)
    summary = Trainer(task, train, args.out, resume=args.resume, progress=bar, run_config=run_config).fit()
    if not summary.is_main:
        return 0
    if summary.last_metrics is not None:
        m = summary.last_metrics
        print(f"step {summary.steps}: validation HE {m['he']:.4f}, correlation {m['correlation']:.3f}, "
              f"HS* {m['hs_star']:.3f} ({m['clips']} clips)")
    print(f"weights: {summary.last_weights} (last), {summary.best_weights} (best, HE {summary.best_score:.4f})")
    return 0


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
