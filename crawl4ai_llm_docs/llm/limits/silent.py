"""`SilentRate`: what a provider that sends no rate-limit headers allows, learned from what it
accepts and refuses (a bare 429, or one with a `Retry-After` or "try again in 2s").

The provider is taken for a token bucket: a burst, refilled at a steady rate. A fixed window
(N per minute) is a burst of N refilled all at once when the window closes; it is found and
followed too (see "nothing accepted" below).

- Before the first 429 nothing is known: sends, the first wave too, go `gap` apart (25 ms, or
  1.5 x a 429's round trip, at most 0.5 s; before the first 429, 1.5 x the round trip of the
  latest stream's headers, at most 0.1 s, as a 429 comes back as soon), so the send that finds
  the bucket empty is refused alone and its 429 is back before the next send: a burst costs
  one 429, not one per worker.
- After a pause, the first send goes alone: the next waits for its answer's headers (a 429
  or a stream's start; at most `_MAX_GAP_S`), if answers are streamed (else its answer is
  the whole text, too late to wait for). A pause that refilled nothing (a window, a slower
  bucket) is then refused once, not once more per send that left before its 429 came back:
  under load a 429's round trip jumps past any spacing guessed from the last one.
- The first 429 reveals the burst (the sends accepted before it) and is the anchor: the bucket
  was empty then. Every worker waits (the longest a request can take to refill, a burst being
  at most a minute's worth, and at most `_FIRST_PAUSE_S`; the `Retry-After` if longer, or
  instead for a burst too small to hold that refill), the bucket refills meanwhile, then
  sends go `gap` apart until one is refused: the bucket is empty again, so what it accepted
  since the anchor, over the time since, is its refill rate.
  Sends still waiting for their answer count as accepted: a refusal comes back at once.
- From then on a model of the bucket (the learned burst and rate, emptied at each 429) admits
  a send when it holds one request: waits are the refill of one request, and what refills
  during a pause goes out at once after it, as the real bucket allows. Each send the rate
  held back that is accepted raises the rate (the probe above the estimate): slowly at first,
  faster the longer nothing refutes it, slower the more requests the estimate rests on. A 429
  tightens it to what was accepted since the anchor, a span that only grows, so the estimate
  converges and each 429 is rarer than the one before. Without a `Retry-After`, no worker
  waits longer than that refill of one request.
- A measurement that drained the whole burst is only a floor (the bucket was full, refill was
  lost): the rate then ramps up from it, `_RAMP` per accepted send, until a 429 measures it:
  the rate at the 429 is at least what the sends accepted over any recent span needed beyond
  a full burst (not the last rate accepted: the bucket saved while the ramp was below it).
  A burst of 1 is always drained so: one request per first pause is taken for that floor at
  once, without the 429 that would measure it (dropped if the next send is refused). Its
  ramp climbs faster (it saves nothing to hide an overshoot in: the 429 that ends the ramp
  costs the same either way), the fastest spacing it accepted is then the rate, and nothing
  probes above it (each probe would cost a 429).
- Nothing accepted after a pause: the refill is slower than thought, or the provider counts
  in windows. The pause grows to the longest refill of one request a burst allows, then to
  the end of the minute that opened with the window's first accepted request, or of the
  clock's minute (fixed windows start at one of the two), whichever comes first. A send
  accepted there shows a fixed window (as does a `Retry-After` longer than any per-minute
  bucket's refill of one request): from then on a window's count (the burst) goes out, and
  the next send waits for the window to close. A `Retry-After` proved too short (refused
  again) is waited longer the next time: some providers charge refused requests too.

All times are trio clock seconds; nothing here sleeps or touches I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from crawl4ai_llm_docs.llm.limits.buckets import MINUTE, Bucket
from crawl4ai_llm_docs.llm.limits.permits import Permit, VerdictKind

PROBE_GAP_S = 0.025  # between sends while the limit is unknown
_MAX_GAP_S = 0.5  # ... or 1.5 x a 429's round trip, up to this
_MAX_STREAM_GAP_S = 0.1  # ... or 1.5 x the fastest stream's headers, up to this (see
# `answer_started`: a longer one would slow the first sends to a provider with no limit)
PROBE_SENDS = 64  # spacing stops after this many sends without a 429 (no limit, it seems)
_FIRST_PAUSE_S = 2.0  # the longest first pause after a bare 429
_MEASURE_BURST = 3  # ... after any first 429, if the burst is at least this (see `answered`)
# A measured rate rises by this x n^2 / m after n held-back sends accepted since it was
# measured from m accepted ones: slowly at first, faster the longer nothing refutes it, and
# slower the more requests it rests on (a 429 measures it anew).
_CREEP = 5e-5
_RAMP = 0.1  # ... or by this share while the rate is only a floor
_RAMP_ONE = 0.25  # ... for a burst of one (see `_ramp`)
_HELD_BACK = 1.25  # a send the learned bucket held back goes out with about one request in it
_WINDOW_MARGIN_S = 0.25  # send this long after a window is expected to close
_RECENT = 256  # sends remembered for `_needed_rate`

Mode = Literal["probing", "measuring", "paced", "ramping", "window"]
WindowStart = Literal["clock", "first request"]  # a window opens on the minute, or with a request


class SilentRate:
    """A silent provider's burst and rate; see the module docstring."""

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        self._wall_clock = wall_clock  # fixed windows may follow the clock's minutes
        self.mode: Mode = "probing"
        self.gap = PROBE_GAP_S  # from a 429's round trip
        self._stream_gap = 0.0  # from the round trip of a stream's headers
        self._streamed = False  # answers are streamed: their headers come back early
        self.burst: float | None = None
        self.model: Bucket | None = None  # the bucket as learned (paced and ramping)
        self.window_s: float | None = None  # set once a fixed window was seen to close
        self._sends = 0
        self._last_send = -math.inf
        self._first_ok: float | None = None  # the first accepted send since a window closed
        self._anchor: tuple[int, float] = (0, 0.0)  # (seq, sent_at) of a 429: bucket empty
        self._refused_since = 0  # refusals of sends made after the anchor
        self._pause = 0.0  # the last pause a bare 429 asked for
        self._missed = 0  # pauses in a row after which the next send was refused too
        self._waited_window: WindowStart | None = None  # the last pause ended where a
        # window that starts so would close
        self.window_start: WindowStart | None = None  # how the windows seen were aligned
        self._closes = -math.inf  # when the current window closes (window mode)
        self._window_sent = 0.0  # sends in the current window (window mode)
        self._idle = 0.0  # the longest time between two sends since the anchor
        self._estimate = 0.0  # the rate as last measured, before it crept up
        self._based_on = 1  # the sends accepted in the span it was measured over
        self._held_ok = 0  # held-back sends accepted since
        self._recent: dict[int, float] = {}  # seq -> sent_at of recent sends not refused
        self._guessed = False  # the rate is one request per first pause, unconfirmed
        self._paused = False  # a pause was asked for since the last send
        self._unanswered: tuple[int, float] | None = None  # (seq, sent_at) of the first
        # send after a pause, while its answer has not begun

    def answer_gap(self) -> float:
        """How long a refusal may take to come back: 1.5 x the round trip of the last 429 or
        stream's headers (at least 25 ms)."""
        return max(self.gap, self._stream_gap)

    @property
    def rate(self) -> float | None:
        return None if self.model is None else self.model.rate

    # --- admission ---------------------------------------------------------------------------

    def wait_s(self, now: float) -> tuple[float, bool]:
        """Seconds until the next send may go, and whether the learned rate says so (else
        the spacing of sends that makes each burst cost one 429)."""
        if self._unanswered is not None:
            after = self._unanswered[1] + _MAX_GAP_S - now
            if after > 0:  # woken when its answer begins
                return after, False
        if self.model is not None and self.mode in ("paced", "ramping"):
            return self.model.wait_s(now, 1, 0.0), True
        if self.mode == "window" and now < self._closes and self._window_sent >= (self.burst or 1):
            return self._closes + _WINDOW_MARGIN_S - now, True  # this window's count is used
        if self.mode != "probing" or self._sends < PROBE_SENDS:
            return self._last_send + self.answer_gap() - now, False
        return 0.0, False

    def dispatched(self, permit: Permit, now: float) -> None:
        self._sends += 1
        self._recent[permit.seq] = now
        if self._paused and self._streamed:
            self._unanswered = (permit.seq, now)
        self._paused = False
        if len(self._recent) > _RECENT:
            del self._recent[next(iter(self._recent))]
        self._idle = max(self._idle, now - self._last_send)
        self._last_send = now
        if self.mode == "window":
            if now >= self._closes:  # this send opens the next window
                self._closes, self._window_sent = self._window_close(now, now), 0.0
            self._window_sent += 1
        if self.model is not None:
            level = self.model.level_at(now)
            permit.silent_level = level
            self.model.take(now, 1)

    # --- feedback ----------------------------------------------------------------------------

    def answer_started(self, permit: Permit, round_trip: float) -> None:
        """A streamed answer's headers came back `round_trip` s after its send. A 429 comes
        back as soon (it is an answer's headers, without the text); sends closer together
        than that leave before the 429 that ends a burst is seen, and are refused with it:
        an echo, one more 429 per send. The latest one counts (a busy machine answers
        later now, not on average); a 429's own round trip is only known after the first."""
        self._stream_gap = min(_MAX_STREAM_GAP_S, 1.5 * max(0.0, round_trip))
        self._streamed = True
        self._heard(permit)

    def _heard(self, permit: Permit) -> None:
        if self._unanswered is not None and self._unanswered[0] == permit.seq:
            self._unanswered = None

    def answered(
        self, permit: Permit, kind: VerdictKind, retry_after: float | None, now: float, fresh: bool
    ) -> float | None:
        """Learn from one answer; for a 429, return the pause every worker should take.
        `fresh` = sent after the limiter's last reaction to a 429 (else an echo of it)."""
        self._heard(permit)
        pause = self._learn(permit, kind, retry_after, now, fresh)
        if pause:
            self._paused = True
        return pause

    def _learn(
        self, permit: Permit, kind: VerdictKind, retry_after: float | None, now: float, fresh: bool
    ) -> float | None:
        if kind == "ok":
            self._accepted(permit, now)
        if kind != "rate_limited":
            return None
        self._recent.pop(permit.seq, None)
        self.gap = max(self.gap, min(_MAX_GAP_S, 1.5 * (now - permit.sent_at)))
        seq0, sent0 = self._anchor
        after_anchor = self.mode != "probing" and permit.seq > seq0
        accepted = permit.seq - seq0 - 1 - self._refused_since
        self._refused_since += after_anchor
        if not fresh:  # an echo of a refusal already reacted to: no news
            return 0.0 if retry_after is None else retry_after
        if self.mode == "probing":
            self.burst = max(1.0, permit.seq - 1.0)  # every send before it was accepted
            self._reanchor(permit)
            self.mode = "measuring"
            if retry_after is not None and self._told_window(permit, now, retry_after):
                return retry_after
            pause = self._first_pause(now) if retry_after is None else retry_after
            if retry_after is not None and self.burst >= _MEASURE_BURST:
                # A short Retry-After ("1") leaves too few refilled requests to measure the
                # rate by; a burst of 3 holds a first pause's refill at up to 90/min.
                pause = max(retry_after, self._first_pause(now))
            if self.burst <= 1:  # sends after the pause can only drain it again: a floor
                self._guess_one_per(pause, now)
            return pause
        if self._told_window(permit, now, retry_after):
            return retry_after
        if self.mode == "window" and accepted >= 0.75 * (self.burst or 1.0):
            self._reanchor(permit)  # a window's worth again: wait for the next one
            return self._until_window(now, MINUTE)
        if self._guessed and accepted <= 0:  # not even one request refilled in the pause
            self.model, self.mode, self._guessed = None, "measuring", False
        if (accepted <= 0 or permit.sent_at <= sent0) and self.model is None:
            # Refused again after the pause: wait longer, even than a Retry-After that was
            # just proved too short (a provider may charge refused requests too).
            self._missed += 1
            return max(retry_after or 0.0, self._longer_pause(now))
        if accepted <= 0 or permit.sent_at <= sent0:  # refused at once after a fresh start
            assert self.model is not None
            self.model.rate /= 2
            self.model.level, self.model.at = 0.0, now
            self._reanchor(permit)
            return 0.0 if retry_after is None else retry_after
        self._measured(accepted, permit.sent_at - sent0, permit, now)
        return 0.0 if retry_after is None else retry_after

    def _told_window(self, permit: Permit, now: float, retry_after: float | None) -> bool:
        """A Retry-After longer than any per-minute bucket takes to refill one request: a
        window, closing then; count its requests from then on."""
        if retry_after is None or retry_after <= self.burst_refill_s() + 1.0:
            return False
        self.window_s, self.mode, self.window_start = MINUTE, "window", "first request"
        self._closes, self._window_sent = now + retry_after, math.inf
        self._reanchor(permit)
        return True

    def _accepted(self, permit: Permit, now: float) -> None:
        if permit.seq <= self._anchor[0]:
            # Sent before the last refusal: accepted in the window (or bucket) that refusal
            # closed, however late its answer (a long one) comes back. It says nothing of
            # when a window reopens, nor that the pause since was long enough.
            if self._first_ok is None:
                self._first_ok = permit.sent_at
            return
        if self._first_ok is None or self._missed or self._waited_window:
            self._first_ok = permit.sent_at  # a window (re)opened with this send, perhaps
            if self._missed and self._waited_window:
                self.window_s, self.mode = MINUTE, "window"
                self.window_start = self._waited_window
                self._closes = self._window_close(permit.sent_at, now)
                self._window_sent = self._sends - permit.seq + 1  # sent in it so far
        self._missed, self._waited_window = 0, None
        if permit.seq > self._anchor[0]:
            self._guessed = False
        level, model = permit.silent_level, self.model
        if model is None or level is None or level >= _HELD_BACK or permit.seq <= self._anchor[0]:
            return
        # Sent as soon as the rate allowed, and accepted: it may be higher; probe above it.
        if self.mode == "ramping":
            model.rate *= 1.0 + self._ramp()
        elif self.mode == "paced":
            # A bucket of one holds no savings to absorb a probe above its rate: each costs
            # a 429, so its measured floor is kept (a probe would cost more than it gains).
            self._held_ok += (self.burst or 1.0) > 1
            model.rate = self._estimate * (1.0 + _CREEP * self._held_ok**2 / self._based_on)

    def _measured(self, accepted: int, span: float, permit: Permit, now: float) -> None:
        """A refusal after `accepted` sends went through in `span` s since the anchor."""
        estimate, burst = accepted / span, self.burst or 1.0
        # A pause between sends long enough to refill the whole burst lost refill: what was
        # accepted then only bounds the rate from below.
        overflowed = self._idle > burst / estimate
        if self.model is not None and self.mode == "paced":
            # A 429 at the learned rate: it is within a request over the span measured, so
            # half a request below it will not meet the next for about as long again.
            estimate = (accepted - 0.5 * (accepted >= 4)) / span
        # The whole burst came back: it may have been full, refill lost, so only a floor.
        floor = accepted >= burst - 0.5 and self.mode == "measuring"
        if self.model is None:
            self.model = Bucket(capacity=burst, rate=estimate)
        elif self.mode == "ramping":
            # The bucket saved while the ramp was below the rate, and accepted sends above it
            # for a while: the floor is what the accepted sends needed beyond a full burst
            # (for a burst of one, the fastest spacing it accepted).
            estimate = max(estimate, self._needed_rate(permit))
        elif overflowed:
            estimate = max(estimate, self.model.rate * (1.0 - _RAMP))
        if floor or self.mode == "ramping" or overflowed:
            self._reanchor(permit)  # measure the rate afresh from here
        self.model.rate = estimate
        self.model.level, self.model.at = 0.0, now  # it refused: empty
        self.mode = "ramping" if floor else "paced"
        self._estimate, self._based_on, self._held_ok = estimate, max(1, accepted), 0

    def _needed_rate(self, refused: Permit) -> float:
        """The lowest refill rate that accepts the recent sends before `refused`: for each of
        them, the sends accepted from it on, less a full burst, over the time from it to the
        last of them (the bucket held at most a burst when it went)."""
        burst, accepted, needed = self.burst or 1.0, 0, 0.0
        last: float | None = None
        for seq, sent_at in reversed(self._recent.items()):
            if seq >= refused.seq:
                continue
            accepted += 1
            last = sent_at if last is None else last
            if last > sent_at:
                needed = max(needed, (accepted - burst) / (last - sent_at))
        return needed

    def _guess_one_per(self, pause: float, now: float) -> None:
        """Ramp up from one request per `pause`, the bucket empty now: what sends after the
        pause would measure at the cost of a 429 when the burst is 1 (they drain it)."""
        self.model = Bucket(capacity=self.burst, rate=1.0 / max(pause, PROBE_GAP_S))
        self.model.level, self.model.at = 0.0, now
        self.mode, self._guessed = "ramping", True

    def _ramp(self) -> float:
        """A ramp above a bucket of one is refused at once (it saves nothing to hide the
        overshoot in): the 429 that ends it costs the same however fast it climbed."""
        return _RAMP_ONE if (self.burst or 1.0) <= 1 else _RAMP

    def _reanchor(self, permit: Permit) -> None:
        self._anchor, self._refused_since = (permit.seq, permit.sent_at), 0
        self._idle = 0.0

    # --- pauses after a bare 429 -------------------------------------------------------------

    def burst_refill_s(self) -> float:
        """The longest a request can take to refill (a burst is at most a minute's worth)."""
        return MINUTE / (self.burst or 1.0)

    def _first_pause(self, now: float) -> float:
        return self._until_window(now, min(_FIRST_PAUSE_S, self.burst_refill_s()))

    def _longer_pause(self, now: float) -> float:
        """Nothing was accepted after the last pause: wait longer, up to a window's end."""
        pause = 2 * max(self._pause, _FIRST_PAUSE_S / 2)
        if pause > self.burst_refill_s():  # slower than a per-minute bucket: a window?
            pause = MINUTE
        return self._until_window(now, pause)

    def _window_close(self, opened: float, now: float) -> float:
        """When the window a send at `opened` went in closes."""
        if self.window_start == "first request":
            return opened + MINUTE
        return opened + MINUTE - (self._wall_clock() - (now - opened)) % MINUTE

    def _until_window(self, now: float, pause: float) -> float:
        """`pause`, or less: until just after a minute that may be a fixed window closes
        (once a window was seen to close, only a minute aligned as that one was)."""
        closes: list[tuple[float, WindowStart]] = []
        if self.window_start in (None, "clock"):
            closes.append((now + MINUTE - self._wall_clock() % MINUTE, "clock"))
        if self._first_ok is not None and self.window_start in (None, "first request"):
            closes.append((self._first_ok + MINUTE, "first request"))
        self._waited_window = None
        for close, start in sorted(closes):
            wait = close + _WINDOW_MARGIN_S - now
            if 0 < wait <= pause:
                pause, self._waited_window = wait, start
                break
        self._pause = pause
        return pause
