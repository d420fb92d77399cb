"""Running the real CLI against the hostile site and measuring it: exit code, output, wall
time and the peak memory of that process alone.

The peak comes from ``wait4``'s rusage, taken by a small helper process that starts the CLI:
Linux counts the memory a child had before ``exec`` in its peak, and a child forked straight
from pytest (holding the hostile payloads) would start with pytest's hundreds of megabytes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HANG_GUARD_S = 120.0
# Runs the command given, then writes its peak RSS (KiB) and exit code to the file named first.
_HELPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {code}")
"""


@dataclass(frozen=True, repr=False)
class Measured:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float

    def __repr__(self) -> str:  # what an assertion message shows
        return (
            f"exit {self.code} after {self.seconds:.1f}s, peak {self.peak_mb:.0f} MB\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-6000:]}"
        )


def run_measured(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = HANG_GUARD_S
) -> Measured:
    """``python -m crawl4ai_llm_docs ARGS``; its peak RSS is its own (and its children's)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        measured = Path(scratch) / "rusage"
        command = [sys.executable, "-m", "crawl4ai_llm_docs", *args]
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", _HELPER, str(measured), *command],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        seconds = time.monotonic() - started
        peak_kib, code = measured.read_text().split() if measured.exists() else ("0", "-9")
        out.seek(0)
        err.seek(0)
        return Measured(
            code=int(code),
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            seconds=seconds,
            peak_mb=int(peak_kib) / 1024,  # KiB on Linux
        )
