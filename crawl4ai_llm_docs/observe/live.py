"""The live view: Rich progress bars and figures on a terminal, one plain line otherwise.

Figures (rates, latency, memory) come from a full ``RunMetrics.snapshot()`` taken every
``interval``; the bars are redrawn by Rich's own refresh thread from the current counts, so they
move smoothly without a polling loop here.
"""

from __future__ import annotations

import trio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from crawl4ai_llm_docs.observe.metrics import DiscoveryView, MetricsSnapshot, RunMetrics

_BAR_WIDTH = 40


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


def _bar_row(label: str, done: int, total: int, note: str) -> list[RenderableType]:
    known = total > 0
    bar = ProgressBar(total=total if known else None, completed=done, width=_BAR_WIDTH)
    count = f"{done}/{total}" if known else f"{done}/?"
    percent = f"{done / total:4.0%}" if known else ""
    return [Text(label, style="bold"), bar, Text(count, justify="right"), Text(percent), Text(note)]


def render(snapshot: MetricsSnapshot) -> RenderableType:
    """The live view of one snapshot (pure: the tests render it to a recording console)."""
    s = snapshot
    bars = Table.grid(padding=(0, 1))
    for _ in range(5):
        bars.add_column(no_wrap=True)
    failed = f"{s.pages_failed} failed" if s.pages_failed else ""
    cached = f"{s.chunks_cached} cached  " if s.chunks_cached else ""
    eta = "done" if s.stage == "done" else f"ETA {format_duration(s.eta_s)}"
    bars.add_row(*_bar_row("crawled", s.pages_attempted, s.pages_total, failed))
    bars.add_row(*_bar_row("processed", s.chunks_done, s.chunks_total, f"{cached}{eta}"))
    bars.add_row(*_bar_row("written", s.documents_written, s.documents_expected, ""))

    errors_style = "red" if s.error_rate >= 0.1 else ""
    breaker_style = {"closed": "green", "half_open": "yellow", "half-open": "yellow"}.get(
        s.breaker_state, "bold red"
    )
    figures = Table.grid(padding=(0, 3))
    for _ in range(4):
        figures.add_column(no_wrap=True)
    figures.add_row(
        f"in-flight {s.in_flight}  adaptive limit {s.effective_limit}  max {s.limit}",
        f"{s.requests_per_s:.1f} req/s",
        f"{format_count(s.tokens_per_s)} tok/s" + _streaming(s),
        Text.assemble("errors ", (f"{s.error_rate:.1%}", errors_style)),
    )
    figures.add_row(
        Text.assemble("breaker ", (s.breaker_state, breaker_style)),
        f"429s {s.rate_limited}  retries {s.retries}",
        f"headroom req {_headroom(s.requests_remaining, s.requests_limit)}"
        f"  tok {_headroom(s.tokens_remaining, s.tokens_limit)}",
        f"memory {s.rss_mb:.0f} MB (peak {s.peak_rss_mb:.0f})",
    )
    title = Text.assemble(
        ("crawl4ai-llm-docs", "bold"), f"  {s.stage}  elapsed {format_duration(s.elapsed_s)}"
    )
    parts: list[RenderableType] = [title]
    if s.discovery is not None:
        parts.append(Text(discovery_line(s.discovery)))
    parts += [bars, figures]
    if s.batch:
        parts.append(Text(f"batch {s.batch}"))
    return Group(*parts)


def discovery_line(view: DiscoveryView) -> str:
    return (
        f"discovered {view.discovered}  queued {view.queued}  crawled {view.crawled}"
        f"  excluded {view.excluded}  blocked by robots.txt {view.blocked}"
    )


def plain_line(snapshot: MetricsSnapshot) -> str:
    """One line of progress for logs and pipes (no terminal, no colours)."""
    s = snapshot
    line = (
        f"[{format_duration(s.elapsed_s)}] crawled {s.pages_attempted}/{s.pages_total}"
        f"  processed {s.chunks_done}/{s.chunks_total}"
        f"  written {s.documents_written}/{s.documents_expected}"
        f"  in-flight {s.in_flight}/{s.effective_limit}"
        f"  {s.requests_per_s:.1f} req/s  {format_count(s.tokens_per_s)} tok/s{_streaming(s)}"
        f"  errors {s.error_rate:.1%}  429s {s.rate_limited}  ETA {format_duration(s.eta_s)}"
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
