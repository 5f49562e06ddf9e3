"""Peak resident memory of a process, as the kernel counts it for that program alone.

`VmHWM` in /proc/PID/status is the high-water mark of the process's own address space, which a new
program starts afresh. `getrusage(...).ru_maxrss` is not: Linux carries it across exec, so a benchmark
child started by a parent that had just generated gigabytes of data reported the parent's peak (the
same 2,937 MB for every variant of benchmarks/features.py). Linux only; None where it cannot be read
(another OS, or a process that has ended).
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size of process `pid` (default: this one) in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None
