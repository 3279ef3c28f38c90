"""Resident memory of the current process, for the benchmarks in tools/ (Linux)."""
from __future__ import annotations


def resident_mb(peak: bool = False) -> float:
    """Resident memory of this process in MiB now, or its high-water mark since it started (`peak`).

    Read from /proc/self/status (VmRSS / VmHWM). `resource.getrusage(...).ru_maxrss` is not used: in a process
    started by another one it is at least the starting process's memory at that time (Linux keeps the larger of
    the two across fork and exec), which can hide the child's own peak.
    """
    field = "VmHWM:" if peak else "VmRSS:"
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status (Linux only)")
