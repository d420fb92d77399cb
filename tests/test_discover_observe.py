"""Discovery in the live view, the plain progress line and the ``metrics`` JSON events."""

from __future__ import annotations

import io
import json

from rich.console import Console
from structlog.testing import capture_logs

from crawl4ai_llm_docs.observe.events import Metrics, decode_event
from crawl4ai_llm_docs.observe.live import plain_line, render
from crawl4ai_llm_docs.observe.metrics import DiscoveryView, RunMetrics, log_metrics

VIEW = DiscoveryView(discovered=120, queued=70, crawled=50, excluded=9, blocked=3, listed=44)


def text_of(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_discovery_counts_are_shown_when_discovering() -> None:
    metrics = RunMetrics(clock=lambda: 0.0)
    assert "discovered" not in text_of(render(metrics.snapshot()))  # a URL-file run
    metrics.set_discovery_probe(lambda: VIEW)
    shown = text_of(render(metrics.snapshot()))
    for part in (
        "discovered 120",
        "queued 70",
        "crawled 50",
        "excluded 9",
        "blocked by robots.txt 3",
    ):
        assert part in shown
    assert "| discovered 120  queued 70" in plain_line(metrics.snapshot())


def test_metrics_events_carry_discovery_counts_and_keep_the_contract() -> None:
    metrics = RunMetrics(clock=lambda: 0.0)
    with capture_logs() as plain:
        log_metrics(metrics)
    assert "discovery_queued" not in plain[0]
    metrics.set_discovery_probe(lambda: VIEW)
    with capture_logs() as logs:
        log_metrics(metrics)
    event = {k: v for k, v in logs[0].items() if k != "log_level"}
    event |= {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "run_id": "r"}
    decoded = decode_event(json.dumps(event))
    assert isinstance(decoded, Metrics)
    assert (decoded.discovery_discovered, decoded.discovery_queued) == (120, 70)
    assert (decoded.discovery_excluded, decoded.discovery_blocked) == (9, 3)
