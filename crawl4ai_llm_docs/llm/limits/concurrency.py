"""A concurrency limit that notices server-side queueing, inside the AIMD cap.

Local and single-replica servers (llama.cpp, Ollama, LM Studio, one vLLM replica) run a few
requests at a time and queue the rest: sending more makes every answer later and none sooner,
and a queued request can time out while the server still spends a slot on it later. Rate
limit headers and 429s say nothing about this; latency does.

Streaming shows it directly. A request is *waiting* from when it is sent until its first token
(less a grace of twice the shortest time to first token seen lately, plus 0.1 s: network and
prompt processing, not queueing), and *served* from its first token to its end. Over a window of requests, by
Little's law:

    served = (time requests spent served) / (window length)   the requests the server runs at once
    queued = (time requests spent waiting) / (window length)  the requests waiting in its queue

Gradient/Vegas-style, as in Netflix's concurrency-limits, but measured rather than inferred
from a latency ratio (chunk sizes vary too much for one):

- a queue of at least ``max(0.5, 15 % of the limit)`` requests while latency grows and
  throughput does not: lower the limit to what the server was seen to run at once;
- a full round (``limit`` answers, at least 4) with the limit in use and (almost) nothing queued: +1,
  but a limit that queued before is tried again only after 2, 4, 8 ... 64 such rounds;
- if lowering cost throughput (``served`` fell by a fifth or more: the waits were not our own
  queue), go back to the previous limit and do not lower below it for a while.

On a server with N slots this settles at about N (probing N+1 now and then); with constant
latency nothing ever waits, so it never lowers. While the server serves the run's requests in
order and keeps making progress, a request waiting its turn is not hung: ``excused`` tells the
client how much of its wait to forgive, and its first-token deadline moves by that much. Requests that are not streamed (a provider that
refuses streaming) carry no first token and are left out: the limit then stays where it is.
The rate limiter admits a request only while ``in_flight < min(AIMD limit, this limit)``.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from typing import Literal

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter, LimiterSnapshot

log = structlog.get_logger()

Outcome = Literal["ok", "timeout", "error"]

_MIN_QUEUE = 0.5  # requests: below this nothing is queued
_QUEUE_SHARE = 0.15  # of the limit: the queue that lowers it
_THROUGHPUT_DROP = 0.8  # served after lowering below this share of before: revert
_FLOOR_ROUNDS = 10  # rounds a reverted limit is not lowered again
_TTFT_SAMPLES = 32  # recent first tokens whose minimum is the baseline
_MIN_ROUND = 4  # answers a round needs at least: one answer's length varies too much
_MAX_PROBE_DOUBLINGS = 6  # a limit that queued is tried again after at most 2**6 rounds
_GRACE_FACTOR, _GRACE_S = 2.0, 0.1  # waiting up to 2 x that minimum + 0.1 s is no queue


class Flight:
    """One request on the wire, as the limit sees it."""

    __slots__ = ("end", "first", "sent", "streamed")

    def __init__(self, sent: float, streamed: bool) -> None:
        self.sent = sent
        self.streamed = streamed
        self.first: float | None = None
        self.end: float | None = None


class QueueAwareLimit:
    """See the module docstring. ``limit`` is read by the rate limiter before each admission."""

    def __init__(
        self,
        *,
        max_limit: int,
        enabled: bool = True,
        clock: Callable[[], float] = trio.current_time,
        on_change: Callable[[int, int, str], None] | None = None,
    ) -> None:
        if max_limit < 1:
            raise ValueError(f"max_limit must be at least 1, not {max_limit}")
        self.max_limit = max_limit
        self.enabled = enabled
        self._clock = clock
        self._on_change = on_change
        self._limit = max_limit
        self._active: set[Flight] = set()
        self._finished: list[Flight] = []  # ended inside the current window
        self._window_start = clock()
        self._completions = 0
        self._ttfts: deque[float] = deque(maxlen=_TTFT_SAMPLES)
        self._latencies: deque[float] = deque(maxlen=_TTFT_SAMPLES)  # of recent answers
        self._probe: tuple[int, float] | None = None  # (limit before lowering, served then)
        self._floor = 1
        self._floor_rounds = 0
        # limit -> (times it was found queueing, full rounds still to wait before trying it)
        self._queued_at: dict[int, list[int]] = {}
        self._latest_served_sent = -math.inf  # send time of the latest request served
        self._progress_at = -math.inf  # the last first token, chunk or answer of any request

    @property
    def limit(self) -> int:
        return self._limit if self.enabled else self.max_limit

    def start(self, *, streamed: bool) -> Flight:
        """A request was sent; ``streamed`` when its first token will be reported."""
        flight = Flight(self._clock(), streamed)
        if not self._active and not self._finished:
            self._window_start = flight.sent  # idle time before says nothing about the server
        self._active.add(flight)
        return flight

    def first_token(self, flight: Flight) -> None:
        if flight.first is None:
            flight.first = self._clock()
            self._ttfts.append(flight.first - flight.sent)
            self._latest_served_sent = max(self._latest_served_sent, flight.sent)
            self._progress_at = flight.first

    def excused(self, flight: Flight) -> float:
        """Seconds of ``flight``'s wait for its first token to forgive: up to the last sign
        of progress from the server (a first token, a chunk, an answer of this run's other
        requests), as long as no request sent after it has been served before it. It is then
        waiting its turn in the server's queue, not hung; if the server stops making
        progress, its clock runs again from that moment. 0 when disabled."""
        if not self.enabled or flight.first is not None:
            return 0.0
        if self._latest_served_sent > flight.sent:
            return 0.0  # overtaken: a server that serves in order would have served it first
        return max(0.0, self._progress_at - flight.sent)

    def progress(self) -> None:
        """The server sent something for one of the run's requests (a chunk of an answer)."""
        self._progress_at = self._clock()

    def finish(self, flight: Flight, outcome: Outcome) -> None:
        """The request ended. "error" (a refusal, a dropped connection) is not counted: it
        says nothing about queueing, and the AIMD limit reacts to it."""
        if flight not in self._active:
            return
        self._active.discard(flight)
        flight.end = self._clock()
        if outcome == "ok":
            self._progress_at = flight.end
        if outcome == "error" and flight.first is None:
            return
        self._finished.append(flight)
        self._latencies.append(flight.end - flight.sent)
        self._completions += 1
        if self.enabled:
            self._decide(flight.end)

    # --- the estimate ------------------------------------------------------------------------

    def measure(self, now: float) -> tuple[float, float, float]:
        """(served, queued, window seconds) over the current window, as of ``now``."""
        start = self._window_start
        span = now - start
        if span <= 0 or not self._ttfts:
            return 0.0, 0.0, max(span, 0.0)
        # Up to twice the shortest recent time to first token (and 0.1 s) is the network and
        # prompt processing of a request that did not queue, jitter included.
        grace = _GRACE_FACTOR * min(self._ttfts) + _GRACE_S
        served = waited = 0.0
        for flight in (*self._finished, *self._active):
            if not flight.streamed:
                continue
            end = now if flight.end is None else flight.end
            first = end if flight.first is None else min(flight.first, end)
            waited += max(0.0, first - max(start, flight.sent + grace))
            served += max(0.0, end - max(start, first))
        return served / span, waited / span, span

    def _decide(self, now: float) -> None:
        served, queued, span = self.measure(now)
        # A window shorter than half a typical answer is noise: a request or two that just
        # started would weigh as a queue.
        if span <= 0 or not self._ttfts or span < 0.5 * statistics.median(self._latencies):
            return
        limit = self._limit
        full_round = self._completions >= max(limit, _MIN_ROUND)
        probe = self._probe
        if probe is not None and not full_round:
            return  # just lowered: judge it over a whole round before anything else
        if probe is not None and served < _THROUGHPUT_DROP * probe[1]:
            # Lowering cost throughput: the waits were not a queue of ours. Go back, and stay.
            self._probe = None
            self._floor, self._floor_rounds = probe[0], _FLOOR_ROUNDS
            self._set(probe[0], f"throughput fell after lowering ({served:.1f} < {probe[1]:.1f})")
            return
        threshold = max(_MIN_QUEUE, _QUEUE_SHARE * limit)
        if queued >= threshold:
            target = max(1, self._floor, min(limit, math.ceil(served - 0.25)))
            if target < limit:
                self._probe = (limit, served)
                self._remember_queueing(limit, target)
                self._set(
                    target, f"{queued:.1f} requests queued at the server, {served:.1f} served"
                )
            elif full_round:
                self._end_round(now)
            return
        if not full_round:
            return
        self._probe = None  # a full round at the lower limit served as much: it was a queue
        busy = served + queued
        if queued < threshold / 2 and busy >= limit - 0.5 and limit < self.max_limit:
            self._end_round(now)
            if self._may_try(limit + 1):
                self._set(limit + 1, "no queue at the server")
            return
        self._end_round(now)

    def _remember_queueing(self, limit: int, target: int) -> None:
        """Every limit above ``target`` up to ``limit`` queued: wait longer before each retry
        (2, 4, 8 ... up to 64 full rounds), so probing costs little on a one-slot server."""
        for level in range(target + 1, limit + 1):
            record = self._queued_at.setdefault(level, [0, 0])
            record[0] = min(record[0] + 1, _MAX_PROBE_DOUBLINGS)
            record[1] = 2 ** record[0]

    def _may_try(self, limit: int) -> bool:
        record = self._queued_at.get(limit)
        if record is None or record[1] <= 0:
            return True
        record[1] -= 1
        return False

    def _end_round(self, now: float) -> None:
        if self._floor_rounds:
            self._floor_rounds -= 1
            if not self._floor_rounds:
                self._floor = 1
        self._reset_window(now)

    def _set(self, limit: int, reason: str) -> None:
        old, self._limit = self._limit, limit
        self._reset_window(self._clock())
        if self._on_change is not None:
            self._on_change(old, limit, reason)

    def _reset_window(self, now: float) -> None:
        self._window_start = now
        self._finished.clear()
        self._completions = 0


def attach(limiter: AdaptiveRateLimiter, queue: QueueAwareLimit) -> Callable[[], LimiterSnapshot]:
    """Make ``limiter`` admit within ``queue.limit`` too; returns its snapshot with the
    effective limit that is really in force (the smaller of the two), for the live view."""
    limiter.concurrency_cap = lambda: queue.limit

    def snapshot() -> LimiterSnapshot:
        state = limiter.snapshot()
        limit = min(state.effective_limit, queue.limit)
        return msgspec.structs.replace(state, effective_limit=limit)

    return snapshot


def log_change(old: int, new: int, reason: str) -> None:
    """The pipeline's ``on_change``: lowering is news for the user, probing upwards is not."""
    message = f"Concurrency {old} -> {new}: {reason}."
    if new < old:
        message += " The server runs fewer requests at once than were sent."
        log.info("warning", message=message)
    else:
        log.debug("warning", message=message)
