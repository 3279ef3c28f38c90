"""Wall-clock timing for the benchmarks in tools/."""
from __future__ import annotations

import time


def timed(function, *args, **kwargs):
    """(result, seconds) of one call of function(*args, **kwargs)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def best_time(function, repeats: int):
    """(fastest seconds, last result) over `repeats` calls of function(); a CUDA tensor result is waited for."""
    import torch  # here, so that timing audio code does not load torch

    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        if isinstance(result, torch.Tensor) and result.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result
