"""Devices and compute precisions, as users name them ("cpu", "cuda:1", "bf16"), checked against this machine.

Shared by the library, the command line and the nodes; it imports nothing heavier than torch.
"""
from __future__ import annotations

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
