"""Running `python -m a2h_core ...` as several processes under torchrun on this machine (gloo on the CPU, a free
loopback port), as the distributed-training checks do."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from a2h_devkit.imports import REPOSITORY


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_torchrun(args: list[str], processes: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node N -m a2h_core ARGS` from the repository, one thread per process; the result with
    its captured output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "a2h_core", *args],
                          cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=timeout)
