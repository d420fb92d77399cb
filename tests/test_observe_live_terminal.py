"""The live view on real terminals: a driver script in a pseudo-terminal at 80 and 120 columns,
and the real CLI against the bundled site and fake provider at 80x24 (issue 28's check)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from e2e_support import API_KEY, HANG_GUARD_S, running
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


DRIVER = """
import functools, sys
import structlog, trio
from rich.console import Console
from crawl4ai_llm_docs.observe.live import run_live_view
from crawl4ai_llm_docs.observe.logging import configure_logging
from crawl4ai_llm_docs.observe.metrics import LimiterState, RunMetrics

REQUEST = {"url": "u", "chunk": 0, "attempt": 1, "status": 200, "outcome": "ok",
           "latency_ms": 800.0, "queued_ms": 0.0, "prompt_tokens": 900, "completion_tokens": 300}
PAGE = {"url": "u", "mode": "http", "status": 200, "elapsed_ms": 5.0, "bytes": 10, "title": "t"}
LIMITER = LimiterState(in_flight=8, max_concurrent=8, effective_limit=6, requests_remaining=450,
                       requests_limit=500, tokens_remaining=90000, tokens_limit=150000)

async def main():
    metrics = RunMetrics(memory_probe=lambda: 321.0)
    metrics.set_totals(pages=28, chunks=28)
    metrics.set_limiter_probe(lambda: LIMITER)
    console = Console(stderr=True)
    assert console.is_terminal
    log = structlog.get_logger()
    with configure_logging(run_id="pty", json_file=None, level="info",
                           secrets=["sk-test-SECRET123"], metrics=metrics, console=console):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(run_live_view, metrics, console=console,
                                                  interval=0.5))
            for i in range(20):
                log.info("page_crawled", **PAGE)
                log.info("llm_request", **REQUEST)
                if i == 10:
                    log.warning("warning", message="slow provider, key sk-test-SECRET123")
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    print("END-OF-RUN", file=sys.stderr)

trio.run(main)
"""


@pytest.mark.parametrize(("columns", "view_lines"), [(80, 7), (120, 6)])
def test_live_view_on_a_real_pseudo_terminal(tmp_path: Path, columns: int, view_lines: int) -> None:
    script = tmp_path / "drive.py"
    script.write_text(DRIVER)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    child = subprocess.Popen(
        [sys.executable, str(script)], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env
    )
    os.close(slave)
    raw = b""
    try:
        while select.select([master], [], [], 30)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            raw += chunk
    finally:
        os.close(master)
        child.kill()
        assert child.wait() in (0, -9)
    text = raw.decode()
    screen = ANSI.sub("", text)
    assert "END-OF-RUN" in screen, screen[-2000:]
    frames = screen.count("crawl4ai-llm-docs  ")
    assert frames >= 5  # refreshed several times a second for ~2 s
    for figure in (
        "processed ━",
        "written   ━",
        "20/28  71%",  # the last frame before the view was closed
        "in-flight 8  adaptive limit 6  max 8",
        "headroom req 450/500  tok 90k/150k",
        "memory 321 MB",
        "breaker closed",
    ):
        assert figure in screen, figure
    assert re.search(r"\d+\.\d req/s", screen)
    assert "…" not in screen
    assert max(map(cell_len, re.split(r"[\r\n]+", screen))) <= columns
    assert "\x1b[38;5;" in text  # coloured bars: Rich saw a real terminal
    # A log line printed while the view was live appears above it, whole and redacted.
    assert re.search(r"\d\d:\d\d:\d\d WARN  slow provider, key \[REDACTED\]\r\n", screen)
    assert "SECRET123" not in text
    # Nothing stray once the view is gone: it erases itself and only the script's line follows.
    tail = text[text.rindex("\x1b[?25h") :]
    assert tail.count("\x1b[2K") == view_lines  # each of the view's lines erased
    assert ANSI.sub("", tail).strip() == "END-OF-RUN"


def _read_until_closed(master: int, process: subprocess.Popen[bytes]) -> bytes:
    raw = b""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 1.0)[0]:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end is gone
            break
        if not chunk:
            break
        raw += chunk
    return raw


@pytest.mark.slow
def test_the_cli_live_view_reads_whole_in_an_80x24_terminal(tmp_path: Path) -> None:
    """Issue 28's check: a real run, the bundled site and fake provider, an 80x24 terminal."""
    # Injected 5xx answers make retries; latency keeps the view up for a few refreshes.
    provider = {"latency": 0.5, "error_rate": 0.15, "error_codes": [503], "seed": 1}
    with running(tmp_path, pages=6, provider=provider) as setup:
        command = [
            sys.executable,
            "-m",
            "crawl4ai_llm_docs",
            *[arg for arg in setup.args("--max-concurrent", "4") if arg != "--no-progress"],
            "--progress-interval",
            "1",
        ]
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {k: v for k, v in setup.env.items() if k != "COLUMNS"}
        env["TERM"] = "xterm-256color"
        process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env
        )
        os.close(slave)
        try:
            raw = _read_until_closed(master, process)
        finally:
            os.close(master)
            if process.poll() is None:
                process.kill()
            code = process.wait(timeout=30)
    text = raw.decode(errors="replace")
    assert code == 0, text[-3000:]
    screen = ANSI.sub("", text)
    assert "\x1b[?25l" in text  # Rich drove a live display: a real terminal was seen
    lines = re.split(r"[\r\n]+", screen)
    assert "…" not in screen
    assert max(map(cell_len, lines)) <= 80
    for figure in (  # every number a user watches, whole on one line
        r"^crawl4ai-llm-docs  \w+  elapsed \S+  ETA \S+$",
        r"^processed +━+ +\d+/6 +\d+%",
        r"\bin-flight \d+  adaptive limit \d+  max 4\b",
        r"\b\d+\.\d req/s\b",
        r"\b\S+ tok/s\b",
        r"\berrors \d+\.\d%",
        r"\b429s \d+\b",
        r"\bretries \d+\b",
        r"\bbreaker (closed|open|half-open)\b",
        r"\bheadroom req \S+  tok \S+",
        r"\bmemory \d+ MB \(peak \d+\)",
    ):
        assert any(re.search(figure, line) for line in lines), figure
    assert "Run summary" in screen
    assert API_KEY not in text
