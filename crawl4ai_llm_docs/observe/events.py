"""The JSON event contract: one struct per event written by ``--log-json``.

Every line of the JSON log decodes into exactly one of these (tagged by ``event``); unknown or
missing fields are errors, so a change here is a change of the documented contract (README,
"JSON events"). Stages log these events through structlog with exactly these fields.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="event"):
    timestamp: str  # ISO 8601, UTC
    level: str
    run_id: str


class RunStarted(Event, tag="run_started"):
    version: str
    urls: int
    config: dict[str, Any]  # effective configuration, redacted


class PageCrawled(Event, tag="page_crawled"):
    url: str
    mode: str  # "http" | "browser"
    status: int | None
    elapsed_ms: float
    bytes: int
    title: str
    freshness: str | None = None  # "new" | "changed" | "unchanged"; None without a cache
    # Markdown first: where the page's Markdown came from ("html": converted from the HTML;
    # "markdown": the site's own), and why a Markdown the page offered was not used.
    source_format: str = "html"
    markdown_problem: str | None = None


class PageFailed(Event, tag="page_failed"):
    url: str
    mode: str
    status: int | None
    elapsed_ms: float
    bytes: int
    reason: str


class BrowserStarted(Event, tag="browser_started"):
    executable: str
    pid: int
    profile: str  # throwaway user-data directory, removed when the browser stops


class BrowserStopped(Event, tag="browser_stopped"):
    pid: int


class LLMRequest(Event, tag="llm_request"):
    url: str
    chunk: int
    attempt: int
    status: int | None  # HTTP status; None when no response (timeout, connection error)
    outcome: str  # "ok" | "retry" | "split" | "fatal" | "failed"
    latency_ms: float
    queued_ms: float  # time spent waiting for limiter/breaker before sending
    prompt_tokens: int
    completion_tokens: int
    first_token_ms: float | None = None  # streamed answers: time to the first token


class ChunkCached(Event, tag="chunk_cached"):
    url: str
    chunk: int


class FaithfulnessFallback(Event, tag="faithfulness_fallback"):
    url: str
    chunk: int
    reason: str


class UnfaithfulRetry(Event, tag="unfaithful_retry"):
    """An answer failed the faithfulness check and the chunk was asked again at temperature
    0; logged when the new answer arrives (progress counts the chunk once)."""

    url: str
    chunk: int
    attempt: int  # 1 for the first retry
    reason: str  # why the previous answer was rejected


class RateLimit(Event, tag="rate_limit"):
    reason: str
    wait_s: float
    remaining: int | None
    reset_s: float | None
    effective_concurrency: int


class CircuitBreaker(Event, tag="circuit_breaker"):
    old_state: str
    new_state: str
    reason: str


class Retry(Event, tag="retry"):
    url: str
    reason: str
    delay_s: float
    attempt: int


class Metrics(Event, tag="metrics"):
    stage: str  # "crawl" | "llm" | "write" | "done"
    crawled: int
    done: int
    total: int
    in_flight: int
    limit: int
    effective_limit: int
    requests_per_s: float
    tokens_per_s: float
    error_rate: float
    rate_limited: int
    rss_mb: float
    eta_s: float | None
    # Only in runs started from root URLs (discovery).
    discovery_discovered: int | None = None
    discovery_queued: int | None = None
    discovery_excluded: int | None = None
    discovery_blocked: int | None = None


class RunFinished(Event, tag="run_finished"):
    exit_code: int
    wall_s: float
    pages: int
    documents: int
    failed_pages: int
    requests: int
    cached_chunks: int
    retries: int
    rate_limited: int
    prompt_tokens: int
    completion_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    peak_rss_mb: float
    outputs: list[str]
    incomplete: bool
    # Against the previous run (refresh, page_state.py); all 0 with --no-cache.
    new_pages: int = 0
    changed_pages: int = 0
    unchanged_pages: int = 0
    removed_pages: int = 0


class BatchCreated(Event, tag="batch_created"):
    batch_id: str
    lines: int
    round: int  # 1 for first sends, higher for lines sent again


class BatchResumed(Event, tag="batch_resumed"):
    batch_id: str | None  # None: uploaded, the batch itself not yet created
    lines: int


class BatchProgress(Event, tag="batch_progress"):
    batch_id: str
    status: str  # validating | in_progress | finalizing | completed | expired | cancelling | ...
    completed: int
    failed: int
    total: int
    elapsed_s: float  # since the input file was uploaded


class BatchFinished(Event, tag="batch_finished"):
    batch_id: str
    status: str
    completed: int
    failed: int


class BatchResult(Event, tag="batch_result"):
    url: str
    chunk: int
    source: str  # "llm" | "fallback" | ... as in ChunkResult.source
    prompt_tokens: int
    completion_tokens: int


class IndexUpdated(Event, tag="index_updated"):
    path: str  # the docs index file
    docs_set: str
    new_pages: int
    changed_pages: int
    unchanged_pages: int
    removed_pages: int  # left the set: no source of it lists them any more
    sections: int  # sections written (of new and changed pages)


class Warning_(Event, tag="warning"):
    message: str


class Error(Event, tag="error"):
    message: str


AnyEvent = (
    RunStarted
    | PageCrawled
    | PageFailed
    | BrowserStarted
    | BrowserStopped
    | LLMRequest
    | ChunkCached
    | FaithfulnessFallback
    | UnfaithfulRetry
    | RateLimit
    | CircuitBreaker
    | Retry
    | Metrics
    | RunFinished
    | BatchCreated
    | BatchResumed
    | BatchProgress
    | BatchFinished
    | BatchResult
    | IndexUpdated
    | Warning_
    | Error
)

EVENT_NAMES: tuple[str, ...] = tuple(
    str(cls.__struct_config__.tag)
    for cls in (
        RunStarted,
        PageCrawled,
        PageFailed,
        BrowserStarted,
        BrowserStopped,
        LLMRequest,
        ChunkCached,
        FaithfulnessFallback,
        UnfaithfulRetry,
        RateLimit,
        CircuitBreaker,
        Retry,
        Metrics,
        RunFinished,
        BatchCreated,
        BatchResumed,
        BatchProgress,
        BatchFinished,
        BatchResult,
        IndexUpdated,
        Warning_,
        Error,
    )
)

_decoder = msgspec.json.Decoder(AnyEvent)


def decode_event(line: bytes | str) -> AnyEvent:
    """Decode one JSON log line strictly (unknown or missing fields raise)."""
    event: AnyEvent = _decoder.decode(line)
    return event


Stage = Literal["crawl", "llm", "write", "done"]
