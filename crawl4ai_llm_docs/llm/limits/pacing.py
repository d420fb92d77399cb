"""`Pacer`: what `AdaptiveRateLimiter` learns about pacing beyond what headers say outright.

- Per-minute headers read as a rate. OpenAI documents `x-ratelimit-limit-requests` as the
  per-minute limit and `remaining` as what is left of it, and may enforce it over shorter
  periods (60,000 RPM as 1,000 per second): "59 remaining" while a burst of 8 is refused.
  When the headers look like that (a bucket as large as the limit: a per-minute view), sends
  are spread at `limit / 60` per second plus a burst the provider has really accepted: at
  first the deepest burst already sent and answered, growing on success (by one per success
  that used it fully until a first 429, slowly after) and cut below the refused one on a
  429, never to grow past that again. A send that tests a deeper burst than any accepted
  goes no sooner after the last such test than a refusal takes to come back (as long as a
  stream's headers take, `SilentRate.answer_gap`): two tests in flight, refused together,
  would cost two 429s for one finding. A 429 with a Retry-After shorter than the minute, while the
  headers said there was room, shows the same thing for headers that looked exact: from
  then on they are read as a rate too. Headers that describe the bucket itself (remaining
  never above a burst smaller than the limit) keep the exact model in `buckets.Bucket`.
- A silent provider (no headers): `silent.SilentRate` learns its burst and rate from what it
  accepts and refuses, and paces sends at them.

Everything is counted by actual dispatch times, so a late event loop shifts sends later but
never lets them bunch up to catch up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from crawl4ai_llm_docs.llm.limits.buckets import MINUTE, Bucket
from crawl4ai_llm_docs.llm.limits.headers import RateLimitInfo
from crawl4ai_llm_docs.llm.limits.permits import Permit, VerdictKind
from crawl4ai_llm_docs.llm.limits.silent import SilentRate

PaceReason = Literal["requests", "probe"]

_PER_MINUTE_SHARE = 0.9  # a bucket this close to the limit is a per-minute view, not the bucket
_BURST_GROWTH = 0.25  # the burst grows by this / burst per success that used it fully


class Pace:
    """Per-minute limits as a rate: at most `burst` sends beyond `rate` per second.

    A `Bucket` of capacity `burst` refilling at `rate`; its debt (capacity - level) after a
    send is how much of the burst that send used.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.bucket = Bucket(capacity=burst, rate=rate)
        self.bucket.at = now
        self.ceiling = math.inf  # below the burst a 429 refused
        self.proven = 0.0  # the deepest use of the burst accepted so far

    def probes(self, now: float) -> bool:
        """Whether the next send would use more of the burst than any accepted send did,
        before any was refused: it tests the burst, and may be refused."""
        return self.ceiling == math.inf and self.debt(now) + 1.0 > self.proven + 0.5

    @property
    def burst(self) -> float:
        assert self.bucket.capacity is not None
        return self.bucket.capacity

    def debt(self, now: float) -> float:
        level = self.bucket.level_at(now)
        return 0.0 if level is None else self.burst - level

    def resize(self, now: float, burst: float) -> None:
        """Change the burst, keeping the debt (what recent sends used of it)."""
        burst = max(1.0, min(burst, self.ceiling))
        debt = self.debt(now)
        self.bucket.capacity = burst
        self.bucket.level, self.bucket.at = burst - debt, now

    def accepted(self, now: float, debt: float) -> None:
        """A send that used `debt` of the burst was accepted: grow the burst if it was full.

        Until a first refusal, by one per such success (about doubling per round trip, as
        TCP's slow start); after it, slowly (+1 per `burst / _BURST_GROWTH` successes).
        """
        self.proven = max(self.proven, debt)
        if self.ceiling == math.inf and debt >= self.burst - 1.5:
            self.resize(now, self.burst + 1.0)
        elif debt >= self.burst - 0.5:
            self.resize(now, self.burst + _BURST_GROWTH / self.burst)

    def refused(self, now: float, debt: float) -> None:
        self.ceiling = max(1.0, min(self.ceiling, debt - 1.0))
        self.resize(now, self.burst)


