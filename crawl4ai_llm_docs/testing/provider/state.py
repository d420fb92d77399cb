"""State of one running fake provider: live config, buckets, random source and counters.

Everything is touched only from the server's trio loop (other threads hop onto it through
`FakeProvider`), so there are no locks.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from crawl4ai_llm_docs.testing.provider.config import ProviderConfig, merge_config
from crawl4ai_llm_docs.testing.provider.limits import RateLimits


class ProviderStats(msgspec.Struct, kw_only=True):
    """Counters over `/v1/chat/completions` since start or the last reset (JSON at `/_stats`).

    A success is a well-formed 200 answer; injected faults and abandoned requests are not.
    """

    requests: int = 0
    successes: int = 0
    by_status: dict[int, int] = msgspec.field(default_factory=dict)  # every response started
    rate_limited: int = 0  # 429 rate_limit_exceeded (quota refusals are counted apart)
    quota_refused: int = 0
    requests_after_fatal: int = 0  # arrived after the first insufficient_quota answer
    injected: dict[str, int] = msgspec.field(default_factory=dict)  # fault name -> count
    abandoned: int = 0  # client left before the whole answer was sent (queued, waiting, mid-stream)
    in_flight: int = 0
    max_in_flight: int = 0
    connections_opened: int = 0  # distinct client (host, port) pairs seen on /v1/*
    prompt_tokens: int = 0  # of successful answers
    completion_tokens: int = 0
    # document_digest of each successfully answered <document>, in request arrival order.
    documents: list[str] = msgspec.field(default_factory=list)
    first_request_at: float | None = None  # unix seconds
    last_request_at: float | None = None
    # Slots and streaming (see ProviderConfig.slots / streaming).
    streamed: int = 0  # successful answers sent as an event stream
    queued: int = 0  # requests that waited for a free slot
    max_serving: int = 0  # most requests served at once (at most `slots`)
    abandoned_queued: int = 0  # of `abandoned`: the client left while waiting for a slot
    # Seconds of slot time spent on answers the client left before they were complete.
    abandoned_work_s: float = 0.0
    # Requests refused for a response_format this server does not take (structured_output).
    format_refused: int = 0
    loops: int = 0  # looping answers sent (ProviderConfig.loop_first)


class ProviderState:
    """Live config, buckets, random source and stats of one running provider."""

    def __init__(
        self,
        config: ProviderConfig,
        clock: Callable[[], float] = trio.current_time,
        wall_offset: float | None = None,  # wall clock - `clock` (None: the system's)
    ):
        self._clock = clock
        self.config = config
        self.rng = random.Random(config.seed)
        self.limits = RateLimits(config, clock(), wall_offset)
        self.stats = ProviderStats()
        self.fatal = False
        self._clients: set[tuple[str, int]] = set()
        self._ids = itertools.count(1)
        self._document_arrivals: list[int] = []  # parallel to stats.documents, kept sorted
        self.idle = trio.Event()
        self.idle.set()
        self.slots = trio.CapacityLimiter(config.slots or math.inf)
        self.serving = 0

    def now(self) -> float:
        return self._clock()

    def update(self, changes: dict[str, Any]) -> ProviderConfig:
        config = merge_config(self.config, changes)
        if config.seed != self.config.seed:
            self.rng.seed(config.seed)
        self.limits.reconfigure(config, self.now())
        self.slots.total_tokens = config.slots or math.inf
        self.config = config
        return config

    def reset(self) -> None:
        """Zero the counters, refill the buckets and restart the random sequence."""
        in_flight = self.stats.in_flight  # a live gauge; requests still running will decrement it
        self.stats = ProviderStats(in_flight=in_flight, max_in_flight=in_flight)
        self.limits = RateLimits(self.config, self.now(), self.limits.wall_offset)
        self.rng.seed(self.config.seed)
        self.fatal = False
        self._clients.clear()
        self._document_arrivals.clear()

    def snapshot(self) -> ProviderStats:
        return msgspec.json.decode(msgspec.json.encode(self.stats), type=ProviderStats)

    def saw_client(self, client: tuple[str, int] | None) -> None:
        if client is not None and client not in self._clients:
            self._clients.add(client)
            self.stats.connections_opened += 1

    def record_document(self, arrival: int, digest: str) -> None:
        """Insert by arrival (not completion) order: with jittered latency the two differ."""
        index = bisect.bisect(self._document_arrivals, arrival)
        self._document_arrivals.insert(index, arrival)
        self.stats.documents.insert(index, digest)

    def next_id(self) -> str:
        return f"chatcmpl-fake{next(self._ids):08d}"
