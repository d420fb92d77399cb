"""What a metrics snapshot holds: running counts, the limiter's view and the derived rates.

``RunMetrics`` (``observe/metrics.py``) keeps the counts and builds snapshots; the live view,
the ``metrics`` events and the run summary read them.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from crawl4ai_llm_docs.observe.events import Stage


class LimiterView(Protocol):
    """What the limiter probe returns; ``llm.ratelimit.LimiterSnapshot`` has this shape."""

    @property
    def in_flight(self) -> int: ...
    @property
    def max_concurrent(self) -> int: ...  # configured maximum concurrency
    @property
    def effective_limit(self) -> int: ...  # the adaptive limit in force now
    @property
    def requests_remaining(self) -> int | None: ...  # provider headroom, from headers
    @property
    def requests_limit(self) -> int | None: ...
    @property
    def tokens_remaining(self) -> int | None: ...
    @property
    def tokens_limit(self) -> int | None: ...


class LimiterState(msgspec.Struct, frozen=True, kw_only=True):
    """A plain ``LimiterView`` (for tests and for limiters without a snapshot of their own)."""

    in_flight: int = 0
    max_concurrent: int = 0
    effective_limit: int = 0
    requests_remaining: int | None = None
    requests_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_limit: int | None = None


class Counts(msgspec.Struct, kw_only=True):
    """The running totals (``RunMetrics`` keeps a mutable one; a snapshot holds a copy)."""

    pages_total: int = 0
    pages_crawled: int = 0
    pages_failed: int = 0
    pages_new: int = 0  # refresh: against the previous run's copy (page_state.py)
    pages_changed: int = 0
    pages_unchanged: int = 0
    pages_removed: int = 0  # in the previous run of the same output, not in this one
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_cached: int = 0
    documents_written: int = 0
    requests: int = 0
    request_errors: int = 0
    rate_limited: int = 0  # HTTP 429 responses
    rate_limit_waits: int = 0
    rate_limit_wait_s: float = 0.0
    retries: int = 0
    fallbacks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_sum_s: float = 0.0  # what the same requests would take one after another


class DiscoveryView(msgspec.Struct, frozen=True, kw_only=True):
    """Discovery's counts, for runs started from root URLs (``discover.engine`` fills it)."""

    discovered: int = 0  # distinct URLs in scope found
    queued: int = 0  # waiting to be crawled
    crawled: int = 0
    excluded: int = 0  # out of scope, excluded, duplicates, noindex, broken links
    blocked: int = 0  # disallowed by robots.txt
    listed: int = 0
    out_of_scope: int = 0  # links to elsewhere: only counted
    # In-scope URLs not listed, by kind (discover/ledger.py): skip_rule, robots, noindex ...
    left_out: dict[str, int] = msgspec.field(default_factory=dict)

    def report(self) -> dict[str, object]:
        """The run report's ``discovery`` section."""
        return {
            "listed": self.listed,
            "crawled": self.crawled,
            "discovered": self.discovered,
            "left_out": dict(self.left_out),
            "out_of_scope": self.out_of_scope,
        }


# msgspec allows a frozen subclass of a mutable struct; mypy's dataclass model does not.
class MetricsSnapshot(Counts, frozen=True, kw_only=True):  # type: ignore[misc]
    in_flight: int  # from the limiter probe; zero (None) without one
    limit: int  # LimiterView.max_concurrent
    effective_limit: int
    requests_remaining: int | None
    requests_limit: int | None
    tokens_remaining: int | None
    tokens_limit: int | None
    elapsed_s: float
    stage: Stage
    requests_per_s: float  # over the recent window
    requests_per_s_overall: float
    tokens_per_s: float  # over the recent window
    tokens_per_s_overall: float
    error_rate: float  # recent window; overall while the window is empty
    error_rate_overall: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    speedup: float | None  # latency_sum_s / wall time
    eta_s: float | None
    breaker_state: str
    rss_mb: float
    peak_rss_mb: float
    batch: str = ""  # batch mode: the latest batch_progress, e.g. "batch_1 in_progress 12/28"
    discovery: DiscoveryView | None = None  # only when pages are discovered from root URLs
    streaming_tokens_per_s: float = 0.0  # answer tokens arriving in streams, recent window

    @property
    def pages_attempted(self) -> int:
        return self.pages_crawled + self.pages_failed

    @property
    def documents_expected(self) -> int:
        return max(self.pages_total - self.pages_failed, 0)
