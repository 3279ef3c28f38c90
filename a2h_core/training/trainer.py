"""The training loop shared by every network trained here (N_H now; N_D/N_I and N_M later).

A `TrainingTask` holds the model operations: which networks train with which optimiser, one training step, the
validation and the export of a weights file. The `Trainer` holds the orchestration and nothing model-specific:

- **distributed**: torch.distributed through `DistributedContext` (torchrun's environment; gloo on the CPU, NCCL on
  CUDA); the networks wrapped in DistributedDataParallel; a DistributedSampler splits every global batch across
  the processes (the global batch must divide by the process count); rank 0 logs, validates and writes;
- **precision**: autocast in bf16 or fp16 (fp16 with a gradient scaler), fp32 weights and optimiser;
- **exact resume**: `state/last.pt` holds the weights, optimisers, schedulers, gradient scaler, step, every
  process's RNG states, and the data position (epoch and batch); window positions depend only on (seed, epoch,
  index). Stopped at step K and resumed to 2K, a run gives the bits an uninterrupted run to 2K gives (same
  machine, same thread count);
- **output**: the run folder gets `last.safetensors` and `best.safetensors` (complete weights files, by validation
  score), `state/last.pt`, `config.json`, `log.jsonl` (every logged step and every validation), `plots/` (the
  task's validation pictures), and `tensorboard/` when the tensorboard package is installed (never required).

Every file is written under a temporary name and renamed: an interrupted run leaves the last complete files.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from a2h_core.device import parse_dtype
from a2h_core.errors import Audio2HeadError
from a2h_core.training.config import TrainConfig
from a2h_core.training.distributed import DistributedContext

STATE_FILE = Path("state") / "last.pt"  # training state for --resume, inside the run folder
STATE_VERSION = 1  # bump when the state layout changes

Update = Callable[[str, torch.Tensor], None]  # update(optimiser name, loss): backward and one optimiser step
Progress = Callable[[int, int, str], None]  # progress(step, steps, note); may raise to cancel


@dataclass
class ValidationResult:
    """What a task's validation returns."""

    metrics: dict  # numbers for the log (nested dicts allowed)
    score: float  # lower is better; picks best.safetensors
    images: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [H, W, 3] uint8 pictures for plots/


