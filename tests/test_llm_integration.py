"""The LLM engine end to end: ChatClient + AdaptiveRateLimiter + CircuitBreaker + llm.stage
against the fake provider, served in the test's own trio loop.

Tests about rate limits and timing run the provider's own ASGI app in process
(`httpx.ASGITransport`) under `autojump_clock`: the provider's buckets and the limiter share
the virtual clock, so what they measure is exact and does not depend on how busy the machine
is. The rest go over real loopback HTTP (hypercorn), in real time, sized to take a few
seconds and asserting nothing about timing. Each test prints what it measured (`pytest -s`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from crawl4ai_llm_docs.cache.results import ResultCache
from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import CircuitBreakerOpenError, ProviderFatalError
from crawl4ai_llm_docs.llm import stage as llm_stage
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.llm.provider.client import ChatClient
from crawl4ai_llm_docs.markdown.chunking import split_chunk
from crawl4ai_llm_docs.markdown.reassemble import reassemble
from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Chunk, ChunkResult
from crawl4ai_llm_docs.testing.provider.app import ProviderApp
from crawl4ai_llm_docs.testing.provider.server import (
    FakeProvider,
    ProviderStats,
    document_digest,
    make_config,
    serve,
)
from crawl4ai_llm_docs.testing.provider.state import ProviderState

pytestmark = pytest.mark.slow


def page_text(index: int, paragraphs: int = 2) -> str:
    body = "\n\n".join(
        f"Paragraph {n} of page {index} explains option {n} in plain words."
        for n in range(paragraphs)
    )
    return f"# Page {index}\n\n{body}\n\n```python\nprint({index})\n```\n"


def make_chunk(index: int, paragraphs: int = 2) -> Chunk:
    text = page_text(index, paragraphs)
    return Chunk(
        page_index=index,
        chunk_index=0,
        chunk_count=1,
        url=f"https://docs.example/page/{index}",
        title=f"Page {index}",
        text=text,
        tokens=count_tokens(text),
    )


class Recording(httpx.AsyncBaseTransport):
    """A transport (the real pooled one by default), noting when each request is handed to it."""

    def __init__(self, connections: int, inner: httpx.AsyncBaseTransport | None = None) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._inner = inner or httpx.AsyncHTTPTransport(limits=limits)
        self.sent_at: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(trio.current_time())
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Run:
    results: list[ChunkResult]
    finished_at: list[float]  # trio time each result reached the collector
    fatal: list[ProviderFatalError]
    stats: ProviderStats
    limiter: AdaptiveRateLimiter
    breaker: CircuitBreaker
    breaker_changes: list[tuple[str, str, str]] = field(default_factory=list)
    fatal_at: float | None = None  # when on_fatal was first called
    sent_at: list[float] = field(default_factory=list)  # when each request left the client

    def steady_rate(self, skip: int) -> float:
        """Results per second after the first `skip` (the burst the bucket started with)."""
        times = sorted(self.finished_at)[skip:]
        return (len(times) - 1) / (times[-1] - times[0])


async def drive(
    provider: dict[str, Any],
    chunks: list[Chunk],
    *,
    guard: float,
    llm: dict[str, Any] | None = None,
    parallel: dict[str, Any] | None = None,
    breaker: dict[str, Any] | None = None,
    cancel_on_fatal: bool = True,
    record_sends: bool = False,
    virtual: bool = False,
) -> Run:
    """Serve a fake provider, push `chunks` through the LLM stage, return what happened.

    `virtual` calls the provider's ASGI app in process instead of over loopback HTTP (for
    tests under `autojump_clock`: no socket I/O, so virtual time is the only time).

    On a fatal error the feed stops; `cancel_on_fatal` also cancels the stage, else requests
    in flight may finish (as the pipeline lets them) and the workers end on the breaker.
    """
    results: list[ChunkResult] = []
    finished_at: list[float] = []
    fatal: list[ProviderFatalError] = []
    changes: list[tuple[str, str, str]] = []
    fatal_at: list[float] = []
    par = ParallelConfig(**(parallel or {}))
    limiter = AdaptiveRateLimiter(
        max_concurrent=par.effective_max_concurrent_requests,
        adaptive=par.enable_adaptive_rate_limiting,
        buffer_percent=par.rate_limit_buffer_percent,
        requests_per_minute=par.requests_per_minute,
        tokens_per_minute=par.tokens_per_minute,
        rng=random.Random(1),
    )
    circuit = CircuitBreaker(
        enabled=par.enable_circuit_breaker,
        threshold_percent=par.error_threshold_percent,
        on_change=lambda *change: changes.append(change),
        **(breaker or {}),
    )
    with trio.fail_after(guard):
        async with trio.open_nursery() as server:
            transport: httpx.AsyncBaseTransport | None = None
            if virtual:
                state = ProviderState(make_config(provider))
                handle = FakeProvider(
                    state, "http://provider.test:80", trio.lowlevel.current_trio_token()
                )
                transport = httpx.ASGITransport(app=ProviderApp(state))
            else:
                handle = await server.start(serve, make_config(provider))
            recording = Recording(par.max_connections_per_host, transport) if record_sends else None
            config = LLMConfig(**{"base_url": handle.base_url, "model": "fake-model"} | (llm or {}))
            client = ChatClient(
                llm=config,
                parallel=par,
                api_key="sk-integration",
                limiter=limiter,
                breaker=circuit,
                rng=random.Random(2),
                transport=recording or transport,
            )
            processor = ChunkProcessor(client=client, cache=ResultCache.disabled(), llm=config)
            chunk_send, chunk_recv = trio.open_memory_channel[Chunk](4)
            result_send, result_recv = trio.open_memory_channel[ChunkResult](4)

            feeding = trio.CancelScope()

            async def feed() -> None:
                with feeding:
                    async with chunk_send:
                        for chunk in chunks:
                            await chunk_send.send(chunk)

            with trio.CancelScope() as work:

                def on_fatal(exc: ProviderFatalError) -> None:
                    fatal.append(exc)
                    fatal_at.append(trio.current_time())
                    feeding.cancel()
                    if cancel_on_fatal:
                        work.cancel()

                async with client, trio.open_nursery() as nursery:
                    nursery.start_soon(feed)
                    nursery.start_soon(
                        partial(
                            llm_stage.run,
                            chunk_recv,
                            result_send,
                            processor=processor,
                            workers=par.effective_max_concurrent_requests,
                            on_fatal=on_fatal,
                        )
                    )
                    async with result_recv:
                        async for result in result_recv:
                            results.append(result)
                            finished_at.append(trio.current_time())
            # Let requests already on the wire land, so the provider's counters are final.
            await trio.sleep(0.3)
            await handle.wait_idle()
            stats = handle.stats()
            server.cancel_scope.cancel()
    return Run(
        results,
        finished_at,
        fatal,
        stats,
        limiter,
        circuit,
        changes,
        fatal_at[0] if fatal_at else None,
        recording.sent_at if recording else [],
    )


def assert_all_cleaned(run: Run, chunks: list[Chunk]) -> None:
    assert not run.fatal
    assert sorted(r.page_index for r in run.results) == [c.page_index for c in chunks]
    failed = [r for r in run.results if r.source != "llm"]
    assert failed == []


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "ietf"])
async def test_advertised_limits_no_429_and_near_full_throughput(
    autojump_clock: trio.testing.MockClock, dialect: str
) -> None:
    rpm, burst, count = 240, 5, 30  # 4 requests/s after the burst: about 6 s
    chunks = [make_chunk(i) for i in range(count)]
    run = await drive(
        {"rpm": rpm, "burst_requests": burst, "header_dialect": dialect, "latency": 0.05},
        chunks,
        guard=40,
        parallel={"max_concurrent_requests": 4},
        virtual=True,
    )
    assert_all_cleaned(run, chunks)
    rate = run.steady_rate(skip=burst)
    share = rate / (rpm / 60)
    print(
        f"\n[{dialect}] requests={run.stats.requests} 429s={run.stats.rate_limited} "
        f"steady={rate:.2f}/s = {share:.1%} of {rpm} RPM"
    )
    assert run.stats.rate_limited == 0
    assert run.stats.requests == count
    assert share >= 0.90
    assert share <= 1.05  # the bucket refills a little while the burst is answered


async def test_no_headers_few_429s(autojump_clock: trio.testing.MockClock) -> None:
    # A provider that advertises nothing (no headers, no Retry-After; only "try again in 1s"
    # in the 429 body), with one second's worth of burst as OpenAI's quantised limits have.
    rpm, burst, count = 1200, 20, 160
    chunks = [make_chunk(i) for i in range(count)]
    run = await drive(
        {"rpm": rpm, "burst_requests": burst, "header_dialect": "none", "latency": 0.1},
        chunks,
        guard=60,
        parallel={"max_concurrent_requests": 4},
        virtual=True,
    )
    assert_all_cleaned(run, chunks)
    share = run.stats.rate_limited / run.stats.requests
    print(
        f"\n[none] requests={run.stats.requests} 429s={run.stats.rate_limited} ({share:.1%}) "
        f"steady={run.steady_rate(skip=burst):.1f}/s of {rpm / 60:.0f}/s"
    )
    assert share <= 0.05


@pytest.mark.parametrize("cap", [230, 240], ids=["under", "exact"])
async def test_no_headers_with_a_static_cap_no_429s(
    autojump_clock: trio.testing.MockClock, cap: int
) -> None:
    # A silent provider, with the user's requests_per_minute at or a little under its limit:
    # the cap alone keeps every request inside the provider's bucket.
    rpm, count = 240, 30
    chunks = [make_chunk(i) for i in range(count)]
    run = await drive(
        {"rpm": rpm, "burst_requests": 10, "header_dialect": "none", "latency": 0.05},
        chunks,
        guard=40,
        parallel={"max_concurrent_requests": 4, "requests_per_minute": cap},
        virtual=True,
        record_sends=True,
    )
    assert_all_cleaned(run, chunks)
    share = run.stats.rate_limited / run.stats.requests
    print(
        f"\n[none, static cap {cap}] requests={run.stats.requests} 429s={run.stats.rate_limited} "
        f"({share:.1%}) steady={run.steady_rate(skip=10):.2f}/s of {rpm / 60:.0f}/s"
    )
    assert run.stats.rate_limited == 0
    # The cap is never exceeded in any 60 s, and the run still goes at about its pace.
    sends = sorted(run.sent_at)
    assert all(len([t for t in sends if s <= t < s + 60]) <= cap for s in sends)
    assert run.steady_rate(skip=10) >= 0.9 * cap / 60


@pytest.mark.parametrize("cancel", [True, False], ids=["cancel", "drain"])
async def test_insufficient_quota_stops_the_stage(
    autojump_clock: trio.testing.MockClock, cancel: bool
) -> None:
    # Paced by advertised limits, so workers also queue for a slot when the quota runs out:
    # those must not send either, even when the stage is left to drain (as the pipeline does).
    concurrency, quota = 4, 10
    chunks = [make_chunk(i) for i in range(40)]
    run = await drive(
        {
            "quota_after": quota,
            "latency": 0.1,
            "latency_jitter": 0.05,
            "rpm": 600,
            "burst_requests": 4,
        },
        chunks,
        guard=20,
        parallel={"max_concurrent_requests": concurrency},
        cancel_on_fatal=cancel,
        record_sends=True,
        virtual=True,
    )
    assert isinstance(run.fatal[0], ProviderFatalError)
    assert "insufficient_quota" in run.fatal[0].message
    print(
        f"\n[quota, {'cancel' if cancel else 'drain'}] requests={run.stats.requests} "
        f"successes={run.stats.successes} refused={run.stats.quota_refused} "
        f"after_fatal={run.stats.requests_after_fatal} 429s={run.stats.rate_limited}"
    )
    # Only requests already on the wire when the first refusal came may arrive after it.
    assert run.stats.requests_after_fatal <= concurrency - 1
    # Requests admitted before the quota ran out still succeed (at most one per worker).
    assert quota <= run.stats.successes <= quota + concurrency - 1
    cleaned = len([r for r in run.results if r.source == "llm"])
    assert run.breaker.snapshot().stopped is not None
    assert run.fatal_at is not None
    # Workers were queued for a slot when the refusal came: none of them sent afterwards.
    assert [t for t in run.sent_at if t > run.fatal_at] == []
    if cancel:  # answers still on their way are dropped with the stage
        assert quota - concurrency < cleaned <= run.stats.successes
    else:  # they arrive; every worker then ends on the stopped breaker, none with a request
        assert cleaned == run.stats.successes
        assert all(isinstance(e, ProviderFatalError) for e in run.fatal)
        answered = run.stats.successes + run.stats.quota_refused + run.stats.rate_limited
        assert (run.stats.requests, run.stats.abandoned) == (answered, 0)


async def test_faults_and_hangs_every_chunk_completes() -> None:
    count = 60
    chunks = [make_chunk(i) for i in range(count)]
    run = await drive(
        {"error_rate": 0.1, "hang_rate": 0.02, "latency": 0.02, "seed": 7},
        chunks,
        guard=90,
        parallel={"max_concurrent_requests": 4, "request_timeout": 1.0},
    )
    assert_all_cleaned(run, chunks)
    injected = run.stats.injected
    print(
        f"\n[faults] requests={run.stats.requests} injected={injected} "
        f"by_status={run.stats.by_status}"
    )
    assert injected.get("error", 0) > 0
    assert injected.get("hang", 0) >= 2  # the timeouts really happened (seed 7: 14th, 42nd)
    assert run.stats.successes == count


async def test_provider_never_sees_more_than_max_concurrent() -> None:
    concurrency = 3
    chunks = [make_chunk(i) for i in range(24)]
    run = await drive(
        {"latency": 0.15, "latency_jitter": 0.1},
        chunks,
        guard=20,
        parallel={"max_concurrent_requests": concurrency},
    )
    assert_all_cleaned(run, chunks)
    print(f"\n[concurrency] max_in_flight={run.stats.max_in_flight} limit={concurrency}")
    assert run.stats.max_in_flight <= concurrency
    assert run.stats.max_in_flight == concurrency  # reached: the check can tell


@pytest.mark.parametrize("pooling", [True, False])
async def test_connections_pooled_or_one_per_request(pooling: bool) -> None:
    connections = 2
    chunks = [make_chunk(i) for i in range(20)]
    run = await drive(
        {"latency": 0.05},
        chunks,
        guard=20,
        parallel={
            "max_concurrent_requests": 4,
            "enable_session_pooling": pooling,
            "max_connections_per_host": connections,
        },
    )
    assert_all_cleaned(run, chunks)
    opened, requests = run.stats.connections_opened, run.stats.requests
    print(f"\n[pooling={pooling}] connections={opened} requests={requests}")
    if pooling:
        assert opened <= connections
        assert run.stats.max_in_flight <= connections  # the pool is the narrower limit here
    else:
        assert opened == requests


async def test_breaker_stops_a_failing_provider_with_few_requests() -> None:
    count, retries = 40, 6
    chunks = [make_chunk(i) for i in range(count)]
    run = await drive(
        {"error_rate": 1.0, "error_codes": [500]},
        chunks,
        guard=30,
        llm={"max_retries": retries},
        parallel={"max_concurrent_requests": 4},
        breaker={"min_calls": 10, "window": 20, "cooldown_s": 0.2, "max_failed_probes": 3},
    )
    assert len(run.fatal) == 1
    assert isinstance(run.fatal[0], CircuitBreakerOpenError)
    transitions = [(old, new) for old, new, _ in run.breaker_changes]
    print(
        f"\n[breaker] requests={run.stats.requests} (chunks x attempts = "
        f"{count * (retries + 1)}) transitions={transitions}"
    )
    assert transitions[0] == ("closed", "open")
    assert transitions.count(("open", "half-open")) == 3  # three probes, then stop
    assert transitions[-1] == ("half-open", "open")
    # min_calls failures, the requests already in flight when it opened, and the probes.
    assert run.stats.requests <= 10 + 3 + 3
    assert run.stats.requests < count * (retries + 1) / 10


async def test_context_limit_splits_and_reassembles_in_order() -> None:
    chunk = make_chunk(7, paragraphs=40)
    assert chunk.tokens > 400
    run = await drive(
        {"context_limit": 1000},
        [chunk],
        guard=20,
        llm={"max_tokens": 500, "chunk_min_tokens": 64, "chunk_max_tokens": 2000},
    )
    assert not run.fatal
    [result] = run.results
    print(
        f"\n[split] chunk tokens={chunk.tokens} requests={run.stats.requests} "
        f"by_status={run.stats.by_status} answered={len(run.stats.documents)}"
    )
    halves = split_chunk(chunk, min_tokens=64)
    assert halves is not None
    assert result.source == "llm"
    assert run.stats.by_status == {400: 1, 200: 2}  # the whole chunk refused, its halves answered
    # The provider answered the halves in order, and they went back together in that order.
    assert run.stats.documents == [document_digest(half.text) for half in halves]
    assert result.markdown == "\n\n".join(half.text.strip() for half in halves)
    assert reassemble([result]).split() == chunk.text.split()  # every word, in order


async def test_retries_exhausted_keep_the_crawled_markdown() -> None:
    chunks = [make_chunk(i) for i in range(3)]
    run = await drive(
        {"error_rate": 1.0, "error_codes": [500]},
        chunks,
        guard=20,
        llm={"max_retries": 1},
        parallel={"enable_circuit_breaker": False},
    )
    assert not run.fatal  # one chunk's failure is not the run's
    assert run.stats.requests == 3 * 2
    by_page = {r.page_index: r for r in run.results}
    for chunk in chunks:
        result = by_page[chunk.page_index]
        assert (result.source, result.llm_failed, result.markdown) == ("fallback", True, chunk.text)
        assert result.warning is not None
        assert "gave up after 2 attempts" in result.warning


async def test_chunk_too_large_to_split_keeps_the_crawled_markdown() -> None:
    chunk = make_chunk(3, paragraphs=3)
    assert chunk.tokens < 2 * 64  # no cut leaves both halves chunk_min_tokens
    run = await drive(
        {"context_limit": 100},
        [chunk],
        guard=20,
        llm={"max_tokens": 64, "chunk_min_tokens": 64},
    )
    [result] = run.results
    assert run.stats.requests == 1
    assert (result.source, result.llm_failed, result.markdown) == ("fallback", True, chunk.text)
    assert result.warning is not None
    assert "cannot be split further" in result.warning
