"""Devices and compute precisions, as users name them ("cpu", "cuda:1", "bf16"), checked against this machine.

Shared by the library, the command line and the nodes; it imports nothing heavier than torch.

**The reduced-precision rule** (`check_compute_dtype`, the one place it is decided; README: "Precision"):

- fp32 runs everywhere.
- On a CPU, fp16 is refused: CPUs have no fast fp16 convolutions, so PyTorch emulates them (the motion field took
  over 380 s instead of 3.3 s).
- On a CPU, bf16 runs only where the CPU has native bf16 units (AVX512-BF16 or AMX); elsewhere it is refused with
  a message saying why, because the emulation is equally slow. It is refused rather than silently replaced by
  fp32 so that what runs is what was asked for.
- On a GPU, bf16 needs a device that supports it (CUDA: `torch.cuda.is_bf16_supported()`); fp16 is accepted.
"""
from __future__ import annotations

import functools

import torch

from a2h_core.errors import Audio2HeadError

DTYPE_NAMES = {  # the names --dtype, the nodes and the configs accept
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}



def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """torch.float32/float16/bfloat16, or one of the strings "fp32", "fp16", "bf16" (and their long names)."""
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.float32, torch.float16, torch.bfloat16):
            return dtype
    elif isinstance(dtype, str) and dtype.strip().lower() in DTYPE_NAMES:
        return DTYPE_NAMES[dtype.strip().lower()]
    raise Audio2HeadError(f"Unsupported dtype {dtype!r}: use 'fp32', 'fp16' or 'bf16'.")


def parse_device(device: str | torch.device) -> torch.device:
    """A torch.device that exists on this machine; a clear error for unknown or unavailable devices."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise Audio2HeadError(f"Unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise Audio2HeadError(
                f"Device {device!r} asked for, but this PyTorch build sees no CUDA GPU: use device='cpu', or "
                "install a CUDA build of PyTorch.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise Audio2HeadError(
                f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s).")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise Audio2HeadError(f"Device {device!r} asked for, but MPS is not available here: use device='cpu'.")
    return resolved


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), so that bf16 is not emulated."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            continue
    try:  # older torch builds: read the CPU flags directly (Linux)
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = handle.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def check_compute_dtype(device: str | torch.device, dtype: str | torch.dtype, what: str = "dtype") -> torch.dtype:
    """The compute dtype to use on `device`, or Audio2HeadError when it would not run well there (module doc rule).

    what: how the message names the setting ("--dtype", "input 'dtype'", ...).
    """
    dtype = parse_dtype(dtype)
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if dtype == torch.float32:
        return dtype
    name = "fp16" if dtype == torch.float16 else "bf16"
    if device.type == "cpu":
        if dtype == torch.float16:
            raise Audio2HeadError(
                f"{what} fp16 is for GPUs: a CPU has no fast fp16 arithmetic and would emulate it about 100x slower "
                "than fp32; use fp32 on the CPU (or bf16 on a CPU with AVX512-BF16 or AMX)")
        if not cpu_has_native_bf16():
            raise Audio2HeadError(
                f"{what} {name} needs a CPU with native bf16 units (AVX512-BF16 or AMX), which this one lacks: "
                "PyTorch would emulate bf16 about 100x slower than fp32; use fp32")
        return dtype
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise Audio2HeadError(f"{what} bf16 is not supported by {device}: use fp16 or fp32")
    return dtype
