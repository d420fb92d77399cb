"""RunMetrics: counts, rates, percentiles, ETA, memory and the periodic ``metrics`` events."""

from __future__ import annotations

import functools
import select
import subprocess
import sys
from typing import Any

import msgspec
import psutil
import pytest
import structlog
import trio
import trio.testing

from crawl4ai_llm_docs.observe.events import Metrics
from crawl4ai_llm_docs.observe.metrics import (
    LimiterState,
    RunMetrics,
    metrics_fields,
    percentile,
    process_tree_rss_mb,
    report_metrics,
)

URL = "https://docs.example.com/a"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def request(
    *, outcome: str = "ok", status: int | None = 200, latency_ms: float = 1000.0, tokens: int = 100
) -> dict[str, Any]:
    return {
        "event": "llm_request",
        "url": URL,
        "chunk": 0,
        "attempt": 1,
        "status": status,
        "outcome": outcome,
        "latency_ms": latency_ms,
        "queued_ms": 0.0,
        "prompt_tokens": tokens,
        "completion_tokens": 0,
    }


def make(clock: FakeClock, **kwargs: Any) -> RunMetrics:
    metrics = RunMetrics(clock=clock, memory_probe=lambda: 100.0, **kwargs)
    metrics.start()
    return metrics


def test_counts_follow_the_documented_rules() -> None:
    clock = FakeClock()
    metrics = make(clock)
    metrics.set_totals(pages=4, chunks=5)
    for event in (
        {"event": "run_started", "urls": 99},  # set_totals came first and wins
        {"event": "page_crawled", "url": URL},
        {"event": "page_crawled", "url": URL},
        {"event": "page_failed", "url": URL},
        {"event": "chunk_cached", "url": URL, "chunk": 0},
        request(),
        request(outcome="retry", status=429),
        request(outcome="split", status=400),
        request(outcome="failed", status=500),
        {"event": "retry", "url": URL, "delay_s": 1.0},
        {"event": "rate_limit", "wait_s": 2.5},
        {"event": "rate_limit", "wait_s": 0.5},
        {"event": "faithfulness_fallback", "url": URL, "chunk": 1},
        {"event": "circuit_breaker", "old_state": "closed", "new_state": "half_open"},
        {"event": "metrics", "done": 1000},  # its own output is not an input
    ):
        metrics.observe(event)
    metrics.document_written()
    snap = metrics.snapshot()
    assert (snap.pages_total, snap.pages_crawled, snap.pages_failed) == (4, 2, 1)
    # cached + ok + failed are done; the retry and the split are not.
    assert (snap.chunks_done, snap.chunks_total, snap.chunks_cached) == (3, 5, 1)
    assert (snap.requests, snap.request_errors, snap.rate_limited) == (4, 2, 1)
    assert (snap.retries, snap.rate_limit_waits, snap.rate_limit_wait_s) == (1, 2, 3.0)
    assert (snap.fallbacks, snap.documents_written, snap.breaker_state) == (1, 1, "half_open")
    assert snap.prompt_tokens == 400
    assert snap.error_rate_overall == 0.5
    assert snap.stage == "crawl"
    with pytest.raises(AttributeError):
        snap.requests = 0  # type: ignore[misc]


def test_run_started_sets_the_page_total() -> None:
    metrics = make(FakeClock())
    metrics.observe({"event": "run_started", "urls": 7})
    assert metrics.snapshot().pages_total == 7


def test_stage_moves_from_crawl_to_llm_to_write_to_done() -> None:
    metrics = make(FakeClock())
    metrics.set_totals(pages=1, chunks=1)
    assert metrics.snapshot().stage == "crawl"
    metrics.observe({"event": "page_crawled"})
    assert metrics.snapshot().stage == "llm"
    metrics.observe(request())
    assert metrics.snapshot().stage == "write"
    metrics.document_written()
    assert metrics.snapshot().stage == "done"
    metrics.set_totals(chunks=2)
    assert metrics.snapshot().stage == "llm"
    metrics.finish()
    assert metrics.snapshot().stage == "done"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0

    metrics = make(FakeClock())
    assert metrics.snapshot().latency_p50_ms is None
    for latency in reversed(values):
        metrics.observe(request(latency_ms=latency))
    snap = metrics.snapshot()
    assert (snap.latency_p50_ms, snap.latency_p95_ms, snap.latency_p99_ms) == (50, 95, 99)


