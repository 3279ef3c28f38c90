"""Resident memory of a process, for the benchmarks in tools/ and the real-server tests (Linux)."""
from __future__ import annotations


def resident_mb(peak: bool = False, pid: int | str = "self") -> float:
    """Resident memory of process `pid` (this one by default) in MiB now, or its high-water mark since it started
    (`peak`).

    Read from /proc/<pid>/status (VmRSS / VmHWM). `resource.getrusage(...).ru_maxrss` is not used: in a process
    started by another one it is at least the starting process's memory at that time (Linux keeps the larger of
    the two across fork and exec), which can hide the child's own peak. Raises OSError once the process is gone.
    """
    field = "VmHWM:" if peak else "VmRSS:"
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/{pid}/status (Linux only)")
