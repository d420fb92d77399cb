"""Request and token limits of the fake provider, what a 429 carries, and the rate-limit
headers each dialect sends.

A bucket holds at most `capacity` units (the burst) and refills at `limit / 60` units per
second, so a sustained rate never exceeds the per-minute limit. "Reset" in the headers is the
time until the bucket is full again, as OpenAI documents it. With `limit_window="minute"` a
fixed window replaces each bucket: `limit` units per minute of the wall clock, nothing
refilled in between ("reset" = until the window closes); with "first_request" a window opens
with a request and lasts 60 s.

A 429 carries `Retry-After` (whole seconds, rounded up) unless the provider is silent
(`header_dialect="none"`, or `retry_after="never"`), and its message says "Please try again
in Ns." unless `rate_limit_hint` is false: a silent provider without either gives a client
nothing but the refusal to learn from.

With `header_scope="minute"` the headers describe a second, per-minute bucket (capacity =
the limit) charged with every admitted request, while the burst-sized bucket still decides:
"59 remaining" while a burst of 8 is refused, as on a provider that enforces its per-minute
limit over shorter periods.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from crawl4ai_llm_docs.testing.provider.config import (
    HeaderDialect,
    HeaderScope,
    LimitWindow,
    ProviderConfig,
)

Headers = list[tuple[bytes, bytes]]

# Float refill arithmetic leaves dust like 1.0000000002 s; do not round that up to 2 s.
_EPSILON = 1e-6


class TokenBucket:
    """A classic token bucket driven by an explicit clock (seconds, monotonic)."""

    def __init__(self, limit_per_minute: int, capacity: int, now: float) -> None:
        self.limit = limit_per_minute
        self.capacity = capacity
        self._rate = limit_per_minute / 60.0
        self._level = float(capacity)
        self._updated = now

    def level(self, now: float) -> float:
        if now > self._updated:
            self._level = min(self.capacity, self._level + (now - self._updated) * self._rate)
            self._updated = now
        return self._level

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` units are available (0 if they are now)."""
        missing = amount - self.level(now)
        return max(0.0, missing / self._rate)

    def take(self, amount: float, now: float) -> None:
        self._level = self.level(now) - amount

    def until_full(self, now: float) -> float:
        return (self.capacity - self.level(now)) / self._rate

    def remaining(self, now: float) -> int:
        return max(0, math.floor(self.level(now) + _EPSILON))


