"""torch.distributed for the trainer: one process per device, started by torchrun (or alone).

`torchrun --nproc_per_node N -m a2h_core train ...` sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT;
`DistributedContext.from_env` reads them, picks this process's device (cuda:LOCAL_RANK when CUDA is available and
asked for, else the CPU) and joins the process group: NCCL on CUDA, gloo on the CPU. Without those variables it is a
plain single process and nothing is initialised, so the same command runs on one CPU, one GPU, several GPUs or
several nodes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from a2h_core.device import parse_device
from a2h_core.errors import Audio2HeadError


@dataclass
class DistributedContext:
    """Where this process stands in the run."""

    rank: int  # global rank, 0 .. world_size - 1
    local_rank: int  # rank on this node: picks the GPU
    world_size: int  # number of processes
    device: torch.device  # this process's compute device
    initialised: bool  # whether this object joined a process group (and must leave it)

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> DistributedContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
        if device == "auto":
            resolved = torch.device("cuda", local_rank % torch.cuda.device_count()) \
                if torch.cuda.is_available() else torch.device("cpu")
        else:
            resolved = parse_device(device)
            if resolved.type == "cuda" and resolved.index is None:
                resolved = torch.device("cuda", local_rank % torch.cuda.device_count())
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        initialised = False
        if world > 1 and not dist.is_initialized():
            if "MASTER_ADDR" not in os.environ:
                raise Audio2HeadError("WORLD_SIZE > 1 but MASTER_ADDR is not set: start distributed runs with torchrun")
            backend = "nccl" if resolved.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=60))
            initialised = True
        return cls(rank=rank, local_rank=local_rank, world_size=world, device=resolved, initialised=initialised)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The average of each value over the processes (every process gets the result)."""
        if not self.distributed or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                              device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist())}

    def gather(self, value) -> list:
        """Every process's `value` (any picklable object), in rank order, on every process."""
        if not self.distributed:
            return [value]
        result = [None] * self.world_size
        dist.all_gather_object(result, value)
        return result

    def broadcast(self, value):
        """Rank 0's `value` on every process."""
        if not self.distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def close(self) -> None:
        if self.initialised and dist.is_initialized():
            dist.destroy_process_group()
