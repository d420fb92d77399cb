"""`CircuitBreaker`: stop sending while the provider keeps failing, probe, give up for good.

::

    closed ──failure share of the last `window` outcomes >= threshold (>= min_calls)──► open
    open ──cool-down over: the first caller becomes the one probe──► half-open
    half-open ──the probe succeeds──► closed
    half-open ──the probe fails──► open again, the cool-down doubled (up to max_cooldown_s)
    half-open ──`max_failed_probes` probes failed in a row──► open for good
    any ──trip(reason)──► open for good (auth, quota: waiting cannot help)

Open for good means every waiting and later caller raises `CircuitBreakerOpenError`; the
pipeline turns that into exit code 3 and cancels the LLM stage, keeping finished work.
Rate-limit waits are flow control, not failures: callers record only real outcomes.
`enabled=False` makes the breaker a no-op, except `trip`, which always stops the run.

Use, in the task that sends the request::

    async with breaker.guard():          # waits while open; one probe passes in half-open
        response = await send()
        if response_ok: breaker.record_success()
        else: breaker.record_failure(f"HTTP {status}")   # inside the guard: it may be the probe
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import msgspec
import trio

from crawl4ai_llm_docs.errors import CircuitBreakerOpenError

State = Literal["closed", "open", "half-open"]


class BreakerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    state: State
    failure_percent: float  # over the recent outcomes window
    outcomes: int
    failed_probes: int
    open_for_s: float  # cool-down left (0 unless open)
    stopped: str | None  # why it is open for good


class CircuitBreaker:
    """Failure-rate circuit breaker for one provider; see the module docstring."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        threshold_percent: float = 50.0,
        window: int = 20,
        min_calls: int = 10,
        cooldown_s: float = 10.0,
        max_cooldown_s: float = 120.0,
        max_failed_probes: int = 3,
        on_change: Callable[[str, str, str], None] | None = None,
    ) -> None:
        if window < 1 or min_calls < 1 or max_failed_probes < 1:
            raise ValueError("window, min_calls and max_failed_probes must be at least 1")
        if not 0.0 <= threshold_percent <= 100.0:
            raise ValueError(f"threshold_percent must be within 0-100, not {threshold_percent}")
        self.enabled = enabled
        self._threshold = threshold_percent
        self._min_calls = min(min_calls, window)  # a full window must be able to open it
        self._cooldown_s = cooldown_s
        self._max_cooldown_s = max(cooldown_s, max_cooldown_s)
        self._max_failed_probes = max_failed_probes
        self._on_change = on_change
        self._outcomes: deque[bool] = deque(maxlen=window)  # True = success
        self._state: State = "closed"
        self._open_until = 0.0
        self._probe: trio.lowlevel.Task | None = None
        self._failed_probes = 0
        self._stopped: str | None = None
        self._changed = trio.Event()

    @property
    def state(self) -> State:
        return self._state

    def guard(self) -> _Guard:
        """`async with breaker.guard():` = `before_call()`, and frees an unreported probe."""
        return _Guard(self)

    def raise_if_stopped(self) -> None:
        """Raise `CircuitBreakerOpenError` if the breaker is open for good.

        For a caller that passed `before_call` and then waited elsewhere (for a rate-limiter
        slot): the breaker may have stopped meanwhile, and the request must not go out.
        """
        if self._stopped is not None:
            raise CircuitBreakerOpenError(f"Stopped sending to the LLM provider: {self._stopped}.")

    async def before_call(self) -> None:
        """Return when a request may be sent; raise `CircuitBreakerOpenError` if never."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self.raise_if_stopped()
            if not self.enabled or self._state == "closed":
                return
            task = trio.lowlevel.current_task()
            if self._state == "open":
                if trio.current_time() >= self._open_until:
                    self._set_state("half-open", "cool-down over, sending one probe")
                    continue
                with trio.move_on_at(self._open_until):  # or earlier, if trip() stops it all
                    await self._changed.wait()
            elif self._probe is None or self._probe is task:
                self._probe = task
                return
            else:
                await self._changed.wait()  # for the probe's outcome

    def record_success(self) -> None:
        if not self.enabled or self._stopped is not None:
            return
        if self._state == "closed":
            self._outcomes.append(True)
        elif self._is_probe():
            self._probe = None
            self._failed_probes = 0
            self._outcomes.clear()
            self._set_state("closed", "probe succeeded")

    def record_failure(self, reason: str) -> None:
        if not self.enabled or self._stopped is not None:
            return
        if self._state == "closed":
            self._outcomes.append(False)
            calls = len(self._outcomes)
            percent = 100.0 * self._outcomes.count(False) / calls
            if calls >= self._min_calls and percent >= self._threshold:
                why = f"{percent:.0f}% of the last {calls} requests failed (last: {reason})"
                self._open(why)
        elif self._is_probe():
            self._probe = None
            self._failed_probes += 1
            if self._failed_probes >= self._max_failed_probes:
                self._stop(f"{self._failed_probes} probe requests failed in a row (last: {reason})")
            else:
                self._open(f"probe failed: {reason}")

    def trip(self, reason: str) -> None:
        """Open for good at once: sending more cannot help (bad key, no quota)."""
        if self._stopped is None:
            self._stop(reason)

    def snapshot(self) -> BreakerSnapshot:
        calls = len(self._outcomes)
        open_for = self._open_until - trio.current_time() if self._state == "open" else 0.0
        return BreakerSnapshot(
            state=self._state,
            failure_percent=100.0 * self._outcomes.count(False) / calls if calls else 0.0,
            outcomes=calls,
            failed_probes=self._failed_probes,
            open_for_s=max(0.0, open_for) if self._stopped is None else 0.0,
            stopped=self._stopped,
        )

    def _is_probe(self) -> bool:
        return self._state == "half-open" and self._probe is trio.lowlevel.current_task()

    def _open(self, reason: str) -> None:
        cooldown = min(self._cooldown_s * 2**self._failed_probes, self._max_cooldown_s)
        self._open_until = trio.current_time() + cooldown
        self._set_state("open", f"{reason}; next probe in {cooldown:g} s")

    def _stop(self, reason: str) -> None:
        self._stopped = reason
        self._probe = None
        self._set_state("open", f"{reason}; stopping", force=True)

    def _release_probe(self, task: trio.lowlevel.Task) -> None:
        """The probe left without an outcome (cancelled, or an error): let another one go."""
        if self._state == "half-open" and self._probe is task:
            self._probe = None
            self._notify()

    def _set_state(self, state: State, reason: str, *, force: bool = False) -> None:
        old, self._state = self._state, state
        self._notify()
        if (force or old != state) and self._on_change is not None:
            self._on_change(old, state, reason)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


class _Guard:
    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    async def __aenter__(self) -> None:
        await self._breaker.before_call()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._breaker._release_probe(trio.lowlevel.current_task())
