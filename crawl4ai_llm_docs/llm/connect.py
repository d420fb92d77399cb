"""Everything a request to the provider goes through, built once per run.

The adaptive rate limiter and the circuit breaker (both reporting to the log and the metrics),
the pooled ``ChatClient`` that waits on them, and the result cache its answers go to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from crawl4ai_llm_docs.cache.results import ResultCache
from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.concurrency import QueueAwareLimit
from crawl4ai_llm_docs.llm.limits.concurrency import attach as attach_queue_limit
from crawl4ai_llm_docs.llm.limits.concurrency import log_change as _on_queue_limit
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter, WaitEvent
from crawl4ai_llm_docs.llm.provider.client import ChatClient
from crawl4ai_llm_docs.observe.metrics import RunMetrics

log = structlog.get_logger()


def _on_wait(event: WaitEvent) -> None:
    log.info(
        "rate_limit",
        reason=event.reason,
        wait_s=round(event.wait_s, 3),
        remaining=event.remaining,
        reset_s=event.reset_s,
        effective_concurrency=event.effective_concurrency,
    )


def _on_breaker(old: str, new: str, reason: str) -> None:
    log.warning("circuit_breaker", old_state=old, new_state=new, reason=reason)


@asynccontextmanager
async def open_client(
    config: AppConfig, max_concurrent: int, metrics: RunMetrics
) -> AsyncIterator[tuple[ChatClient, ResultCache]]:
    """The run's client (closed on exit) and result cache, temp files of a killed run swept."""
    par = config.parallel
    limiter = AdaptiveRateLimiter(
        max_concurrent=max_concurrent,
        adaptive=par.enable_adaptive_rate_limiting,
        buffer_percent=par.rate_limit_buffer_percent,
        requests_per_minute=par.requests_per_minute,
        tokens_per_minute=par.tokens_per_minute,
        on_wait=_on_wait,
    )
    breaker = CircuitBreaker(
        enabled=par.enable_circuit_breaker,
        threshold_percent=par.error_threshold_percent,
        on_change=_on_breaker,
    )
    # Inside the AIMD cap: notices a server that queues requests instead of running them.
    queue_limit = QueueAwareLimit(
        max_limit=max_concurrent,
        enabled=par.queue_aware_concurrency and par.enable_adaptive_rate_limiting,
        on_change=_on_queue_limit,
    )
    metrics.set_limiter_probe(attach_queue_limit(limiter, queue_limit))
    metrics.set_breaker_probe(lambda: breaker.state)
    client = ChatClient(
        llm=config.llm,
        parallel=par,
        api_key=config.api_key(),
        limiter=limiter,
        breaker=breaker,
        stream=config.llm.stream,
        queue_limit=queue_limit,
        on_tokens=metrics.stream_tokens,
    )
    cache = ResultCache(config.cache_directory()) if config.output.cache else ResultCache.disabled()
    await cache.sweep()  # temp files a killed run left mid-write
    async with client:
        yield client, cache
