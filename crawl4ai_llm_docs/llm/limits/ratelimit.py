"""`AdaptiveRateLimiter`: one per run, shared by every LLM worker.

It sends requests as fast as the provider allows and never faster:

- Concurrency: a `trio.CapacityLimiter` whose size is the AIMD effective limit (halved on a 429
  or overload, +1 after that many successes in a row, between 1 and `max_concurrent`). A 429
  from a provider that never sent budgets does not halve it: the learned rate explains it.
- Proactive budgets: a model of the provider's request and token buckets, reset from every
  answer's headers (`headers.parse_rate_limit`). The provider measured `remaining` when that
  request arrived, so the sends made since are replayed on top, refilling at the advertised
  rate. A request waits while it would dip into the `buffer_percent` reserve of the bucket;
  `estimated_tokens` are reserved before sending. With `slow_start=True`, one request goes
  alone until a first answer shows the budgets (off by default: it costs a round trip).
- Static caps (`requests_per_minute`, `tokens_per_minute`) for providers without headers:
  smooth spacing with a small burst, and never more than the cap in any 60 s.
- Reactive pauses: a 429/503/529 holds every worker until its Retry-After (or a growing
  backoff), not only the one that got it. Waiters then leave one by one with a little jitter.
- Learned pacing (`pacing.Pacer`): per-minute headers read as a rate with a learned burst,
  where they describe a per-minute view rather than the bucket that enforces; and, for
  providers that advertise nothing, the burst and rate (or fixed window) learned from what
  they accept and refuse (`silent.SilentRate`), which also chooses the pause after their 429s.
- Waits shorter than 10 ms are counted in the snapshot but not reported to `on_wait`.

`adaptive=False` keeps only the static caps, the pauses and a fixed `max_concurrent`.
Nothing polls: a waiter sleeps until a deadline computed from the state, or until a response
changes the state.

The retry loop in `llm/client.py` (inside `breaker.guard()`, so a caller waiting for the
circuit holds no slot)::

    for attempt in range(max_retries + 1):
        async with limiter.slot(prompt_tokens + max_tokens) as permit:
            try:
                with trio.fail_after(request_timeout):
                    response = await http.post(url, json=payload)
            except trio.TooSlowError:
                permit.observe_failure("timeout")
                continue
            except httpx.TransportError:
                permit.observe_failure("connection")
                continue
            verdict = permit.observe(response.status_code, response.headers, response.content)
        if verdict.ok:
            permit.observe_usage(usage.total_tokens)  # settles the token reservation
            return response
        if not verdict.retryable:
            raise ...  # 4xx, or verdict.kind == "quota_exhausted": fatal
        # rate_limited / overloaded: no sleep here, the next slot() waits out the shared pause
        # (verdict.retry_after_s says how long the server asked for; log it).
        # server_error: sleep your own short backoff before retrying.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping

import trio

from crawl4ai_llm_docs.llm.limits.buckets import EPS as _EPS
from crawl4ai_llm_docs.llm.limits.buckets import Bucket, StaticCap
from crawl4ai_llm_docs.llm.limits.headers import parse_rate_limit, retry_delay_from_body
from crawl4ai_llm_docs.llm.limits.pacing import Pacer
from crawl4ai_llm_docs.llm.limits.permits import (
    FailureKind,
    LimiterSnapshot,
    Permit,
    Slot,
    Verdict,
    WaitEvent,
    WaitReason,
    classify,
)

__all__ = ["AdaptiveRateLimiter", "LimiterSnapshot", "Permit", "Verdict", "WaitEvent"]

_JITTER_S = 0.05  # spread released waiters so they do not hit the provider in one burst
_BACKOFF_S = (1.0, 60.0)  # first and largest pause after a 429 that names no delay
_EVENT_MIN_WAIT_S = 0.01  # shorter waits are scheduling noise, not a `rate_limit` event


class AdaptiveRateLimiter:
    """Admits LLM requests as fast as the provider allows; see the module docstring.

    From the `[parallel]` config: `max_concurrent` = max_concurrent_requests, `adaptive` =
    enable_adaptive_rate_limiting, `buffer_percent` = rate_limit_buffer_percent, and the
    static `requests_per_minute` / `tokens_per_minute` (0 = none). `on_wait` gets every wait
    (the `rate_limit` event), `on_change` every new effective concurrency. `wall_clock` turns
    absolute reset dates into delays; `max_pause_s` caps any one Retry-After pause.
    """

    def __init__(
        self,
        *,
        max_concurrent: int = 4,
        adaptive: bool = True,
        buffer_percent: float = 10.0,
        requests_per_minute: int = 0,
        tokens_per_minute: int = 0,
        rng: random.Random | None = None,
        on_wait: Callable[[WaitEvent], None] | None = None,
        on_change: Callable[[int], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        max_pause_s: float = 900.0,
        slow_start: bool = False,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if not 0.0 <= buffer_percent <= 100.0:
            raise ValueError(f"buffer_percent must be within 0-100, not {buffer_percent}")
        self.max_concurrent = max_concurrent
        self.adaptive = adaptive
        self._reserve = buffer_percent / 100.0
        self._rng = rng or random.Random()
        self._on_wait = on_wait
        self._on_change = on_change
        self._wall_clock = wall_clock
        self._max_pause_s = max_pause_s
        self._effective = max_concurrent
        # A further limit on requests in flight, read at every admission (llm/concurrency.py).
        self.concurrency_cap: Callable[[], int] | None = None
        self._capacity = trio.CapacityLimiter(max_concurrent)
        self._gate = trio.Lock()  # FIFO: waiters leave one at a time
        self._gate_reason: WaitReason = "concurrency"
        self._blocks = 0  # times a request at the gate had to wait
        self._changed = trio.Event()
        self._requests = Bucket()
        self._tokens = Bucket()
        # Static caps start full; the burst is a tenth of a minute's worth (at most 10 requests).
        rpm, tpm = requests_per_minute, tokens_per_minute
        self._rpm = StaticCap(rpm, min(10.0, max(1.0, rpm / 10))) if rpm > 0 else None
        self._tpm = StaticCap(tpm, max(1.0, tpm / 10)) if tpm > 0 else None
        self._paused_until = -math.inf
        self._pacer = Pacer(self._reserve, wall_clock)  # per-minute headers; silent providers
        self._seq = 0  # requests dispatched so far
        self._reacted_seq = 0  # signals from requests sent before our last reaction are echoes
        self._strikes = 0  # rate-limit reactions in a row, for the default backoff
        self._successes = 0
        self._in_flight = 0
        # Optional slow start: until a first answer shows the budgets, one request at a time.
        # Off by default: it costs a whole round trip (seconds per page with real models) on
        # every run, while a first wave that overshoots a small budget costs a few 429s that
        # the reactive pause absorbs, and then the budgets are known.
        self._learning = adaptive and slow_start
        self._waits = 0
        self._wait_s = 0.0
        self._rate_limited = 0

    @property
    def effective_limit(self) -> int:
        return self._effective

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def slot(self, estimated_tokens: int = 0) -> Slot:
        """`async with limiter.slot(tokens) as permit:` waits until the request may be sent.

        `estimated_tokens` (prompt estimate + max_tokens) is reserved from the token budgets.
        Cancelling the wait leaves nothing behind.
        """
        return Slot(self, estimated_tokens)

    def snapshot(self) -> LimiterSnapshot:
        now = trio.current_time()

        def left(bucket: Bucket) -> int | None:
            level = bucket.level_at(now) if self.adaptive else None
            return None if level is None else max(0, math.floor(level + _EPS))

        paused = self._paused_until if self._paused_until > now else None
        return LimiterSnapshot(
            in_flight=self._in_flight,
            effective_limit=self._effective,
            max_concurrent=self.max_concurrent,
            paused_until=paused,
            paused_for_s=0.0 if paused is None else paused - now,
            requests_remaining=left(self._requests),
            requests_limit=self._requests.limit if self.adaptive else None,
            tokens_remaining=left(self._tokens),
            tokens_limit=self._tokens.limit if self.adaptive else None,
            waits=self._waits,
            wait_s_total=self._wait_s,
            rate_limited=self._rate_limited,
            **self._pacer.describe(),
        )

    # --- admission ---------------------------------------------------------------------------

    async def _acquire(self, permit: Permit) -> None:
        start = trio.current_time()
        try:
            self._capacity.acquire_on_behalf_of_nowait(permit)
        except trio.WouldBlock:
            await self._capacity.acquire_on_behalf_of(permit)
            self._waited("concurrency", trio.current_time() - start, None, None)
        try:
            await self._admit(permit)
        except BaseException:
            self._capacity.release_on_behalf_of(permit)
            raise

    async def _admit(self, permit: Permit) -> None:
        queued, blocks = trio.current_time(), self._blocks
        async with self._gate:
            # Held back behind a waiting request: leave a little after it, not in one herd.
            contended = self._blocks != blocks
            reason, remaining, reset = self._gate_reason, None, None
            while True:
                now = trio.current_time()
                wait, why, left, full_in = self._plan(now, permit.estimated_tokens)
                if wait <= 0 and not contended:
                    break
                if wait > 0:
                    reason, remaining, reset = why, left, full_in
                    self._gate_reason = why
                    self._blocks += 1
                contended = False  # a released waiter still leaves after a little jitter
                # (not the spacing of sends to a silent provider: that is already spread)
                jitter = 0.0 if why == "probe" and wait > 0 else self._rng.uniform(0, _JITTER_S)
                with trio.move_on_at(now + max(wait, 0.0) + jitter):
                    await self._changed.wait()
            if now > queued:
                self._waited(reason, now - queued, remaining, reset)
            self._dispatch(permit, now)

    def _plan(self, now: float, tokens: int) -> tuple[float, WaitReason, int | None, float | None]:
        """The longest wait any constraint imposes now, why, and that budget's state."""
        plans: list[tuple[float, WaitReason, Bucket | None]] = [(0.0, "concurrency", None)]
        if self._paused_until > now:
            plans.append((self._paused_until - now, "retry_after", None))
        cap = self._effective if self.concurrency_cap is None else self.concurrency_cap()
        if self._in_flight >= (1 if self._learning else min(self._effective, cap)):
            plans.append((math.inf, "concurrency", None))  # woken when a request finishes
        if self._rpm is not None:
            plans.append((self._rpm.wait_s(now, 1), "static_rpm", self._rpm.bucket))
        if self.adaptive:
            plans.extend(self._pacer.plan(now))
        if self._tpm is not None and tokens:
            plans.append((self._tpm.wait_s(now, tokens), "static_tpm", self._tpm.bucket))
        if self.adaptive:
            plans.append((self._requests.wait_s(now, 1, self._reserve), "requests", self._requests))
            plans.append((self._tokens.wait_s(now, tokens, self._reserve), "tokens", self._tokens))
        wait, why, bucket = max(plans, key=lambda plan: plan[0])
        if bucket is None:
            return wait, why, None, wait if why == "retry_after" else None
        level = bucket.level_at(now)
        remaining = None if level is None else max(0, math.floor(level + _EPS))
        full_in = None
        if level is not None and bucket.capacity is not None and bucket.rate > 0:
            full_in = max(0.0, bucket.capacity - level) / bucket.rate
        elif bucket.reset_at is not None:
            full_in = bucket.reset_at - now
        return wait, why, remaining, full_in

    def _dispatch(self, permit: Permit, now: float) -> None:
        self._seq += 1
        permit.seq, permit.sent_at = self._seq, now
        tokens = permit.estimated_tokens
        taken = permit.entries
        taken["requests"] = self._requests.take(now, 1, self._seq)
        taken["tokens"] = self._tokens.take(now, tokens, self._seq)
        if self._rpm is not None:
            taken["static_rpm"] = self._rpm.take(now, 1)
        if self.adaptive:
            self._pacer.dispatched(permit, now)
        if self._tpm is not None:
            taken["static_tpm"] = self._tpm.take(now, tokens)
        self._in_flight += 1

    def _release(self, permit: Permit) -> None:
        if not permit.done:
            permit.done = True
            self._in_flight -= 1
            self._capacity.release_on_behalf_of(permit)
            self._notify()

    def _waited(
        self, reason: WaitReason, wait_s: float, remaining: int | None, reset_s: float | None
    ) -> None:
        self._waits += 1
        self._wait_s += wait_s
        if self._on_wait is not None and wait_s >= _EVENT_MIN_WAIT_S:
            self._on_wait(
                WaitEvent(
                    reason=reason,
                    wait_s=wait_s,
                    remaining=remaining,
                    reset_s=reset_s,
                    effective_concurrency=self._effective,
                )
            )

    def _notify(self) -> None:
        """Wake the waiter at the gate: the state it planned with has changed."""
        self._changed.set()
        self._changed = trio.Event()

    # --- feedback ----------------------------------------------------------------------------

    def _observe(
        self, permit: Permit, status: int, headers: Mapping[str, str], body: bytes
    ) -> Verdict:
        now = trio.current_time()
        info = parse_rate_limit(headers, now=self._wall_clock())
        kind = classify(status, body)
        if self.adaptive:
            if kind in ("rate_limited", "overloaded", "quota_exhausted"):  # refused: not counted
                self._requests.refund(now, permit.entries["requests"], 1)
                self._tokens.refund(now, permit.entries["tokens"], permit.estimated_tokens)
            self._requests.reconcile(info.requests, now, permit.seq)
            self._tokens.reconcile(info.tokens, now, permit.seq)
        self._learning = False
        retry_after = info.retry_after_s
        if retry_after is None and status >= 400:
            retry_after = retry_delay_from_body(body)
        pause, learned = 0.0, None
        if self.adaptive:  # before _back_off marks this burst as seen
            learned = self._pacer.answered(
                permit,
                kind,
                info,
                retry_after,
                now,
                self._requests,
                self._tokens,
                self._reacted_seq,
            )
        if kind in ("rate_limited", "overloaded"):
            self._rate_limited += 1
            pause = self._back_off(permit, now, retry_after, learned)
        elif kind == "ok":
            if permit.seq > self._reacted_seq:
                self._strikes = 0
            self._succeeded()
        self._notify()
        return Verdict(
            kind=kind, status=status, retry_after_s=retry_after, pause_s=pause, info=info
        )

    def _observe_failure(self, permit: Permit, kind: FailureKind) -> None:
        self._learning = False
        if kind == "overload":
            self._back_off(permit, trio.current_time(), None)
        elif kind == "timeout" and permit.seq > self._reacted_seq:
            self._reacted_seq = self._seq
            self._set_effective(max(1, self._effective // 2))
        self._successes = 0
        self._notify()

    def _observe_stream_start(self, permit: Permit) -> None:
        if self.adaptive:
            self._pacer.stream_started(permit, trio.current_time() - permit.sent_at)
            self._notify()  # a send held until this answer began may go

    def _observe_usage(self, permit: Permit, used: int) -> None:
        # Our own TPM cap is settled exactly. The provider's model only gets charged more:
        # whether it refunds an over-estimate shows in its next headers, not before.
        surplus = permit.estimated_tokens - used
        now = trio.current_time()
        if self._tpm is not None:
            self._tpm.refund(now, permit.entries["static_tpm"], surplus)
        if self.adaptive and surplus < 0:
            self._tokens.refund(now, permit.entries["tokens"], surplus)
        self._notify()

    def _back_off(
        self, permit: Permit, now: float, delay: float | None, learned: float | None = None
    ) -> float:
        """Pause every worker; halve concurrency once per burst of rate-limit answers.

        `learned`: the pause a silent provider's learned rate asks for; that rate explains
        the 429, so the concurrency is left as it is.
        """
        if permit.seq > self._reacted_seq:  # the first answer to a request sent since then
            self._reacted_seq = self._seq
            self._strikes = min(self._strikes + 1, 16)
            if learned is None:
                self._set_effective(max(1, self._effective // 2))
        if learned is not None:
            delay = learned
        elif delay is None:
            first, largest = _BACKOFF_S
            delay = min(first * 2 ** (max(self._strikes, 1) - 1), largest)
        delay = min(delay, self._max_pause_s)
        if now + delay >= self._paused_until:
            self._paused_until = now + delay
            return delay
        return self._paused_until - now

    def _succeeded(self) -> None:
        if self.adaptive and self._effective < self.max_concurrent:
            self._successes += 1
            if self._successes >= self._effective:  # additive increase: +1 per window
                self._set_effective(self._effective + 1)

    def _set_effective(self, limit: int) -> None:
        if not self.adaptive or limit == self._effective:
            return
        self._effective = limit
        self._capacity.total_tokens = limit
        self._successes = 0
        if self._on_change is not None:
            self._on_change(limit)