def test_latency_memory_is_capped_and_still_representative() -> None:
    metrics = make(FakeClock(), max_samples=1000)
    for i in range(50_000):
        metrics.observe(request(latency_ms=float(i % 1000)))
    assert len(metrics._latencies) == 1000
    snap = metrics.snapshot()
    assert snap.requests == 50_000
    assert snap.latency_p50_ms is not None
    assert 400 <= snap.latency_p50_ms <= 600
    assert snap.latency_p99_ms is not None
    assert snap.latency_p99_ms >= 950


def test_rates_use_the_recent_window_and_the_whole_run() -> None:
    clock = FakeClock()
    metrics = make(clock, window_s=10.0)
    for second in range(20):
        clock.now = second + 0.5
        # 1 request/s (100 tokens) for 10 s, then 3 requests/s (each 200 tokens).
        for _ in range(1 if second < 10 else 3):
            metrics.observe(request(tokens=100 if second < 10 else 200, latency_ms=2000.0))
    clock.now = 20.0
    snap = metrics.snapshot()
    assert snap.requests_per_s == pytest.approx(3.0)
    assert snap.tokens_per_s == pytest.approx(600.0)
    assert snap.requests_per_s_overall == pytest.approx(40 / 20)
    assert snap.tokens_per_s_overall == pytest.approx((1000 + 6000) / 20)
    # 40 requests of 2 s each in 20 s of wall time: 4x faster than one at a time.
    assert snap.speedup == pytest.approx(4.0)
    assert snap.latency_sum_s == pytest.approx(80.0)


def test_error_rate_is_recent_and_falls_back_to_overall() -> None:
    clock = FakeClock()
    metrics = make(clock, window_s=10.0)
    for _ in range(3):
        metrics.observe(request(outcome="retry", status=429))
    metrics.observe(request())
    clock.now = 30.0
    metrics.observe(request())
    snap = metrics.snapshot()
    assert snap.error_rate == 0.0  # only the last request is inside the window
    assert snap.error_rate_overall == pytest.approx(3 / 5)
    clock.now = 100.0
    assert metrics.snapshot().error_rate == pytest.approx(3 / 5)


def test_eta_projects_chunks_of_pages_not_yet_crawled() -> None:
    clock = FakeClock()
    metrics = make(clock, window_s=10.0)
    metrics.set_totals(pages=10)
    assert metrics.snapshot().eta_s is None  # nothing known yet
    for _ in range(5):
        metrics.observe({"event": "page_crawled"})
    metrics.set_totals(chunks=10)  # 2 chunks per crawled page
    clock.now = 1.0
    assert metrics.snapshot().eta_s is None  # no throughput yet
    for t in (2.0, 4.0, 6.0, 8.0):
        clock.now = t
        metrics.observe(request())
    clock.now = 10.0
    # Expect 10 + 2 * 5 = 20 chunks; 16 remain at 4 chunks / 10 s.
    assert metrics.snapshot().eta_s == pytest.approx(40.0)
    for _ in range(5):
        metrics.observe({"event": "page_crawled"})
    metrics.set_totals(chunks=20)
    assert metrics.snapshot().eta_s == pytest.approx(40.0)
    metrics.set_totals(chunks=4)
    assert metrics.snapshot().eta_s == 0.0


