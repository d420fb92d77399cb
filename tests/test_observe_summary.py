"""The end-of-run summary and the ``run_finished`` fields."""

from __future__ import annotations

import io

import msgspec
import pytest
from rich.cells import cell_len
from rich.console import Console

from crawl4ai_llm_docs.observe.events import RunFinished
from crawl4ai_llm_docs.observe.metrics import MetricsSnapshot, RunMetrics
from crawl4ai_llm_docs.observe.summary import (
    MAX_FAILURES_SHOWN,
    print_summary,
    run_finished_fields,
    summary_renderable,
    summary_text,
)

URL = "https://docs.example.com/"


def finished_run() -> MetricsSnapshot:
    now = [0.0]
    metrics = RunMetrics(clock=lambda: now[0], memory_probe=lambda: 256.0)
    metrics.start()
    metrics.set_totals(pages=3, chunks=4)
    for page in ("a", "b"):
        metrics.observe({"event": "page_crawled", "url": URL + page})
    metrics.observe({"event": "page_failed", "url": URL + "c"})
    metrics.observe({"event": "chunk_cached", "url": URL + "a", "chunk": 0})
    for latency, status, outcome in ((1000, 429, "retry"), (2000, 200, "ok"), (3000, 200, "ok")):
        metrics.observe(
            {
                "event": "llm_request",
                "status": status,
                "outcome": outcome,
                "latency_ms": float(latency),
                "prompt_tokens": 1500,
                "completion_tokens": 500,
            }
        )
    metrics.observe({"event": "retry", "delay_s": 1.0})
    metrics.observe({"event": "faithfulness_fallback"})
    metrics.document_written(2)
    metrics.sample_memory()
    now[0] = 2.0
    metrics.finish()
    return metrics.snapshot()


FAILURES = [(URL + "c", "HTTP 404 Not Found")]
OUTPUTS = ["out/docs.md", "out/llms.txt"]


def test_summary_text_has_totals_speedup_latency_and_failures() -> None:
    text = summary_text(finished_run(), failures=FAILURES, outputs=OUTPUTS)
    for expected in (
        "Result:",
        "complete",
        "2 crawled, 1 failed, of 3",
        "Documents written:  2",
        "3 of 4 (1 from cache)",
        "3 (errors: 1, retries: 1, HTTP 429: 1)",
        "4,500 prompt + 1,500 completion",
        "p50 2.00 s, p95 3.00 s, p99 3.00 s",
        "Wall time:",
        "2s",
        # 6 s of requests in 2 s of wall time.
        "3.0x over sequential (requests took 6s in total)",
        "Peak memory:        256 MB",
        "Original text kept: 1 chunks",
        "out/docs.md",
        "out/llms.txt",
        "Failures (1):",
        f"  {URL}c: HTTP 404 Not Found",
    ):
        assert expected in text, expected


def test_long_failure_lists_are_cut() -> None:
    failures = [(f"{URL}{i}", "timeout") for i in range(MAX_FAILURES_SHOWN + 5)]
    text = summary_text(finished_run(), failures=failures, outputs=[], incomplete=True)
    assert "INCOMPLETE" in text
    assert f"{URL}{MAX_FAILURES_SHOWN - 1}: timeout" in text
    assert f"{URL}{MAX_FAILURES_SHOWN}: timeout" not in text
    assert "... and 5 more" in text


def test_summary_is_a_table_on_a_terminal_and_text_elsewhere() -> None:
    terminal = Console(record=True, width=120, force_terminal=True, file=io.StringIO())
    print_summary(terminal, finished_run(), failures=FAILURES, outputs=OUTPUTS)
    table = terminal.export_text()
    assert "Run summary" in table
    assert "│" in table or "┃" in table
    assert "HTTP 404 Not Found" in table
    assert "3.0x over sequential" in table

    out = io.StringIO()
    plain = Console(file=out, width=40)
    print_summary(plain, finished_run(), failures=FAILURES, outputs=OUTPUTS)
    assert out.getvalue() == summary_text(finished_run(), failures=FAILURES, outputs=OUTPUTS) + "\n"


def test_summary_renderable_without_failures_is_just_the_table() -> None:
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(summary_renderable(finished_run(), failures=[], outputs=OUTPUTS))
    assert "Failures" not in console.export_text()


