"""What machine a benchmark ran on, in one line (every script prints it with its figures)."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """CPU model, usable cores, RAM, Python and kernel, read from /proc where Linux has it."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as fh:
            mem = f"{int(next(line.split()[1] for line in fh if line.startswith('MemTotal'))) / 1e6:.1f} GB RAM, "
    except (OSError, StopIteration):
        mem = ""
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores available, {mem}"
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
