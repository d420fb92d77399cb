"""The end-of-run summary (a table on a terminal, plain text otherwise) and ``run_finished``."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from crawl4ai_llm_docs.observe.flow import Flow
from crawl4ai_llm_docs.observe.live import format_count, format_duration
from crawl4ai_llm_docs.observe.metrics import MetricsSnapshot

Failure = tuple[str, str]  # (url, reason)
MAX_FAILURES_SHOWN = 20  # the JSON log has all of them


def _ms(value: float | None) -> str:
    if value is None:
        return "--"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


Row = tuple[str, tuple[str, ...]]  # a label and its value's phrases, kept whole when wrapped


def _result(incomplete: bool, not_written: bool) -> tuple[str, ...]:
    if not_written:  # exit 4: the error above says what was written and what was not
        return ("OUTPUTS NOT WRITTEN", "(see the error above)")
    return ("INCOMPLETE", "(see failures)") if incomplete else ("complete",)


def _rows(
    s: MetricsSnapshot,
    *,
    outputs: Sequence[str | PathLike[str]],
    incomplete: bool,
    not_written: bool = False,
) -> list[Row]:
    speedup = (
        ("--",)
        if s.speedup is None
        else (
            f"{s.speedup:.1f}x over sequential",
            f"(requests took {format_duration(s.latency_sum_s)} in total)",
        )
    )
    rows: list[Row] = [
        ("Result", _result(incomplete, not_written)),
        (
            "Pages",
            (f"{s.pages_crawled} crawled,", f"{s.pages_failed} failed,", f"of {s.pages_total}"),
        ),
        ("Documents written", (str(s.documents_written),)),
        ("Chunks", (f"{s.chunks_done} of {s.chunks_total}", f"({s.chunks_cached} from cache)")),
        (
            "LLM requests",
            (
                f"{s.requests}",
                f"(errors: {s.request_errors},",
                f"retries: {s.retries},",
                f"HTTP 429: {s.rate_limited})",
            ),
        ),
        ("Tokens", (f"{s.prompt_tokens:,} prompt", f"+ {s.completion_tokens:,} completion")),
        (
            "Latency",
            (
                f"p50 {_ms(s.latency_p50_ms)},",
                f"p95 {_ms(s.latency_p95_ms)},",
                f"p99 {_ms(s.latency_p99_ms)}",
            ),
        ),
        ("Wall time", (format_duration(s.elapsed_s),)),
        ("Speed-up", speedup),
        (
            "Throughput",
            (
                f"{s.requests_per_s_overall:.2f} req/s,",
                f"{format_count(s.tokens_per_s_overall)} tok/s overall",
            ),
        ),
        ("Peak memory", (f"{s.peak_rss_mb:.0f} MB",)),
    ]
    if s.batch:  # free text from the provider: whole words
        rows.append(("Batch API", ("last", "batch", *s.batch.split())))
    if s.pages_new or s.pages_changed or s.pages_unchanged or s.pages_removed:
        changes = (
            f"{s.pages_new} new,",
            f"{s.pages_changed} changed,",
            f"{s.pages_unchanged} unchanged,",
            f"{s.pages_removed} removed",
        )
        rows.insert(3, ("Since last run", changes))
    if s.rate_limit_waits:
        waits = (str(s.rate_limit_waits), f"({s.rate_limit_wait_s:.1f} s)")
        rows.append(("Rate-limit waits", waits))
    if s.fallbacks:
        rows.append(("Original text kept", (f"{s.fallbacks} chunks", "(cleaning not faithful)")))
    rows.extend(("Output" if i == 0 else "", (str(p),)) for i, p in enumerate(outputs))
    return rows


def _shown_failures(failures: Sequence[Failure]) -> tuple[Sequence[Failure], int]:
    return failures[:MAX_FAILURES_SHOWN], max(len(failures) - MAX_FAILURES_SHOWN, 0)


def summary_renderable(
    snapshot: MetricsSnapshot,
    *,
    failures: Sequence[Failure],
    outputs: Sequence[str | PathLike[str]],
    incomplete: bool = False,
    not_written: bool = False,
) -> RenderableType:
    table = Table(title="Run summary", show_header=False, title_justify="left")
    table.add_column(style="bold", overflow="fold")  # kept whole: the values wrap first
    table.add_column()
    rows = _rows(snapshot, outputs=outputs, incomplete=incomplete, not_written=not_written)
    for label, phrases in rows:
        style = "bold red" if label == "Result" and (incomplete or not_written) else ""
        # A narrow terminal wraps a value between its phrases ("HTTP 429: 1" stays whole).
        table.add_row(label, Flow((Text(p, style=style) for p in phrases), gap=1))
    if not failures:
        return table
    shown, more = _shown_failures(failures)
    problems = Table(title=f"Failures ({len(failures)})", title_justify="left", title_style="red")
    problems.add_column("URL", overflow="fold")
    problems.add_column("Reason", overflow="fold")
    for url, reason in shown:
        problems.add_row(url, reason)
    if more:
        problems.add_row(f"... and {more} more", "(all are in the JSON log)")
    return Group(table, problems)


def summary_text(
    snapshot: MetricsSnapshot,
    *,
    failures: Sequence[Failure],
    outputs: Sequence[str | PathLike[str]],
    incomplete: bool = False,
    not_written: bool = False,
) -> str:
    rows = _rows(snapshot, outputs=outputs, incomplete=incomplete, not_written=not_written)
    width = max(len(label) for label, _ in rows)
    lines = ["Run summary"]
    lines += [
        f"  {label + (':' if label else ''):<{width + 1}} {' '.join(phrases)}"
        for label, phrases in rows
    ]
    if failures:
        shown, more = _shown_failures(failures)
        lines.append(f"Failures ({len(failures)}):")
        lines += [f"  {url}: {reason}" for url, reason in shown]
        if more:
            lines.append(f"  ... and {more} more (all are in the JSON log)")
    return "\n".join(lines)


def print_summary(
    console: Console,
    snapshot: MetricsSnapshot,
    *,
    failures: Sequence[Failure],
    outputs: Sequence[str | PathLike[str]],
    incomplete: bool = False,
    not_written: bool = False,
) -> None:
    """A table on a terminal; plain text (easy to grep and diff) anywhere else."""
    flags = {"incomplete": incomplete, "not_written": not_written}
    if console.is_terminal:
        console.print(summary_renderable(snapshot, failures=failures, outputs=outputs, **flags))
    else:
        text = summary_text(snapshot, failures=failures, outputs=outputs, **flags)
        console.print(Text(text), soft_wrap=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run_finished_fields(
    snapshot: MetricsSnapshot,
    *,
    exit_code: int,
    outputs: Sequence[str | PathLike[str]],
    incomplete: bool,
    failures: Sequence[Failure] | None = None,
) -> dict[str, Any]:
    """Exactly the ``RunFinished`` event fields, minus those the logging processors add.

    ``failures`` is the pipeline's list (crawl and LLM failures); without it, the number of
    ``page_failed`` events counts.
    """
    s = snapshot
    return {
        "exit_code": exit_code,
        "wall_s": round(s.elapsed_s, 3),
        "pages": s.pages_crawled,
        "documents": s.documents_written,
        "failed_pages": s.pages_failed if failures is None else len(failures),
        "new_pages": s.pages_new,
        "changed_pages": s.pages_changed,
        "unchanged_pages": s.pages_unchanged,
        "removed_pages": s.pages_removed,
        "requests": s.requests,
        "cached_chunks": s.chunks_cached,
        "retries": s.retries,
        "rate_limited": s.rate_limited,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "latency_p50_ms": _round(s.latency_p50_ms),
        "latency_p95_ms": _round(s.latency_p95_ms),
        "latency_p99_ms": _round(s.latency_p99_ms),
        "peak_rss_mb": round(s.peak_rss_mb, 1),
        "outputs": [str(p) for p in outputs],
        "incomplete": incomplete,
    }
