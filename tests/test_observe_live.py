"""The live view: rendered figures at every width, the plain line off a terminal, and a real
pseudo-terminal (the driver below, and the real CLI at 80x24)."""

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
import time
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing
from e2e_support import API_KEY, HANG_GUARD_S, running
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from crawl4ai_llm_docs.observe.live import (
    format_count,
    format_duration,
    plain_line,
    render,
    run_live_view,
)
from crawl4ai_llm_docs.observe.metrics import DiscoveryView, MetricsSnapshot, RunMetrics

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


def rendered(snap: MetricsSnapshot, width: int = 120) -> str:
    console = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
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
        "429s 3",
        "retries 4",
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


# A busy run, every figure at its widest realistic value (issue 28).
BUSY = snapshot(
    elapsed_s=3725.0,
    stage="llm",
    pages_total=12_345,
    pages_crawled=9_876,
    pages_failed=123,
    chunks_total=23_456,
    chunks_done=12_345,
    chunks_cached=1_234,
    documents_written=9_000,
    in_flight=20,
    limit=20,
    effective_limit=12,
    requests_per_s=123.4,
    tokens_per_s=56_789.0,
    streaming_tokens_per_s=23_456.0,
    error_rate=0.123,
    rate_limited=1_234,
    retries=567,
    requests_remaining=4_500,
    requests_limit=5_000,
    tokens_remaining=900_000,
    tokens_limit=1_500_000,
    rss_mb=312.0,
    peak_rss_mb=940.0,
    eta_s=7_200.0,
    breaker_state="open",
    discovery=DiscoveryView(
        discovered=12_345, queued=2_000, crawled=9_999, excluded=345, blocked=56
    ),
    batch="batch_abc123 in_progress 12/28 done, 1 failed",
)
WIDTHS = (60, 80, 100, 120, 160)
# What goes first as the terminal narrows (the order, the README's words).
DROPPABLE = ("streaming", "headroom", "memory", "retries")


def _headroom(remaining: int | None, limit: int | None) -> str:
    if remaining is None:
        return "?"
    return f"{format_count(remaining)}/{format_count(limit)}" if limit else format_count(remaining)


def always_shown(s: MetricsSnapshot) -> list[str]:
    shown = [
        f"in-flight {s.in_flight}  adaptive limit {s.effective_limit}  max {s.limit}",
        f"{s.requests_per_s:.1f} req/s",
        f"{format_count(s.tokens_per_s)} tok/s",
        f"errors {s.error_rate:.1%}",
        f"429s {s.rate_limited}",
        f"breaker {s.breaker_state}",
        f"elapsed {format_duration(s.elapsed_s)}",
    ]
    return [*shown, f"ETA {format_duration(s.eta_s)}"] if s.stage != "done" else shown


def droppable(s: MetricsSnapshot) -> dict[str, str]:
    """Each field that may go, as it reads when shown; its name is a word only it uses."""
    fields = {
        "headroom": f"headroom req {_headroom(s.requests_remaining, s.requests_limit)}"
        f"  tok {_headroom(s.tokens_remaining, s.tokens_limit)}",
        "memory": f"memory {s.rss_mb:.0f} MB (peak {s.peak_rss_mb:.0f})",
        "retries": f"retries {s.retries}",
    }
    if s.streaming_tokens_per_s > 0:
        rate = format_count(s.streaming_tokens_per_s)
        fields["streaming"] = f"{format_count(s.tokens_per_s)} tok/s (streaming {rate} tok/s)"
    return fields


def dropped_at(s: MetricsSnapshot, width: int) -> list[str]:
    """Check the view at ``width`` reads whole; return the fields it left out."""
    text = rendered(s, width)
    lines = text.splitlines()
    assert "…" not in text
    assert "..." not in text
    assert all(cell_len(line) <= width for line in lines), text
    for field in always_shown(s):
        assert any(field in line for line in lines), (field, text)
    fields = droppable(s)
    order = [name for name in DROPPABLE if name in fields]
    dropped = []
    for name in order:
        if not any(fields[name] in line for line in lines):
            assert name not in text, (name, text)  # gone whole, not half
            dropped.append(name)
    # Left out in the order: never a later field while an earlier one shows.
    assert dropped == order[: len(dropped)], (dropped, text)
    return dropped