def test_probes_are_read_at_snapshot_time() -> None:
    state = LimiterState(
        in_flight=3,
        max_concurrent=8,
        effective_limit=5,
        requests_remaining=40,
        requests_limit=500,
        tokens_remaining=None,
        tokens_limit=None,
    )
    metrics = make(FakeClock())
    metrics.observe({"event": "circuit_breaker", "new_state": "open"})
    snap = metrics.snapshot()
    assert (snap.in_flight, snap.limit, snap.breaker_state) == (0, 0, "open")
    breaker = ["closed"]
    metrics.set_limiter_probe(lambda: state)
    metrics.set_breaker_probe(lambda: breaker[0])
    snap = metrics.snapshot()
    assert (snap.in_flight, snap.limit, snap.effective_limit) == (3, 8, 5)
    assert (snap.requests_remaining, snap.requests_limit, snap.tokens_remaining) == (40, 500, None)
    assert snap.breaker_state == "closed"
    breaker[0] = "half_open"
    assert metrics.snapshot().breaker_state == "half_open"


async def test_memory_is_sampled_with_peak() -> None:
    readings = iter([120.0, 300.0, 150.0])
    metrics = RunMetrics(memory_probe=lambda: next(readings))
    for expected_rss in (120.0, 300.0, 150.0):
        await metrics.refresh_memory()
        assert metrics.snapshot().rss_mb == expected_rss
    assert metrics.snapshot().peak_rss_mb == 300.0


def test_default_memory_probe_counts_child_processes() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "b = b'x' * 80_000_000; print('ready', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], 30)[0], "child never allocated"
        assert child.stdout.readline() == b"ready\n"
        own = psutil.Process().memory_info().rss / 2**20
        assert process_tree_rss_mb() - own >= 70
        metrics = RunMetrics()
        metrics.sample_memory()
        snap = metrics.snapshot()
        assert snap.rss_mb >= own + 70
        assert snap.peak_rss_mb >= snap.rss_mb
    finally:
        child.kill()
        child.wait()


def test_metrics_fields_decode_as_the_metrics_event() -> None:
    clock = FakeClock()
    metrics = make(clock)
    metrics.set_totals(pages=2, chunks=3)
    metrics.observe({"event": "page_crawled"})
    clock.now = 2.0
    metrics.observe(request())
    metrics.sample_memory()
    fields = metrics_fields(metrics.snapshot())
    event = msgspec.convert(
        {**fields, "event": "metrics", "timestamp": "t", "level": "info", "run_id": "r"}, Metrics
    )
    assert (event.crawled, event.done, event.total, event.stage) == (1, 1, 3, "crawl")
    assert event.rss_mb == 100.0


async def test_metrics_events_every_interval_at_exact_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    metrics = RunMetrics(memory_probe=lambda: 64.0)
    metrics.set_totals(pages=3, chunks=3)

    def stamp(logger: Any, method: str, event: Any) -> Any:
        event["at"] = trio.current_time()
        return event

    start = trio.current_time()
    with structlog.testing.capture_logs(processors=[stamp]) as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(report_metrics, metrics, interval=5.0))
            await trio.sleep(7)
            metrics.observe(request())
            await trio.sleep(9)  # to 16 s: events at 5, 10 and 15
            nursery.cancel_scope.cancel()
    assert [e["at"] - start for e in logs] == [5.0, 10.0, 15.0]
    assert [e["done"] for e in logs] == [0, 1, 1]
    assert [e["requests_per_s"] for e in logs] == [0.0, 0.1, 0.1]
    for entry in logs:
        fields = {k: v for k, v in entry.items() if k not in ("at", "log_level")}
        msgspec.convert({**fields, "timestamp": "t", "level": "info", "run_id": "r"}, Metrics)


def test_peak_memory_is_the_process_own_not_its_parents() -> None:
    # ru_maxrss survives exec: a CLI started by a big process (the test runner, a script)
    # reported its parent's size as its own peak (343 MB for a 170 MB run under pytest).
    import subprocess
    import sys

    ballast = bytearray(400 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: it is resident
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crawl4ai_llm_docs.observe.memory import own_peak_rss_mb; "
            "print(own_peak_rss_mb())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    del ballast
    assert 0 < float(child.stdout) < 200
