"""The budget models behind `AdaptiveRateLimiter`: what the provider's buckets hold now.

- `Bucket`: a token bucket (level, refill rate, capacity), reset from each answer's headers
  by replaying the sends the provider had not yet counted when it measured them.
- `StaticCap`: a per-minute cap (the user's, or a rate learned from 429s): a small burst, and
  never more than the cap in any 60 s.

All times are trio clock seconds; nothing here sleeps or touches I/O.
"""

from __future__ import annotations

import itertools
from collections import deque

from crawl4ai_llm_docs.llm.limits.headers import BucketInfo

MINUTE = 60.0
EPS = 1e-9


class Bucket:
    """A token-bucket model: `level` at time `at`, refilling at `rate` up to `capacity`.

    `level` None means unknown (no constraint). At `reset_at` the level becomes `capacity`
    (a window reset, or the end of a refill we cannot model). Levels may go negative (debt).
    `log` keeps recent requests as [seq, sent_at, units], to replay after a late answer.
    """

    def __init__(self, *, capacity: float | None = None, rate: float = 0.0) -> None:
        self.capacity, self.rate = capacity, rate
        self.level: float | None = capacity
        self.at = 0.0
        self.reset_at: float | None = None
        self.limit: int | None = None
        self.log: deque[list[float]] = deque(maxlen=4096)
        self._seen_capacity = 0.0
        self._measured = 0  # seq of the request whose answer the model reflects

    def _refill(self, level: float, seconds: float) -> float:
        level += self.rate * max(0.0, seconds)
        return level if self.capacity is None else min(self.capacity, level)

    def level_at(self, now: float) -> float | None:
        if self.reset_at is not None and now >= self.reset_at:
            self.level, self.at, self.reset_at = self.capacity, self.reset_at, None
        return None if self.level is None else self._refill(self.level, now - self.at)

    def wait_s(self, now: float, cost: float, reserve: float) -> float:
        """Seconds until `cost` units fit above `reserve` (a fraction of the capacity)."""
        level = self.level_at(now)
        if level is None or cost <= 0:
            return 0.0
        need = cost
        if self.capacity is not None:  # a request larger than the bucket waits for it to be full
            need = min(cost + reserve * self.capacity, self.capacity)
        if level >= need - EPS:
            return 0.0
        waits = [(need - level) / self.rate] if self.rate > 0 else []
        if self.reset_at is not None:
            waits.append(self.reset_at - now)
        return min(waits) if waits else 0.0  # nothing says when: do not block forever

    def take(self, now: float, cost: float, seq: int = 0) -> list[float]:
        level = self.level_at(now)
        if level is not None:
            self.level, self.at = level - cost, now
        entry = [float(seq), now, cost]
        self.log.append(entry)
        return entry

    def refund(self, now: float, entry: list[float], units: float) -> None:
        """Give back `units` of `entry` the provider did not count (negative: charge more)."""
        entry[2] -= units
        level = self.level_at(now)
        if level is not None:
            self.level, self.at = self._refill(level + units, 0.0), now

    def reconcile(self, info: BucketInfo, now: float, seq: int) -> None:
        """Reset the model from the answer to request `seq`.

        The provider measured `remaining` when that request arrived (taken as when we sent
        it), so it does not count what we sent since: replay those sends, refilling at
        `limit / window` (slower if `reset_s` says so) and never above the bucket's size.
        """
        if info.limit is not None:
            self.limit = info.limit
        first = int(self.log[0][0]) if self.log else seq + 1
        if info.remaining is None or seq <= self._measured or seq < first:
            return  # nothing to learn, older than what the model reflects, or forgotten
        self._measured = seq
        remaining, limit, reset = float(info.remaining), info.limit, info.reset_s
        if info.refill == "window":
            self.rate, self.capacity = 0.0, None if limit is None else float(limit)
        else:
            rate = limit / (info.window_s or MINUTE) if limit else 0.0
            if reset and limit is not None and remaining < limit:
                slower = (limit - remaining) / reset
                rate = min(rate, slower) if rate else slower
            if rate > 0 and reset is not None:  # full after `reset`: the real burst size
                self._seen_capacity = max(self._seen_capacity, remaining + rate * reset)
            elif limit is not None:
                self._seen_capacity = max(self._seen_capacity, float(limit))
            cap = self._seen_capacity or None
            self.rate = rate
            self.capacity = None if cap is None else min(cap, float(limit)) if limit else cap
        start = seq - first
        level, at = remaining, self.log[start][1]
        for _, sent_at, units in itertools.islice(self.log, start + 1, None):
            level, at = self._refill(level, sent_at - at) - units, sent_at
        self.level, self.at = self._refill(level, now - at), now
        self.reset_at = now + reset if self.rate == 0 and reset is not None else None


class StaticCap:
    """A per-minute cap (the user's, or one learned from 429s): a small-burst bucket, and at
    most the cap in any 60 s."""

    def __init__(self, per_minute: float, burst: float) -> None:
        self.per_minute = float(per_minute)
        self.bucket = Bucket(capacity=burst, rate=per_minute / MINUTE)
        self.sent: deque[list[float]] = deque()  # the bucket's entries of the last minute
        self.total = 0.0

    def wait_s(self, now: float, cost: float) -> float:
        while self.sent and self.sent[0][1] + MINUTE <= now:
            self.total -= self.sent.popleft()[2]
        wait = self.bucket.wait_s(now, cost, 0.0)
        excess = self.total + min(cost, self.per_minute) - self.per_minute
        freed = 0.0
        for _, sent_at, units in self.sent if excess > EPS else ():
            freed += units
            if freed >= excess - EPS:
                return max(wait, sent_at + MINUTE - now)
        return wait

    def take(self, now: float, cost: float) -> list[float]:
        entry = self.bucket.take(now, cost)
        self.sent.append(entry)
        self.total += cost
        return entry

    def raise_rate(self, per_minute: float) -> None:
        self.per_minute += per_minute
        self.bucket.rate = self.per_minute / MINUTE

    def refund(self, now: float, entry: list[float], units: float) -> None:
        units = min(units, entry[2])
        if self.sent and entry[1] >= self.sent[0][1]:  # still inside the last minute
            self.total -= units
        self.bucket.refund(now, entry, units)
