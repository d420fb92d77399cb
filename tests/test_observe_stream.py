"""Streamed answer tokens in the metrics and the live view."""

from __future__ import annotations

import msgspec
from rich.console import Console

from crawl4ai_llm_docs.observe.live import plain_line, render
from crawl4ai_llm_docs.observe.metrics import RunMetrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_streamed_tokens_are_a_rate_over_the_recent_window() -> None:
    clock = FakeClock()
    metrics = RunMetrics(clock=clock, memory_probe=lambda: 1.0, window_s=10.0)
    metrics.start()
    assert metrics.snapshot().streaming_tokens_per_s == 0.0
    for second in range(20):
        clock.now = second + 0.5
        metrics.stream_tokens(30)
    clock.now = 20.0
    snapshot = metrics.snapshot()
    assert snapshot.streaming_tokens_per_s == 30.0  # 10 bursts of 30 in the last 10 s
    # Streamed tokens are a live view only: the totals still come from the usage.
    assert (snapshot.completion_tokens, snapshot.tokens_per_s) == (0, 0.0)
    clock.now = 100.0
    assert metrics.snapshot().streaming_tokens_per_s == 0.0


def test_live_view_and_plain_line_show_the_streaming_rate_only_while_streaming() -> None:
    base = RunMetrics(clock=lambda: 0.0).snapshot()
    streaming = msgspec.structs.replace(base, tokens_per_s=900.0, streaming_tokens_per_s=120.0)
    assert "(streaming 120 tok/s)" in plain_line(streaming)
    assert "streaming" not in plain_line(base)
    console = Console(record=True, width=160)
    console.print(render(streaming))
    assert "900 tok/s (streaming 120 tok/s)" in console.export_text()
