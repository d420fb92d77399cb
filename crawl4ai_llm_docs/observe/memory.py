"""Memory of the run: this process's peak RSS and the RSS of its process tree (the browser)."""

from __future__ import annotations

import resource
import sys

import psutil

_MB = 1024 * 1024


def process_tree_rss_mb(process: psutil.Process | None = None) -> float:
    """RSS of this process plus its children (the browser runs in child processes)."""
    process = process or psutil.Process()
    total = 0
    for proc in (process, *process.children(recursive=True)):
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a child exited between listing and reading
    return total / _MB


def own_peak_rss_mb() -> float:
    """This process's peak RSS, exact even between samples.

    On Linux from VmHWM: ru_maxrss survives exec, so a CLI started by a large process (a test
    runner, a script) would report its parent's size as its own peak.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MB if sys.platform == "darwin" else peak / 1024