class FixedWindow(TokenBucket):
    """`limit` units per window of `window_s`; nothing comes back before a window closes.

    `phase` None: a window opens with the first request after the last one closed; else
    windows are [k * window_s - phase, (k + 1) * window_s - phase) of the clock `now` is on
    (phase = the wall clock's offset from it, for windows on the wall clock's minutes).
    """

    def __init__(
        self, limit_per_minute: int, now: float, phase: float | None, window_s: float = 60.0
    ) -> None:
        super().__init__(limit_per_minute, limit_per_minute, now)
        self._window_s, self._phase = window_s, phase
        self._closes: float | None = None  # when the current window closes (None: none open)

    def _close_after(self, now: float) -> float:
        if self._phase is None:
            return now + self._window_s
        index = math.floor((now + self._phase) / self._window_s + _EPSILON)
        return (index + 1) * self._window_s - self._phase

    def level(self, now: float) -> float:
        if self._closes is not None and now >= self._closes - _EPSILON:
            self._closes, self._level = None, float(self.capacity)
        return self._level

    def wait_for(self, amount: float, now: float) -> float:
        if self.level(now) >= amount - _EPSILON or self._closes is None:
            return 0.0
        return self._closes - now

    def take(self, amount: float, now: float) -> None:
        self._level = self.level(now) - amount
        if self._closes is None:
            self._closes = self._close_after(now)

    def until_full(self, now: float) -> float:
        self.level(now)
        return 0.0 if self._closes is None else self._closes - now


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not admitted: which bucket, and the seconds until it would be."""

    kind: Literal["requests", "tokens"]
    limit: int
    used: int
    requested: int
    too_large: bool  # more than the bucket can ever hold
    wait: float


class RateLimits:
    """The optional request and token buckets, admitted together or not at all."""

    def __init__(
        self, config: ProviderConfig, now: float, wall_offset: float | None = None
    ) -> None:
        """`wall_offset`: the wall clock minus the clock `now` is on (default: the system's),
        for windows on the wall clock's minutes."""
        window, self.wall_offset = config.limit_window, wall_offset
        if self.wall_offset is None:
            self.wall_offset = time.time() - now
        phase = self.wall_offset if window == "minute" else None
        self.requests = _bucket(config.rpm, config.burst_requests, now, window, phase)
        self.tokens = _bucket(config.tpm, config.burst_tokens, now, window, phase)
        self.scope: HeaderScope = config.header_scope
        # The per-minute view the headers report when scope is "minute" (never enforced).
        self.minute_requests = _bucket(config.rpm, None, now, window, phase)
        self.minute_tokens = _bucket(config.tpm, None, now, window, phase)

    def reconfigure(self, config: ProviderConfig, now: float) -> None:
        """Apply new limits, keeping how much of each bucket is used if its limit is unchanged."""
        fresh = RateLimits(config, now, self.wall_offset)
        self.requests = _carry_over(self.requests, fresh.requests, now)
        self.tokens = _carry_over(self.tokens, fresh.tokens, now)
        self.minute_requests = _carry_over(self.minute_requests, fresh.minute_requests, now)
        self.minute_tokens = _carry_over(self.minute_tokens, fresh.minute_tokens, now)
        self.scope = fresh.scope

    def admit(self, cost_tokens: int, now: float) -> Refusal | None:
        """Take one request and `cost_tokens` tokens together, or say why not and how long to wait."""
        refusals: list[Refusal] = []
        if self.requests is not None:
            wait = self.requests.wait_for(1, now)
            if wait > _EPSILON:
                refusals.append(_refusal("requests", self.requests, 1, wait, now))
        if self.tokens is not None:
            if cost_tokens > self.tokens.capacity:
                # Can never fit (OpenAI's "Request too large"); still a 429, retry when full.
                wait = max(self.tokens.until_full(now), 1.0)
            else:
                wait = self.tokens.wait_for(cost_tokens, now)
            if wait > _EPSILON:
                refusals.append(_refusal("tokens", self.tokens, cost_tokens, wait, now))
        if refusals:
            return max(refusals, key=lambda refusal: refusal.wait)
        for bucket, amount in (
            (self.requests, 1),
            (self.tokens, cost_tokens),
            (self.minute_requests, 1),
            (self.minute_tokens, cost_tokens),
        ):
            if bucket is not None:
                bucket.take(amount, now)
        return None

    def headers(self, dialect: HeaderDialect, now: float, wall_now: float) -> Headers:
        pairs = (("requests", self.requests), ("tokens", self.tokens))
        if self.scope == "minute":
            pairs = (("requests", self.minute_requests), ("tokens", self.minute_tokens))
        named = [(kind, bucket) for kind, bucket in pairs if bucket is not None]
        if dialect == "openai":
            return [
                (f"x-ratelimit-{key}-{kind}".encode(), value.encode())
                for kind, bucket in named
                for key, value in (
                    ("limit", str(bucket.limit)),
                    ("remaining", str(bucket.remaining(now))),
                    ("reset", openai_duration(bucket.until_full(now))),
                )
            ]
        if dialect == "anthropic":
            return [
                (f"anthropic-ratelimit-{kind}-{key}".encode(), value.encode())
                for kind, bucket in named
                for key, value in (
                    ("limit", str(bucket.limit)),
                    ("remaining", str(bucket.remaining(now))),
                    ("reset", rfc3339(wall_now + bucket.until_full(now))),
                )
            ]
        if dialect == "ietf" and named:
            # draft-ietf-httpapi-ratelimit-headers: the request quota is the "default" policy.
            names = {"requests": "default", "tokens": "tokens"}
            policy = ", ".join(f'"{names[k]}";q={b.limit};w=60' for k, b in named)
            state = ", ".join(
                f'"{names[k]}";r={b.remaining(now)};t={ceil_seconds(b.until_full(now))}'
                for k, b in named
            )
            return [(b"ratelimit-policy", policy.encode()), (b"ratelimit", state.encode())]
        return []


def ideal_span(
    config: ProviderConfig, requests: int, concurrency: int, latency: float, wall: float = 0.0
) -> float:
    """First to last request of a client that knows these limits exactly: `concurrency`
    workers, each answer `latency` s, every request sent the moment a worker is free and the
    provider would admit it (no earlier send can make a later one possible sooner), the
    first at wall clock time `wall` (where clock-minute windows stand then)."""
    limits, free = RateLimits(config, 0.0, wall), [0.0] * concurrency
    sends: list[float] = []
    for _ in range(requests):
        at = max(min(free), sends[-1] if sends else 0.0)
        while (refusal := limits.admit(0, at)) is not None:
            at += max(refusal.wait, _EPSILON)
        free[free.index(min(free))] = at + latency
        sends.append(at)
    return sends[-1] - sends[0] if sends else 0.0


def refusal_extras(config: ProviderConfig, refusal: Refusal) -> tuple[int | None, Headers]:
    """What a 429 tells the client about when to come back: the delay its message names
    (None: none) and the headers that say it."""
    retry_after = max(1, ceil_seconds(refusal.wait))
    hint = retry_after if config.rate_limit_hint else None
    sends = config.retry_after == "always" or (
        config.retry_after == "auto" and config.header_dialect != "none"
    )
    if not sends:
        return hint, []
    extra: Headers = [(b"retry-after", b"%d" % retry_after)]
    if config.header_scope == "minute":  # the exact wait, as a short window gives it
        extra.append((b"retry-after-ms", b"%d" % math.ceil(refusal.wait * 1000)))
    return hint, extra


def ceil_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds - _EPSILON))


def openai_duration(seconds: float) -> str:
    """Format like OpenAI's x-ratelimit-reset-*: `12ms`, `1s`, `6m0s`, `2m59.56s`."""
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms" if millis > 0 else "0s"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.2f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rfc3339(unix_seconds: float) -> str:
    # Whole seconds, rounded up so a client waiting until then is never early.
    moment = datetime.fromtimestamp(math.ceil(unix_seconds - _EPSILON), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _refusal(
    kind: Literal["requests", "tokens"], bucket: TokenBucket, amount: int, wait: float, now: float
) -> Refusal:
    used = bucket.capacity - bucket.remaining(now)
    return Refusal(kind, bucket.limit, used, amount, amount > bucket.capacity, wait)


def _bucket(
    limit: int | None, burst: int | None, now: float, window: LimitWindow, phase: float | None
) -> TokenBucket | None:
    if limit is None:
        return None
    if window != "bucket":
        return FixedWindow(limit, now, phase)
    return TokenBucket(limit, burst if burst is not None else limit, now)


def _carry_over(old: TokenBucket | None, new: TokenBucket | None, now: float) -> TokenBucket | None:
    if old is None or new is None:
        return new
    used = old.capacity - old.level(now)
    new.take(min(used, new.capacity), now)
    return new