# Every row a summary can have, with long values (issue 28: readable whole at 60 and 80).
BUSY_SUMMARY = {
    "pages_new": 1234,
    "pages_changed": 12,
    "pages_unchanged": 3456,
    "pages_removed": 7,
    "rate_limit_waits": 123,
    "rate_limit_wait_s": 456.7,
    "batch": "batch_abcdef0123456789 in_progress 1234/5678 done, 12 failed",
}
LONG_URL = URL + "a/very/long/path/that/goes/on/and/on/forever/index.html"
LONG_OUTPUT = "/home/user/projects/some/deep/output/directory/docs-consolidated.md"
PHRASES = (  # each must read on one line, however narrow the terminal
    "INCOMPLETE",
    "(see failures)",
    "2 crawled,",
    "1 failed,",
    "of 3",
    "1234 new,",
    "12 changed,",
    "3456 unchanged,",
    "7 removed",
    "3 of 4",
    "(1 from cache)",
    "(errors: 1,",
    "retries: 1,",
    "HTTP 429: 1)",
    "4,500 prompt",
    "+ 1,500 completion",
    "p50 2.00 s,",
    "p95 3.00 s,",
    "p99 3.00 s",
    "3.0x over sequential",
    "(requests took 6s in total)",
    "1.50 req/s,",
    "256 MB",
    "123",
    "(456.7 s)",
    "1 chunks",
    "(cleaning not faithful)",
    "out/llms.txt",
    "HTTP 404 Not Found",
)
LABELS = (
    "Result",
    "Pages",
    "Documents written",
    "Since last run",
    "Chunks",
    "LLM requests",
    "Tokens",
    "Latency",
    "Wall time",
    "Speed-up",
    "Throughput",
    "Peak memory",
    "Batch API",
    "Rate-limit waits",
    "Original text kept",
    "Output",
)


@pytest.mark.parametrize("width", [60, 80])
def test_the_summary_reads_whole_on_a_narrow_terminal(width: int) -> None:
    snap = msgspec.structs.replace(finished_run(), **BUSY_SUMMARY)
    failures = [*FAILURES, (LONG_URL, "HTTP 500 Internal Server Error after 3 attempts")]
    console = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
    outputs = [LONG_OUTPUT, "out/llms.txt"]
    print_summary(console, snap, failures=failures, outputs=outputs, incomplete=True)
    text = console.export_text()
    lines = text.splitlines()
    assert "…" not in text
    assert all(cell_len(line) <= width for line in lines), text
    for phrase in (*LABELS, *PHRASES):
        assert any(phrase in line for line in lines), (phrase, text)
    # Free text wraps between words; a path or URL wider than its column is folded, not cut.
    for words in (BUSY_SUMMARY["batch"], "HTTP 500 Internal Server Error after 3 attempts"):
        assert all(word in text for word in str(words).split())
    summary, failed = text.split("Failures (2)")
    assert LONG_OUTPUT in column(summary, 2)
    assert LONG_URL in column(failed, 1)


def column(table: str, index: int) -> str:
    """The cells of one column of a drawn table, read top to bottom and joined."""
    rows = [line.split("│") for line in table.splitlines() if line.count("│") >= 3]
    return "".join(row[index].strip() for row in rows)


def test_run_finished_fields_are_exactly_the_event() -> None:
    fields = run_finished_fields(
        finished_run(), exit_code=2, outputs=OUTPUTS, incomplete=True, failures=FAILURES * 2
    )
    event = msgspec.convert(
        {**fields, "event": "run_finished", "timestamp": "t", "level": "info", "run_id": "r"},
        RunFinished,
    )
    assert (event.exit_code, event.wall_s, event.pages, event.documents) == (2, 2.0, 2, 2)
    assert (event.failed_pages, event.requests, event.cached_chunks) == (2, 3, 1)
    assert (event.retries, event.rate_limited) == (1, 1)
    assert (event.prompt_tokens, event.completion_tokens) == (4500, 1500)
    assert (event.latency_p50_ms, event.latency_p99_ms) == (2000.0, 3000.0)
    assert (event.peak_rss_mb, event.outputs, event.incomplete) == (256.0, OUTPUTS, True)
    without = run_finished_fields(finished_run(), exit_code=0, outputs=[], incomplete=False)
    assert without["failed_pages"] == 1