@pytest.mark.parametrize("width", WIDTHS)
def test_every_figure_reads_whole_or_is_left_out_whole(width: int) -> None:
    dropped = dropped_at(BUSY, width)
    text = rendered(BUSY, width)
    for part in ("discovered 12345", "blocked by robots.txt 56", "123 failed", "1234 cached"):
        assert any(part in line for line in text.splitlines()), part
    assert "batch batch_abc123 in_progress" in text
    if width >= 80:  # the numbers a user watches (issue 28): the limit, 429s, retries, memory
        assert not {"memory", "retries"} & set(dropped), dropped
    if width >= 120:
        assert dropped == [], dropped


def test_fields_go_one_by_one_as_the_terminal_narrows() -> None:
    previous: list[str] = []
    for width in range(160, 59, -1):
        dropped = dropped_at(BUSY, width)
        assert dropped[: len(previous)] == previous, (width, dropped)
        previous = dropped
    assert previous, "at 60 columns something must give"


def bar_widths(text: str) -> list[int]:
    return [
        len(m[1]) for m in re.finditer(r"^(?:crawled|processed|written) +([━╸╺]+) ", text, re.M)
    ]


def test_the_bars_shrink_to_fit() -> None:
    widths = {width: bar_widths(rendered(BUSY, width)) for width in WIDTHS}
    assert all(len(bars) == 3 and len(set(bars)) == 1 for bars in widths.values()), widths
    assert widths[160][0] == widths[120][0] == 40  # as wide as before on a wide terminal
    assert widths[60][0] < widths[80][0] <= 40
    assert widths[60][0] >= 10


BREAKER = st.sampled_from(["closed", "open", "half-open"])
COUNTS = st.integers(min_value=0, max_value=999_999)
RATES = st.floats(min_value=0, max_value=2_000_000, allow_nan=False)
HEADROOM = st.one_of(st.none(), st.integers(min_value=0, max_value=10_000_000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(min_value=60, max_value=160),
    done=COUNTS,
    total=COUNTS,
    failed=st.integers(min_value=0, max_value=9_999),
    in_flight=st.integers(min_value=0, max_value=20),
    limits=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    requests_per_s=st.floats(min_value=0, max_value=999, allow_nan=False),
    tokens_per_s=RATES,
    streaming_tokens_per_s=RATES,
    error_rate=st.floats(min_value=0, max_value=1, allow_nan=False),
    rate_limited=COUNTS,
    retries=COUNTS,
    headroom=st.tuples(HEADROOM, HEADROOM, HEADROOM, HEADROOM),
    memory=st.tuples(st.floats(1, 99_999), st.floats(1, 99_999)),
    breaker=BREAKER,
    eta_s=st.one_of(st.none(), st.floats(min_value=0, max_value=10**6)),
    stage=st.sampled_from(["crawl", "llm", "write", "done"]),
)
def test_any_figures_at_any_width_read_whole(
    width: int,
    done: int,
    total: int,
    failed: int,
    in_flight: int,
    limits: tuple[int, int],
    requests_per_s: float,
    tokens_per_s: float,
    streaming_tokens_per_s: float,
    error_rate: float,
    rate_limited: int,
    retries: int,
    headroom: tuple[int | None, int | None, int | None, int | None],
    memory: tuple[float, float],
    breaker: str,
    eta_s: float | None,
    stage: str,
) -> None:
    s = snapshot(
        stage=stage,
        elapsed_s=123.0,
        pages_total=total,
        pages_crawled=min(done, total),
        pages_failed=failed,
        chunks_total=total,
        chunks_done=done,
        chunks_cached=done // 3,
        documents_written=done // 2,
        in_flight=in_flight,
        limit=max(limits),
        effective_limit=min(limits),
        requests_per_s=requests_per_s,
        tokens_per_s=tokens_per_s,
        streaming_tokens_per_s=streaming_tokens_per_s,
        error_rate=error_rate,
        rate_limited=rate_limited,
        retries=retries,
        requests_remaining=headroom[0],
        requests_limit=headroom[1],
        tokens_remaining=headroom[2],
        tokens_limit=headroom[3],
        rss_mb=min(memory),
        peak_rss_mb=max(memory),
        breaker_state=breaker,
        eta_s=eta_s,
    )
    dropped_at(s, width)
    text = rendered(s, width)
    for label in ("crawled", "processed", "written"):
        assert re.search(rf"^{label} +[━╸╺]{{10,40}} ", text, re.M), (label, text)


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
        "  1.2k tok/s  errors 2.0%  429s 3  breaker closed  ETA 9s"
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