class TrainingTask:
    """The model side of a training run; subclasses implement every method."""

    name: str = "task"  # e.g. "pose"

    def networks(self) -> dict[str, nn.Module]:
        """The networks that train, by name (built on the CPU; the trainer moves and wraps them)."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, list[str]]:
        """Optimiser name -> the networks it updates, in the order a step updates them."""
        raise NotImplementedError

    def train_dataset(self, seed: int, min_length: int) -> Dataset:
        """Samples of one training step each; with `set_epoch(epoch)` when positions vary by epoch."""
        raise NotImplementedError

    def training_step(self, networks: dict[str, nn.Module], batch: dict, update: Update,
                      autocast: Callable[[], contextlib.AbstractContextManager]) -> dict[str, float]:
        """One step: compute losses under `autocast()`, call `update` per optimiser; return numbers to log."""
        raise NotImplementedError

    def validate(self, networks: dict[str, nn.Module], device: torch.device,
                 autocast: Callable[[], contextlib.AbstractContextManager]) -> ValidationResult:
        """Metrics on held-out data with the plain (unwrapped) networks in eval mode."""
        raise NotImplementedError

    def export(self, networks: dict[str, nn.Module], path: Path, summary: dict) -> Path:
        """Write a complete weights file holding the trained networks."""
        raise NotImplementedError

    def batch_norm_default(self) -> str:
        """"batch" or "frozen": what TrainConfig.batch_norm "auto" means for this task."""
        return "batch"

    def set_step(self, step: int) -> None:
        """Told the step about to run (0-based; restored on resume), for step-dependent loss weights."""


@dataclass
class TrainingSummary:
    """What a finished (or stopped) run reports."""

    run_dir: str  # the run folder
    steps: int  # the step reached
    seconds: float  # wall time of this invocation
    last_weights: str  # path of last.safetensors
    best_weights: str | None  # path of best.safetensors (None before the first validation)
    best_score: float | None  # its validation score
    last_metrics: dict | None  # the last validation's metrics
    world_size: int  # processes
    is_main: bool = True  # whether this process is rank 0 (the one that reports)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside a DistributedDataParallel wrapper (or the network itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def safe_name(name: str) -> str:
    """A clip name as a file-name-safe plot name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80]


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        torch.save(obj, partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _atomic_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def optimiser_update(optimizers: dict[str, torch.optim.Optimizer], scaler: torch.amp.GradScaler,
                     grad_clip: float = 0.0) -> Update:
    """The `update(name, loss)` a task's step calls: zero the optimiser's gradients, backward through the (fp16)
    gradient scaler, clip, step. `scaler.update()` follows once per training step, after every optimiser."""

    def update(name: str, loss: torch.Tensor) -> None:
        optimizer = optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
        scaler.step(optimizer)

    return update


def _freeze_batch_norm(module: nn.Module) -> None:
    """Batch norm layers use (and keep) their running statistics; their affine parameters still train."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


class _TensorBoard:
    """TensorBoard event files when the package is installed; silently nothing otherwise."""

    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            self.writer = None
        else:
            self.writer = SummaryWriter(str(folder))

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def image(self, name: str, image: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(name, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Trainer:
    """Runs a task's training to `config.steps` (see the module doc)."""

    def __init__(self, task: TrainingTask, config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False,
                 progress: Progress | None = None, run_config: dict | None = None):
        config.check()
        self.task, self.config, self.run_dir, self.resume = task, config, Path(run_dir), resume
        self.progress = progress
        self.run_config = run_config or {"train": asdict(config)}  # what config.json records

    # ------------------------------------------------------------------------------------------------- set-up
    def _autocast_factory(self, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
        if self.config.precision == "fp32":
            return contextlib.nullcontext
        dtype = parse_dtype(self.config.precision)
        return lambda: torch.autocast(device.type, dtype=dtype)

    def _batch_norm_mode(self) -> str:
        mode = self.config.batch_norm
        return self.task.batch_norm_default() if mode == "auto" else mode

    def fit(self) -> TrainingSummary:
        started = time.monotonic()
        ctx = DistributedContext.from_env(self.config.device)
        try:
            return self._fit(ctx, started)
        finally:
            ctx.close()

    def _fit(self, ctx: DistributedContext, started: float) -> TrainingSummary:
        cfg = self.config
        if cfg.batch_size % ctx.world_size:
            raise Audio2HeadError(f"--batch-size {cfg.batch_size} does not divide by the {ctx.world_size} processes: "
                                  "the global batch is split evenly; use a multiple of the process count")
        state_path = self.run_dir / STATE_FILE
        if ctx.is_main:
            self._check_run_dir(state_path)
        ctx.barrier()
        torch.manual_seed(cfg.seed)  # identical initial weights on every process
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        networks = {name: net.to(ctx.device) for name, net in self.task.networks().items()}
        bn_mode = self._batch_norm_mode()
        if bn_mode == "batch" and ctx.distributed and ctx.device.type == "cuda":
            networks = {n: nn.SyncBatchNorm.convert_sync_batchnorm(net) for n, net in networks.items()}
        optimizers = {
            name: torch.optim.Adam([p for n in members for p in networks[n].parameters() if p.requires_grad],
                                   lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
            for name, members in self.task.optimizers().items()
        }
        scaler = torch.amp.GradScaler(ctx.device.type, enabled=cfg.precision == "fp16")
        step, epoch, batch_in_epoch, best_score = 0, 0, 0, None
        if self.resume:
            state = torch.load(state_path, map_location="cpu", weights_only=False)
            if state.get("version") != STATE_VERSION:
                raise Audio2HeadError(f"{state_path} was written by another version of the trainer: start a new run")
            for name, net in networks.items():
                net.load_state_dict(state["networks"][name])
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            scaler.load_state_dict(state["scaler"])
            step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            best_score = state["best_score"]
        seeds_rank = cfg.seed + 1000 * ctx.rank
        torch.manual_seed(seeds_rank)  # per-process streams for anything random inside a step
        random.seed(seeds_rank)
        np.random.seed(seeds_rank)
        if self.resume:
            rng = state["rng"]
            if len(rng) == ctx.world_size:
                _set_rng_state(rng[ctx.rank])
            elif ctx.is_main:
                print(f"warning: the run was saved with {len(rng)} processes and resumes with {ctx.world_size}: "
                      "random streams restart (the data order is kept)")
        # No buffer broadcast: a task may run a network several times before one backward (FOMM's N_D on source,
        # driving and transformed frames), and a broadcast at each call would overwrite batch-norm statistics the
        # first call's backward still needs. Running statistics never steer training here: batch mode uses batch
        # statistics (synchronised on GPUs), frozen mode never changes them, and only rank 0 validates and exports.
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        wrapped = {name: (DistributedDataParallel(net, device_ids=device_ids, broadcast_buffers=False)
                          if ctx.distributed else net)
                   for name, net in networks.items()}
        autocast = self._autocast_factory(ctx.device)

        per_rank = cfg.batch_size // ctx.world_size
        dataset = self.task.train_dataset(cfg.seed, min_length=cfg.batch_size)
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                     seed=cfg.seed, drop_last=True)
        batches_per_epoch = len(sampler) // per_rank
        if batches_per_epoch == 0:
            raise Audio2HeadError(f"the training data gives {len(dataset)} samples, fewer than one global batch of "
                                  f"{cfg.batch_size}: lower --batch-size or prepare more clips")
        schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, lambda at: self._lr_factor(at, batches_per_epoch))
                      for name, opt in optimizers.items()}
        if self.resume:  # built after the optimisers' states were loaded: set their rates back to the saved step's
            for name, sched in schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
                for group, lr in zip(optimizers[name].param_groups, sched.get_last_lr(), strict=True):
                    group["lr"] = lr

        def batches() -> Iterator[tuple[int, int, dict]]:
            nonlocal epoch, batch_in_epoch
            while True:
                sampler.set_epoch(epoch)
                if hasattr(dataset, "set_epoch"):
                    dataset.set_epoch(epoch)
                order = list(sampler)[batch_in_epoch * per_rank: batches_per_epoch * per_rank]
                loader = DataLoader(dataset, batch_size=per_rank, sampler=order, drop_last=True,
                                    num_workers=cfg.data_workers, generator=torch.Generator(),
                                    pin_memory=ctx.device.type == "cuda")
                for batch in loader:
                    batch_in_epoch += 1  # counted when handed out: a state saved after this step resumes after it
                    yield batch
                epoch, batch_in_epoch = epoch + 1, 0

        log = _Log(self.run_dir, ctx.is_main)
        log.start(step, batches_per_epoch, ctx.world_size)
        last_path, best_path = self.run_dir / "last.safetensors", self.run_dir / "best.safetensors"
        last_metrics = None
        running: dict[str, float] = {}
        running_count = 0

        update = optimiser_update(optimizers, scaler, cfg.grad_clip)

        def save_state() -> None:
            rng = ctx.gather(_rng_state())
            if ctx.is_main:
                _atomic_save({
                    "version": STATE_VERSION, "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                    "best_score": best_score, "rng": rng, "config": self.run_config,
                    "networks": {n: net.state_dict() for n, net in networks.items()},
                    "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                    "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
                    "scaler": scaler.state_dict(),
                }, state_path)

        def validate() -> None:
            nonlocal best_score, last_metrics
            if ctx.is_main:
                for net in networks.values():
                    net.eval()
                with torch.no_grad():
                    result = self.task.validate(networks, ctx.device, autocast)
                last_metrics = result.metrics
                summary = {"step": step, "score": result.score, "metrics": result.metrics}
                self.task.export(networks, last_path, self._summary_metadata(step, result, ctx))
                if best_score is None or result.score < best_score:
                    best_score = result.score
                    self.task.export(networks, best_path, self._summary_metadata(step, result, ctx))
                    summary["best"] = True
                log.validation(summary, result.images, step)
            ctx.barrier()

        train_iter = batches()
        if self.progress and ctx.is_main:
            self.progress(step, cfg.steps, "")
        while step < cfg.steps:
            for net in networks.values():
                net.train()
                if bn_mode == "frozen":
                    _freeze_batch_norm(net)
            batch = next(train_iter)
            batch = {k: v.to(ctx.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                     for k, v in batch.items()}
            self.task.set_step(step)
            values = self.task.training_step(wrapped, batch, update, autocast)
            scaler.update()
            for sched in schedulers.values():
                sched.step()
            step += 1
            for key, value in values.items():
                running[key] = running.get(key, 0.0) + float(value)
            running_count += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                averaged = ctx.mean({k: v / running_count for k, v in running.items()})
                averaged["lr"] = schedulers[next(iter(schedulers))].get_last_lr()[0]
                log.step(step, averaged, time.monotonic() - started)
                running, running_count = {}, 0
                note = ", ".join(f"{k} {v:.4f}" for k, v in averaged.items() if k != "lr")
            else:
                note = ""
            if self.progress and ctx.is_main:
                self.progress(step, cfg.steps, note)
            if step % cfg.val_every == 0 or step == cfg.steps:
                validate()
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_state()
        if not ctx.broadcast(last_path.exists()):  # steps already reached when resuming: still leave weights
            validate()
        log.close()
        return TrainingSummary(run_dir=str(self.run_dir), steps=step, seconds=time.monotonic() - started,
                               last_weights=str(last_path), best_weights=str(best_path) if best_path.exists() else None,
                               best_score=best_score, last_metrics=last_metrics, world_size=ctx.world_size,
                               is_main=ctx.is_main)

    # ------------------------------------------------------------------------------------------------- helpers
    def _lr_factor(self, step: int, batches_per_epoch: int) -> float:
        """The learning rate's factor at a step: the schedule's; "multistep" counts epochs of `batches_per_epoch`
        steps and drops after each milestone epoch, as FOMM's MultiStepLR stepped once per epoch."""
        cfg = self.config
        if cfg.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
        if cfg.lr_schedule == "multistep":
            epoch = step // batches_per_epoch
            return cfg.lr_gamma ** sum(epoch >= milestone for milestone in cfg.lr_milestones)
        return 1.0

    def _summary_metadata(self, step: int, result: ValidationResult, ctx: DistributedContext) -> dict:
        return {"training": json.dumps({"task": self.task.name, "step": step, "score": result.score,
                                        "world_size": ctx.world_size, "metrics": result.metrics}, default=float),
                "training_config": json.dumps(self.run_config, default=str)}

    def _check_run_dir(self, state_path: Path) -> None:
        config_path = self.run_dir / "config.json"
        if self.resume:
            if not state_path.is_file():
                raise Audio2HeadError(f"--resume: {state_path} does not exist; start the run without --resume")
            return
        if state_path.exists() or (self.run_dir / "last.safetensors").exists():
            raise Audio2HeadError(f"{self.run_dir} already holds a run: continue it with --resume, or choose "
                                  "another --out")
        _atomic_text(json.dumps(self.run_config, indent=1, default=str) + "\n", config_path)


class _Log:
    """log.jsonl, plots/ and optional TensorBoard events, written by rank 0 only."""

    def __init__(self, run_dir: Path, active: bool):
        self.active = active
        self.run_dir = run_dir
        if active:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.file = open(run_dir / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self.board = _TensorBoard(run_dir / "tensorboard")

    def _write(self, record: dict) -> None:
        self.file.write(json.dumps(record, default=_json_default) + "\n")
        self.file.flush()

    def start(self, step: int, batches_per_epoch: int, world_size: int) -> None:
        if self.active:
            self._write({"kind": "start", "step": step, "batches_per_epoch": batches_per_epoch,
                         "world_size": world_size})

    def step(self, step: int, values: dict, seconds: float) -> None:
        if self.active:
            self._write({"kind": "train", "step": step, "seconds": round(seconds, 3), **values})
            self.board.scalars("train", values, step)

    def validation(self, summary: dict, images: dict[str, np.ndarray], step: int) -> None:
        if not self.active:
            return
        from PIL import Image

        plots = []
        for name, image in images.items():
            path = self.run_dir / "plots" / f"step{step:07d}_{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            Image.fromarray(image).save(partial, format="PNG")
            os.replace(partial, path)
            plots.append(path.relative_to(self.run_dir).as_posix())
            self.board.image(f"val/{name}", image, step)
        self._write({"kind": "val", **summary, "plots": plots})
        flat = {k: v for k, v in summary["metrics"].items() if isinstance(v, (int, float))}
        self.board.scalars("val", flat, step)

    def close(self) -> None:
        if self.active:
            self.file.close()
            self.board.close()


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
