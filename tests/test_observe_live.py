"""The live view: rendered figures at every width from 60 columns, and the plain line off a
terminal (real terminals: ``test_observe_live_terminal.py``)."""

from __future__ import annotations

import functools
import io
import re

import msgspec
import pytest
import trio
import trio.testing
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


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
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