class Pacer:
    """Learned pacing constraints; see the module docstring."""

    def __init__(self, reserve: float, wall_clock: Callable[[], float]) -> None:
        self._reserve = reserve
        self.pace: Pace | None = None  # per-minute headers read as a rate
        self.quantized = False  # a short 429 proved the headers a per-minute view
        self.window_s: float | None = None  # the enforcement window a short 429 revealed
        self._replayed: dict[int, float] = {}  # seq -> debt, for sends made before `pace`
        self.silent = SilentRate(wall_clock)  # what a provider without headers allows
        self.advertised = False  # headers have shown budgets at some point
        self._probed_at = -math.inf  # the last send that tested the burst (`Pace.probes`)

    def describe(self) -> dict[str, float | None]:
        """The learned state, as `LimiterSnapshot` fields."""
        pace, silent = self.pace, self.silent
        return {
            "paced_rate_per_s": None if pace is None else pace.bucket.rate,
            "paced_burst": None if pace is None else pace.burst,
            "enforcement_window_s": self.window_s,
            "learned_rate_per_s": None if self.advertised else silent.rate,
            "learned_burst": None if self.advertised else silent.burst,
            "learned_window_s": None if self.advertised else silent.window_s,
        }

    # --- admission ---------------------------------------------------------------------------

    def plan(self, now: float) -> list[tuple[float, PaceReason, Bucket | None]]:
        plans: list[tuple[float, PaceReason, Bucket | None]] = []
        if self.pace is not None:
            plans.append((self.pace.bucket.wait_s(now, 1, 0.0), "requests", self.pace.bucket))
            if self.pace.probes(now):  # not before the 429 the last test may bring is back
                plans.append((self._probed_at + self.silent.answer_gap() - now, "probe", None))
        if not self.advertised:
            wait, learned = self.silent.wait_s(now)
            if learned:
                plans.append((wait, "requests", self.silent.model))
            else:
                plans.append((wait, "probe", None))
        return plans

    def dispatched(self, permit: Permit, now: float) -> None:
        if self.pace is not None:
            if self.pace.probes(now):
                self._probed_at = now
            self.pace.bucket.take(now, 1)
            permit.pace_debt = self.pace.debt(now)
        if not self.advertised:
            self.silent.dispatched(permit, now)

    # --- feedback ----------------------------------------------------------------------------

    def stream_started(self, permit: Permit, round_trip: float) -> None:
        """A streamed answer's headers came back `round_trip` s after its send: as soon as
        a refusal would (`SilentRate.answer_gap`, for providers with headers too)."""
        self.silent.answer_started(permit, round_trip)

    def answered(
        self,
        permit: Permit,
        kind: VerdictKind,
        info: RateLimitInfo,
        retry_after: float | None,
        now: float,
        requests: Bucket,
        tokens: Bucket,
        reacted_seq: int,
    ) -> float | None:
        """Learn from one answer; `requests`/`tokens` are the header models, reconciled.

        For a 429 from a provider that never advertised budgets: the pause every worker
        should take (what the learned rate explains; the concurrency is not at fault).
        """
        if requests.level is not None or tokens.level is not None:
            self.advertised = True  # advertised budgets are better than a guess
        refused = kind == "rate_limited"
        if refused and self._tokens_explain(permit, info):
            refused = False  # the token budget refused it; the request pace was fine
        elif refused and self._short_window(info, retry_after):
            self.quantized, self.window_s = True, retry_after
        self._follow_headers(info, requests, now)
        if self.pace is not None:
            debt = permit.pace_debt
            if debt is None:
                debt = self._replayed.pop(permit.seq, None)
            if debt is not None and refused:
                self.pace.bucket.refund(now, [0.0, now, 1.0], 1)  # the provider did not count it
                self.pace.refused(now, debt)
            elif debt is not None and kind == "ok":
                self.pace.accepted(now, debt)
        if self.advertised:
            return None
        return self.silent.answered(permit, kind, retry_after, now, permit.seq > reacted_seq)

    @staticmethod
    def _tokens_explain(permit: Permit, info: RateLimitInfo) -> bool:
        left = info.tokens.remaining
        return left is not None and left < max(1, permit.estimated_tokens)

    @staticmethod
    def _short_window(info: RateLimitInfo, retry_after: float | None) -> bool:
        """A 429 asking for less than the minute while the headers say requests are left."""
        left = info.requests.remaining
        short = retry_after is not None and retry_after < MINUTE
        return short and left is not None and left >= 1

    def _follow_headers(self, info: RateLimitInfo, requests: Bucket, now: float) -> None:
        """Read per-minute headers as a rate once they look like (or proved) a minute's view."""
        limit, window = requests.limit, info.requests.window_s or MINUTE
        if limit is None or info.requests.refill != "continuous" or window < MINUTE:
            return
        if self.pace is not None:
            self.pace.bucket.rate = limit / window  # the limit may change during a run
            return
        capacity = requests.capacity
        per_minute = capacity is not None and capacity >= _PER_MINUTE_SHARE * limit
        if per_minute or self.quantized:
            self._start_pace(limit / window, requests, now)

    def _start_pace(self, rate: float, requests: Bucket, now: float) -> None:
        """Replay the sends so far at `rate`: the deepest burst they made is the first guess."""
        debt, at, peak = 0.0, now, 1.0
        for seq, sent_at, units in requests.log:
            if units <= 0:
                continue  # refused, and refunded
            debt = max(0.0, debt - rate * max(0.0, sent_at - at)) + units
            at, peak = sent_at, max(peak, debt)
            self._replayed[int(seq)] = debt
        self.pace = Pace(rate, peak, now)
        self.pace.bucket.level = peak - max(0.0, debt - rate * max(0.0, now - at))
