"""Run metrics: the one source of truth for the ``metrics`` events, the live view and the summary.

``RunMetrics`` is fed by the logging processor (``observe(event_dict)`` for every event), by
probes the pipeline registers (limiter and breaker state, read when a snapshot is taken) and by
``set_totals`` / ``document_written``. Memory stays flat in the number of URLs: counters, a
sliding window of recent requests and a capped latency reservoir.

Counting rules (the pipeline and the stages rely on them):

- a page is *crawled* on ``page_crawled`` and *failed* on ``page_failed``; ``run_started``
  sets the page total unless ``set_totals(pages=...)`` did;
- a chunk is *done* on ``chunk_cached`` or on an ``llm_request`` whose outcome is ``ok`` or
  ``failed`` (given up; the raw text is kept); ``unfaithful_retry`` (a rejected answer's
  replacement arrived) takes one back, so a chunk asked twice counts once. A ``split`` adds chunks through
  ``set_totals``;
- an LLM request is an *error* when its outcome is not ``ok`` or ``split``; 429 responses are
  counted from ``llm_request`` statuses.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.observe.events import Stage
from crawl4ai_llm_docs.observe.memory import own_peak_rss_mb, process_tree_rss_mb
from crawl4ai_llm_docs.observe.snapshot import (
    Counts,
    DiscoveryView,
    LimiterState,
    LimiterView,
    MetricsSnapshot,
)

# The snapshot types are part of this module's interface.
__all__ = [
    "Counts",
    "DiscoveryView",
    "LimiterState",
    "LimiterView",
    "MetricsSnapshot",
    "RunMetrics",
    "log_metrics",
    "metrics_fields",
    "percentile",
    "process_tree_rss_mb",
    "report_metrics",
]

_DONE_OUTCOMES = frozenset({"ok", "failed"})
_OK_OUTCOMES = frozenset({"ok", "split"})


class _Request(msgspec.Struct, frozen=True, array_like=True):
    at: float
    tokens: int
    error: bool


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when empty."""
    if not sorted_values:
        return None
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


