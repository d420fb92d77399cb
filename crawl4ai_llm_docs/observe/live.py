"""The live view: Rich progress bars and figures on a terminal, one plain line otherwise.

Figures (rates, latency, memory) come from a full ``RunMetrics.snapshot()`` taken every
``interval``; the bars are redrawn by Rich's own refresh thread from the current counts, so they
move smoothly without a polling loop here.

The view is laid out for the width it is drawn at (60 columns and up): the bars shrink, the
figures are whole "label value" cells that wrap onto another row (``observe/flow.py``), and
when they would need more than ``FIGURE_ROWS`` rows the fields in ``DROP_ORDER`` go, whole,
first to last. Nothing is ever cut with ``…``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import trio
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from crawl4ai_llm_docs.observe.flow import Flow
from crawl4ai_llm_docs.observe.metrics import DiscoveryView, MetricsSnapshot, RunMetrics

# The bars shrink to fit the terminal, down to a width that still shows progress.
_BAR_MAX = 40
_BAR_MIN = 10
_LABEL_WIDTH = len("processed")
# At most this many rows of figures: past it, the least watched fields go, in this order, so
# the view stays under ten lines of a 24-line terminal. The others always show, wrapped.
FIGURE_ROWS = 3
DROP_ORDER = ("streaming", "headroom", "memory", "retries")
_FIGURE_GAP = 3


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_count(value: float) -> str:
    """1234 -> 1.2k, so columns stay narrow."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _headroom(remaining: int | None, limit: int | None) -> str:
    if remaining is None:
        return "?"
    return f"{format_count(remaining)}/{format_count(limit)}" if limit else format_count(remaining)


def _streaming(snapshot: MetricsSnapshot) -> str:
    rate = snapshot.streaming_tokens_per_s
    return f" (streaming {format_count(rate)} tok/s)" if rate > 0 else ""


class _Figure(NamedTuple):
    name: str  # one of DROP_ORDER for a field that may go; "" for one always shown
    text: Text
    slot: str  # the widest value it usually takes: the layout holds still as figures change


def _figures(s: MetricsSnapshot, dropped: Collection[str]) -> list[_Figure]:
    errors_style = "red" if s.error_rate >= 0.1 else ""
    breaker_style = {"closed": "green", "half-open": "yellow", "half_open": "yellow"}.get(
        s.breaker_state, "bold red"
    )
    tokens = f"{format_count(s.tokens_per_s)} tok/s"
    streaming = "" if "streaming" in dropped else _streaming(s)
    headroom = (
        f"headroom req {_headroom(s.requests_remaining, s.requests_limit)}"
        f"  tok {_headroom(s.tokens_remaining, s.tokens_limit)}"
    )
    figures = [
        _Figure(
            "",
            Text(f"in-flight {s.in_flight}  adaptive limit {s.effective_limit}  max {s.limit}"),
            "in-flight 20  adaptive limit 20  max 20",
        ),
        _Figure("", Text(f"{s.requests_per_s:.1f} req/s"), "999.9 req/s"),
        _Figure(
            "",
            Text(tokens + streaming),
            "99.9k tok/s" + (" (streaming 99.9k tok/s)" if streaming else ""),
        ),
        _Figure(
            "", Text.assemble("errors ", (f"{s.error_rate:.1%}", errors_style)), "errors 100.0%"
        ),
        _Figure("", Text(f"429s {s.rate_limited}"), "429s 9999"),
        _Figure("retries", Text(f"retries {s.retries}"), "retries 9999"),
        _Figure(
            "", Text.assemble("breaker ", (s.breaker_state, breaker_style)), "breaker half-open"
        ),
        _Figure("headroom", Text(headroom), "headroom req 99.9k/99.9k  tok 99.9k/99.9k"),
        _Figure(
            "memory",
            Text(f"memory {s.rss_mb:.0f} MB (peak {s.peak_rss_mb:.0f})"),
            "memory 9999 MB (peak 9999)",
        ),
    ]
    return [figure for figure in figures if figure.name not in dropped]


def _figure_flow(s: MetricsSnapshot, width: int) -> Flow:
    """The figures in at most FIGURE_ROWS rows, dropping fields whole in DROP_ORDER to get there."""
    for count in range(len(DROP_ORDER) + 1):
        figures = _figures(s, DROP_ORDER[:count])
        flow = Flow(
            (f.text for f in figures), gap=_FIGURE_GAP, slots=[cell_len(f.slot) for f in figures]
        )
        if len(flow.rows(width)) <= FIGURE_ROWS:
            break
    return flow  # narrower than the always-shown fields: they wrap onto more rows


