"""The machine a measurement ran on: a speed figure without its CPU does not compare with any other."""
from __future__ import annotations

import os
import platform

import torch

_ISA_FLAGS = (  # /proc/cpuinfo flag -> the name printed, widest last
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX512-BF16"),
    ("amx_tile", "AMX"),
)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux: /proc/cpuinfo); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_isa() -> str:
    """"AVX2", "AVX2 AVX-512 AVX512-BF16", ... from the flags, plus the kernels PyTorch picked (its CPU capability)."""
    flags = cpu_flags()
    names = [name for flag, name in _ISA_FLAGS if flag in flags] or ["unknown (no /proc/cpuinfo flags)"]
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{' '.join(names)}; PyTorch kernels: {capability}"


def cpu_description() -> str:
    """One line naming the CPU, its instruction sets, its cores and torch's threads."""
    return (f"CPU: {cpu_model()}; ISA: {cpu_isa()}; {os.cpu_count()} logical cores; "
            f"{torch.get_num_threads()} torch threads; torch {torch.__version__}")