class RunMetrics:
    """Thread-safe: events may come from worker threads, the live view renders from Rich's."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        window_s: float = 10.0,
        max_samples: int = 10_000,
        memory_probe: Callable[[], float] | None = None,
        seed: int = 0,
    ) -> None:
        self._clock = clock
        self._window_s = window_s
        self._max_samples = max_samples
        self._memory_probe = memory_probe
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._start: float | None = None
        self._last_now = 0.0
        self._limiter_probe: Callable[[], LimiterView] | None = None
        self._breaker_probe: Callable[[], str] | None = None
        self._breaker_state = "closed"
        self._finished = False
        self._pages_total_set = False
        self._c = Counts()
        self._batch = ""
        self._latencies: list[float] = []  # reservoir: every sample up to max_samples
        self._latency_count = 0
        self._recent: deque[_Request] = deque()  # requests inside the window
        self._recent_done: deque[float] = deque()  # chunk completions inside the window
        self._recent_stream: deque[tuple[float, int]] = deque()  # streamed answer tokens
        self._rss_mb = 0.0
        self._peak_rss_mb = 0.0

    # ------------------------------------------------------------ time

    def _now(self) -> float:
        if self._clock is None:
            # Bound on first use so all readings come from one clock: trio's (virtual under
            # autojump_clock in tests) when first used inside trio, else the monotonic clock.
            try:
                trio.current_time()
                self._clock = trio.current_time
            except RuntimeError:
                self._clock = time.monotonic
        try:
            now = self._clock()
        except RuntimeError:
            now = self._last_now  # trio's clock read from a non-trio thread
        self._last_now = max(now, self._last_now)
        if self._start is None:
            self._start = self._last_now
        return self._last_now

    def start(self) -> None:
        """Mark the start of the run (otherwise the first event or snapshot does)."""
        with self._lock:
            self._start = None
            self._now()

    # ------------------------------------------------------------ feeds

    def set_limiter_probe(self, probe: Callable[[], LimiterView]) -> None:
        self._limiter_probe = probe

    def set_breaker_probe(self, probe: Callable[[], str]) -> None:
        self._breaker_probe = probe

    _discovery_probe: Callable[[], DiscoveryView] | None = None

    def set_discovery_probe(self, probe: Callable[[], DiscoveryView]) -> None:
        """Discovery's counts, read with every snapshot (runs started from root URLs)."""
        self._discovery_probe = probe

    def set_totals(self, *, pages: int | None = None, chunks: int | None = None) -> None:
        with self._lock:
            self._now()  # the first call anchors the start of the run
            if pages is not None:
                self._c.pages_total = pages
                self._pages_total_set = True
            if chunks is not None:
                self._c.chunks_total = chunks

    def set_removed(self, count: int) -> None:
        """Pages the previous run of the same output had and this one does not."""
        with self._lock:
            self._c.pages_removed = count

    def stream_tokens(self, count: int) -> None:
        """Answer tokens that just streamed in (estimated), for the live tokens/s."""
        with self._lock:
            now, recent = self._now(), self._recent_stream
            if recent and now - recent[-1][0] < 0.25:  # a bucket per quarter second: bounded
                recent[-1] = (recent[-1][0], recent[-1][1] + count)
            else:
                recent.append((now, count))

    def document_written(self, count: int = 1) -> None:
        with self._lock:
            self._c.documents_written += count

    def finish(self) -> None:
        """The run is over: the stage reads ``done`` from now on."""
        with self._lock:
            self._finished = True

    def observe(self, event: Mapping[str, Any]) -> None:
        """Count one log event (called by the logging processor for every event)."""
        name = event.get("event")
        with self._lock:
            now = self._now()
            c = self._c
            if name == "llm_request":
                self._observe_request(event, now)
            elif name == "page_crawled":
                c.pages_crawled += 1
                freshness = event.get("freshness")
                if freshness == "new":
                    c.pages_new += 1
                elif freshness == "changed":
                    c.pages_changed += 1
                elif freshness == "unchanged":
                    c.pages_unchanged += 1
            elif name == "page_failed":
                c.pages_failed += 1
            elif name == "chunk_cached":
                c.chunks_cached += 1
                self._chunk_done(now)
            elif name == "retry":
                c.retries += 1
            elif name == "rate_limit" and event.get("reason") != "concurrency":
                # Queueing for a free slot is normal; only budget and 429 waits are rate limits.
                c.rate_limit_waits += 1
                c.rate_limit_wait_s += _number(event.get("wait_s"))
            elif name == "circuit_breaker":
                self._breaker_state = str(event.get("new_state", self._breaker_state))
            elif name == "faithfulness_fallback":
                c.fallbacks += 1
            elif name == "unfaithful_retry" and c.chunks_done:
                # The chunk was counted done for its rejected answer, and again for this one.
                c.chunks_done -= 1
            elif name == "batch_result":
                c.prompt_tokens += int(_number(event.get("prompt_tokens")))
                c.completion_tokens += int(_number(event.get("completion_tokens")))
                self._chunk_done(now)
            elif name == "batch_progress":
                self._batch = (
                    f"{event.get('batch_id')} {event.get('status')} "
                    f"{event.get('completed')}/{event.get('total')} done, "
                    f"{event.get('failed')} failed"
                )
            elif name == "run_started" and not self._pages_total_set:
                c.pages_total = int(_number(event.get("urls")))

    def _observe_request(self, event: Mapping[str, Any], now: float) -> None:
        c = self._c
        outcome = event.get("outcome")
        prompt = int(_number(event.get("prompt_tokens")))
        completion = int(_number(event.get("completion_tokens")))
        error = outcome not in _OK_OUTCOMES
        latency = _number(event.get("latency_ms"))
        c.requests += 1
        c.request_errors += error
        c.rate_limited += event.get("status") == 429
        c.prompt_tokens += prompt
        c.completion_tokens += completion
        c.latency_sum_s += latency / 1000
        self._recent.append(_Request(now, prompt + completion, error))
        self._add_latency(latency)
        if outcome in _DONE_OUTCOMES:
            self._chunk_done(now)

    def _chunk_done(self, now: float) -> None:
        self._c.chunks_done += 1
        self._recent_done.append(now)

    def _add_latency(self, latency: float) -> None:
        # Reservoir sampling (Algorithm R): exact below the cap, a uniform sample above it.
        self._latency_count += 1
        if len(self._latencies) < self._max_samples:
            self._latencies.append(latency)
            return
        slot = self._random.randrange(self._latency_count)
        if slot < self._max_samples:
            self._latencies[slot] = latency

    # ------------------------------------------------------------ memory

    async def refresh_memory(self) -> None:
        """Sample RSS; psutil scans /proc for children, so off the trio thread by default."""
        if self._memory_probe is not None:
            self.record_rss(self._memory_probe())
        else:
            self.record_rss(await trio.to_thread.run_sync(process_tree_rss_mb))

    def sample_memory(self) -> None:
        """Synchronous ``refresh_memory`` for code outside trio (e.g. the final summary)."""
        self.record_rss((self._memory_probe or process_tree_rss_mb)())

    def record_rss(self, rss_mb: float) -> None:
        with self._lock:
            self._rss_mb = rss_mb
            peak = rss_mb if self._memory_probe is not None else max(rss_mb, own_peak_rss_mb())
            self._peak_rss_mb = max(self._peak_rss_mb, peak)

    # ------------------------------------------------------------ snapshot

    def _counts(self) -> dict[str, Any]:
        counts = msgspec.structs.asdict(self._c)
        counts["chunks_total"] = max(self._c.chunks_total, self._c.chunks_done)
        return counts

    def with_progress(self, snapshot: MetricsSnapshot) -> MetricsSnapshot:
        """``snapshot`` with the current counts: cheap, reads no clock or probe.

        The live view redraws its bars with this several times a second (from Rich's refresh
        thread) while the rates keep the values of the last full snapshot.
        """
        with self._lock:
            return msgspec.structs.replace(snapshot, **self._counts())

    def snapshot(self) -> MetricsSnapshot:
        limiter = self._limiter_probe() if self._limiter_probe else None
        breaker = self._breaker_probe() if self._breaker_probe else None
        limiter = limiter or LimiterState()
        with self._lock:
            now = self._now()
            c = self._c
            elapsed = now - (self._start if self._start is not None else now)
            horizon = now - self._window_s
            while self._recent and self._recent[0].at <= horizon:
                self._recent.popleft()
            while self._recent_done and self._recent_done[0] <= horizon:
                self._recent_done.popleft()
            while self._recent_stream and self._recent_stream[0][0] <= horizon:
                self._recent_stream.popleft()
            span = min(self._window_s, elapsed)
            recent = len(self._recent)
            recent_errors = sum(r.error for r in self._recent)
            overall_errors = c.request_errors / c.requests if c.requests else 0.0
            latencies = sorted(self._latencies)
            return MetricsSnapshot(
                **self._counts(),
                in_flight=limiter.in_flight,
                limit=limiter.max_concurrent,
                effective_limit=limiter.effective_limit,
                requests_remaining=limiter.requests_remaining,
                requests_limit=limiter.requests_limit,
                tokens_remaining=limiter.tokens_remaining,
                tokens_limit=limiter.tokens_limit,
                elapsed_s=elapsed,
                stage=self._stage(),
                requests_per_s=_per(recent, span),
                requests_per_s_overall=_per(c.requests, elapsed),
                tokens_per_s=_per(sum(r.tokens for r in self._recent), span),
                tokens_per_s_overall=_per(c.prompt_tokens + c.completion_tokens, elapsed),
                streaming_tokens_per_s=_per(sum(n for _, n in self._recent_stream), span),
                error_rate=recent_errors / recent if recent else overall_errors,
                error_rate_overall=overall_errors,
                latency_p50_ms=percentile(latencies, 50),
                latency_p95_ms=percentile(latencies, 95),
                latency_p99_ms=percentile(latencies, 99),
                speedup=c.latency_sum_s / elapsed if elapsed > 0 and c.requests else None,
                eta_s=self._eta(span),
                breaker_state=breaker or self._breaker_state,
                rss_mb=self._rss_mb,
                peak_rss_mb=max(self._peak_rss_mb, self._rss_mb),
                batch=self._batch,
                discovery=self._discovery_probe() if self._discovery_probe else None,
            )

    def _stage(self) -> Stage:
        c = self._c
        if self._finished:
            return "done"
        if not self._pages_total_set and not c.pages_total:
            return "crawl"
        if c.pages_crawled + c.pages_failed < c.pages_total:
            return "crawl"
        if c.chunks_done < c.chunks_total:
            return "llm"
        if c.documents_written < c.pages_total - c.pages_failed:
            return "write"
        return "done"

    def _eta(self, span: float) -> float | None:
        """Remaining chunks / recent chunk throughput; None until both are known."""
        c = self._c
        if not c.pages_total or not c.pages_crawled or not c.chunks_total or span <= 0:
            return None
        expected = float(c.chunks_total)
        not_crawled = c.pages_total - c.pages_crawled - c.pages_failed
        if not_crawled > 0:
            # Pages still to crawl will bring about as many chunks as the crawled ones did.
            expected += c.chunks_total / c.pages_crawled * not_crawled
        remaining = expected - c.chunks_done
        if remaining <= 0:
            return 0.0
        if not self._recent_done:
            return None
        return remaining / (len(self._recent_done) / span)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _per(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else 0.0


def metrics_fields(snapshot: MetricsSnapshot) -> dict[str, Any]:
    """Exactly the ``Metrics`` event fields, minus those the logging processors add."""
    return {
        "stage": snapshot.stage,
        "crawled": snapshot.pages_attempted,
        "done": snapshot.chunks_done,
        "total": snapshot.chunks_total,
        "in_flight": snapshot.in_flight,
        "limit": snapshot.limit,
        "effective_limit": snapshot.effective_limit,
        "requests_per_s": round(snapshot.requests_per_s, 3),
        "tokens_per_s": round(snapshot.tokens_per_s, 1),
        "error_rate": round(snapshot.error_rate, 4),
        "rate_limited": snapshot.rate_limited,
        "rss_mb": round(snapshot.rss_mb, 1),
        "eta_s": None if snapshot.eta_s is None else round(snapshot.eta_s, 1),
    } | _discovery_fields(snapshot.discovery)


def _discovery_fields(view: DiscoveryView | None) -> dict[str, Any]:
    if view is None:
        return {}
    fields = ("discovered", "queued", "excluded", "blocked")
    return {f"discovery_{name}": getattr(view, name) for name in fields}


def log_metrics(metrics: RunMetrics) -> MetricsSnapshot:
    """Emit one ``metrics`` event now (e.g. a final one after the stages finished)."""
    snapshot = metrics.snapshot()
    structlog.get_logger().info("metrics", **metrics_fields(snapshot))
    return snapshot


async def report_metrics(
    metrics: RunMetrics,
    *,
    interval: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Emit a ``metrics`` event every ``interval`` seconds until cancelled."""
    deadline = trio.current_time() + interval
    task_status.started()
    while True:
        # sleep_until on a fixed grid: no drift from the time spent emitting.
        await trio.sleep_until(deadline)
        deadline += interval
        await metrics.refresh_memory()
        log_metrics(metrics)