def _bars(s: MetricsSnapshot, width: int) -> Table:
    failed = Text(f"{s.pages_failed} failed", style="red") if s.pages_failed else Text()
    cached = Text(f"{s.chunks_cached} cached") if s.chunks_cached else Text()
    rows = [
        ("crawled", s.pages_attempted, s.pages_total, failed),
        ("processed", s.chunks_done, s.chunks_total, cached),
        ("written", s.documents_written, s.documents_expected, Text()),
    ]
    counts = [f"{done}/{total}" if total > 0 else f"{done}/?" for _, done, total, _ in rows]
    percents = [f"{done / total:4.0%}" if total > 0 else "" for _, done, total, _ in rows]
    note_width = max(note.cell_len for *_, note in rows)
    others = [_LABEL_WIDTH, max(map(len, counts)), max(map(len, percents))]
    others += [note_width] * bool(note_width)
    # Each column is followed by one space of padding, the bar's included.
    bar_width = min(_BAR_MAX, max(_BAR_MIN, width - sum(others) - len(others)))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(overflow="fold")
    grid.add_column(width=bar_width)
    grid.add_column(justify="right", overflow="fold")
    grid.add_column(overflow="fold")
    if note_width:
        grid.add_column(overflow="fold")
    for (label, done, total, note), count, percent in zip(rows, counts, percents, strict=True):
        bar = ProgressBar(total=total if total > 0 else None, completed=done, width=bar_width)
        cells: list[RenderableType] = [Text(label, style="bold"), bar, Text(count), Text(percent)]
        grid.add_row(*cells, *[note] * bool(note_width))
    return grid


class LiveView:
    """The live view of one snapshot, laid out for the width it is drawn at.

    Pure (the tests render it to a recording console); Rich's refresh thread draws it.
    """

    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s, width = self.snapshot, options.max_width
        title = [Text("crawl4ai-llm-docs", style="bold"), Text(s.stage)]
        title.append(Text(f"elapsed {format_duration(s.elapsed_s)}"))
        if s.stage != "done":
            title.append(Text(f"ETA {format_duration(s.eta_s)}"))
        yield Flow(title, gap=2)
        if s.discovery is not None:
            yield Flow(discovery_cells(s.discovery), gap=2)
        yield _bars(s, width)
        yield _figure_flow(s, width)
        if s.batch:
            yield Text(f"batch {s.batch}")


def render(snapshot: MetricsSnapshot) -> RenderableType:
    """The live view of one snapshot; how much of it shows depends on the width drawn at."""
    return LiveView(snapshot)


def discovery_cells(view: DiscoveryView) -> list[str]:
    return [
        f"discovered {view.discovered}",
        f"queued {view.queued}",
        f"crawled {view.crawled}",
        f"excluded {view.excluded}",
        f"blocked by robots.txt {view.blocked}",
    ]


def discovery_line(view: DiscoveryView) -> str:
    return "  ".join(discovery_cells(view))


def plain_line(snapshot: MetricsSnapshot) -> str:
    """One line of progress for logs and pipes (no terminal, no colours)."""
    s = snapshot
    line = (
        f"[{format_duration(s.elapsed_s)}] crawled {s.pages_attempted}/{s.pages_total}"
        f"  processed {s.chunks_done}/{s.chunks_total}"
        f"  written {s.documents_written}/{s.documents_expected}"
        f"  in-flight {s.in_flight}/{s.effective_limit}"
        f"  {s.requests_per_s:.1f} req/s  {format_count(s.tokens_per_s)} tok/s{_streaming(s)}"
        f"  errors {s.error_rate:.1%}  429s {s.rate_limited}  breaker {s.breaker_state}"
        f"  ETA {format_duration(s.eta_s)}"
    ) + (f"  | {discovery_line(s.discovery)}" if s.discovery is not None else "")
    return line + (f"  batch {s.batch}" if s.batch else "")


async def run_live_view(
    metrics: RunMetrics,
    *,
    console: Console,
    interval: float,
    refresh_per_second: float = 4.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Show progress until cancelled; the terminal view is erased on exit (transient)."""
    if not console.is_terminal:
        await _plain_lines(metrics, console=console, interval=interval, task_status=task_status)
        return
    await metrics.refresh_memory()
    latest = metrics.snapshot()

    def frame() -> RenderableType:  # called from Rich's refresh thread
        return render(metrics.with_progress(latest))

    live = Live(
        get_renderable=frame,
        console=console,
        refresh_per_second=refresh_per_second,
        transient=True,
        redirect_stdout=False,  # stdout may carry the document itself
        redirect_stderr=True,  # stray library writes go above the view, not through it
    )
    with live:
        task_status.started()
        deadline = trio.current_time() + interval
        while True:
            await trio.sleep_until(deadline)
            deadline += interval
            await metrics.refresh_memory()
            latest = metrics.snapshot()


async def _plain_lines(
    metrics: RunMetrics,
    *,
    console: Console,
    interval: float,
    task_status: trio.TaskStatus[None],
) -> None:
    task_status.started()
    deadline = trio.current_time() + interval
    while True:
        await trio.sleep_until(deadline)
        deadline += interval
        await metrics.refresh_memory()
        console.print(Text(plain_line(metrics.snapshot())), soft_wrap=True)
