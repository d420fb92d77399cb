"""What the limiter hands out and reports: permits, verdicts, wait events, snapshots.

A `Permit` is one admitted request; its `observe*` calls feed the answer back to the
limiter, which classifies it into a `Verdict` for the caller's retry loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import TracebackType
from typing import Literal, Protocol

import msgspec

from crawl4ai_llm_docs.llm.limits.headers import RateLimitInfo

WaitReason = Literal[
    "concurrency", "requests", "tokens", "retry_after", "static_rpm", "static_tpm", "probe"
]
"""Why a request waited; "probe" is the spacing of sends while a silent provider's rate is
unknown (see `pacing`)."""
FailureKind = Literal["timeout", "connection", "overload"]
VerdictKind = Literal[
    "ok", "rate_limited", "overloaded", "quota_exhausted", "server_error", "client_error"
]


class WaitEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A request had to wait; becomes the JSON `rate_limit` event."""

    reason: WaitReason
    wait_s: float
    remaining: int | None
    reset_s: float | None
    effective_concurrency: int


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """What a response means for the caller's retry loop."""

    kind: VerdictKind
    status: int
    retry_after_s: float | None  # the delay the server asked for (header or body)
    pause_s: float  # how long every worker is now held back (0: no pause)
    info: RateLimitInfo

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "overloaded", "server_error")


class LimiterSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    in_flight: int
    effective_limit: int
    max_concurrent: int
    paused_until: float | None  # trio clock
    paused_for_s: float
    requests_remaining: int | None
    requests_limit: int | None
    tokens_remaining: int | None
    tokens_limit: int | None
    waits: int
    wait_s_total: float
    rate_limited: int
    # Per-minute headers read as a rate: the burst sends may use beyond it (None: not paced).
    paced_rate_per_s: float | None = None
    paced_burst: float | None = None
    enforcement_window_s: float | None = None  # shown by a 429 shorter than the minute
    learned_rate_per_s: float | None = None  # a silent provider's rate, learned from 429s
    learned_burst: float | None = None  # ... its burst (the sends accepted before the first)
    learned_window_s: float | None = None  # ... a fixed window it was seen to count in


class Limiter(Protocol):
    """What a permit reports to: ``ratelimit.AdaptiveRateLimiter`` (a protocol, so this module
    needs no import of the limiter that imports it)."""

    def _observe(
        self, permit: Permit, status: int, headers: Mapping[str, str], body: bytes
    ) -> Verdict: ...

    def _observe_failure(self, permit: Permit, kind: FailureKind) -> None: ...

    def _observe_usage(self, permit: Permit, used: int) -> None: ...

    def _observe_stream_start(self, permit: Permit) -> None: ...

    async def _acquire(self, permit: Permit) -> None: ...

    def _release(self, permit: Permit) -> None: ...


class Permit:
    """One admitted request. Report its outcome with exactly one `observe*` call."""

    def __init__(self, limiter: Limiter, estimated_tokens: int) -> None:
        self._limiter = limiter
        self.estimated_tokens = max(0, estimated_tokens)
        self.sent_at = math.nan
        self.seq = 0
        self.entries: dict[WaitReason, list[float]] = {}  # what it took from each budget
        self.verdict: Verdict | None = None
        self.failure: FailureKind | None = None
        self.usage: int | None = None
        self.pace_debt: float | None = None  # how much of the learned burst its send used
        self.silent_level: float | None = None  # a silent provider's learned bucket, at its send
        self.done = False

    def observe(self, status: int, headers: Mapping[str, str], body: bytes = b"") -> Verdict:
        """Learn from the response (headers always, body on errors) and classify it."""
        self._first_outcome()
        self.verdict = self._limiter._observe(self, status, headers, body)
        return self.verdict

    def observe_failure(self, kind: FailureKind) -> None:
        """No response: "timeout" and "overload" shrink concurrency, "connection" does not."""
        self._first_outcome()
        self.failure = kind
        self._limiter._observe_failure(self, kind)

    def observe_stream_start(self) -> None:
        """A streamed answer's headers arrived (before its text): how soon an answer can
        come back, known long before the answer is whole. Optional; before `observe`."""
        self._limiter._observe_stream_start(self)

    def _first_outcome(self) -> None:
        if self.verdict is not None or self.failure is not None:
            raise RuntimeError("this permit's outcome was already observed")

    def observe_usage(self, total_tokens: int) -> None:
        """The tokens the request really used (prompt + completion), once known."""
        if self.usage is None:
            self.usage = max(0, total_tokens)
            self._limiter._observe_usage(self, self.usage)


class Slot:
    def __init__(self, limiter: Limiter, estimated_tokens: int) -> None:
        self._permit = Permit(limiter, estimated_tokens)

    async def __aenter__(self) -> Permit:
        await self._permit._limiter._acquire(self._permit)
        return self._permit

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._permit._limiter._release(self._permit)


def classify(status: int, body: bytes) -> VerdictKind:
    if 200 <= status < 300:
        return "ok"
    if status == 429:  # OpenAI's out-of-credit answer is a 429 too, but waiting cannot fix it
        return "quota_exhausted" if b"insufficient_quota" in body else "rate_limited"
    if status in (503, 529):
        return "overloaded"
    return "server_error" if status >= 500 or status == 408 else "client_error"
