"""The live view: rendered figures, the plain line off a terminal, and a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import functools
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import msgspec
import trio
import trio.testing
from rich.console import Console

from crawl4ai_llm_docs.observe.live import (
    format_count,
    format_duration,
    plain_line,
    render,
    run_live_view,
)
from crawl4ai_llm_docs.observe.metrics import MetricsSnapshot, RunMetrics

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def snapshot(**changes: object) -> MetricsSnapshot:
    base = RunMetrics(clock=lambda: 0.0).snapshot()
    return msgspec.structs.replace(base, **changes)


EARLY = snapshot(
    elapsed_s=12.0,
    stage="llm",
    pages_total=28,
    pages_crawled=19,
    pages_failed=1,
    chunks_total=28,
    chunks_done=14,
    documents_written=3,
    in_flight=8,
    limit=8,
    effective_limit=6,
    requests_per_s=3.9,
    tokens_per_s=1234.0,
    error_rate=0.02,
    rate_limited=3,
    retries=4,
    requests_remaining=450,
    requests_limit=500,
    tokens_remaining=90_000,
    tokens_limit=150_000,
    rss_mb=312.0,
    peak_rss_mb=340.0,
    eta_s=9.0,
)
LATER = msgspec.structs.replace(
    EARLY,
    elapsed_s=75.0,
    pages_crawled=27,
    chunks_done=27,
    requests_per_s=5.5,
    rate_limited=5,
    breaker_state="open",
    eta_s=130.0,
)


def rendered(snap: MetricsSnapshot) -> str:
    console = Console(record=True, width=120, force_terminal=True)
    console.print(render(snap))
    return console.export_text()


def test_render_shows_the_key_figures_and_follows_the_snapshot() -> None:
    early, later = rendered(EARLY), rendered(LATER)
    for figure in (
        "crawled",
        "20/28",
        "1 failed",
        "processed",
        "14/28",
        "ETA 9s",
        "written",
        "3/27",
        "in-flight 8  adaptive limit 6  max 8",
        "3.9 req/s",
        "1.2k tok/s",
        "errors 2.0%",
        "429s 3  retries 4",
        "breaker closed",
        "headroom req 450/500  tok 90k/150k",
        "memory 312 MB (peak 340)",
        "elapsed 12s",
        "━",
    ):
        assert figure in early, figure
    for figure in ("28/28", "27/28", "ETA 2m10s", "5.5 req/s", "429s 5", "breaker open"):
        assert figure in later, figure
        assert figure not in early, figure


def test_render_copes_with_nothing_known_yet() -> None:
    text = rendered(snapshot())
    assert "0/?" in text
    assert "ETA --" in text
    assert "headroom req ?  tok ?" in text


def test_formatting_helpers() -> None:
    assert [format_duration(s) for s in (None, 9.4, 65, 3725)] == ["--", "9s", "1m05s", "1h02m"]
    assert [format_count(v) for v in (3, 2.5, 1234, 56_789, 2_500_000)] == [
        "3",
        "2.5",
        "1.2k",
        "57k",
        "2.5M",
    ]


def test_plain_line() -> None:
    assert plain_line(EARLY) == (
        "[12s] crawled 20/28  processed 14/28  written 3/27  in-flight 8/6  3.9 req/s"
        "  1.2k tok/s  errors 2.0%  429s 3  ETA 9s"
    )


async def test_plain_lines_every_interval_off_a_terminal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    console = Console(file=out, width=60)  # narrower than the line: it must not wrap
    assert not console.is_terminal
    metrics = RunMetrics(memory_probe=lambda: 50.0)
    metrics.set_totals(pages=2, chunks=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(run_live_view, metrics, console=console, interval=5.0)
        )
        await trio.sleep(6)
        metrics.observe({"event": "page_crawled"})
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[5s] crawled 0/2  processed 0/2  written 0/2")
    assert lines[1].startswith("[10s] crawled 1/2  processed 0/2  written 0/2")
    assert "\x1b" not in out.getvalue()


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


def test_live_view_on_a_real_pseudo_terminal(tmp_path: Path) -> None:
    script = tmp_path / "drive.py"
    script.write_text(DRIVER)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
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
    assert "\x1b[38;5;" in text  # coloured bars: Rich saw a real terminal
    # A log line printed while the view was live appears above it, whole and redacted.
    assert re.search(r"\d\d:\d\d:\d\d WARN  slow provider, key \[REDACTED\]\r\n", screen)
    assert "SECRET123" not in text
    # Nothing stray once the view is gone: it erases itself and only the script's line follows.
    tail = text[text.rindex("\x1b[?25h") :]
    assert tail.count("\x1b[2K") == 6  # each of the view's lines erased
    assert ANSI.sub("", tail).strip() == "END-OF-RUN"
