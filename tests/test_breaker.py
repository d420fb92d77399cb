"""CircuitBreaker transitions, probes and cool-downs, in exact virtual time (autojump_clock)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from crawl4ai_llm_docs.errors import CircuitBreakerOpenError, ProviderFatalError
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker

Change = tuple[str, str, str]


def breaker(changes: list[Change] | None = None, **kwargs: object) -> CircuitBreaker:
    options: dict[str, object] = {"threshold_percent": 50.0, "window": 20, "min_calls": 10}
    options |= kwargs
    return CircuitBreaker(
        on_change=None if changes is None else lambda *c: changes.append(c),
        **options,  # type: ignore[arg-type]
    )


def states(changes: list[Change]) -> list[tuple[str, str]]:
    return [(old, new) for old, new, _ in changes]


async def open_it(b: CircuitBreaker, failures: int = 10) -> None:
    for _ in range(failures):
        await b.before_call()
        b.record_failure("HTTP 500")


async def test_opens_at_threshold_over_the_window(autojump_clock: trio.testing.MockClock) -> None:
    changes: list[Change] = []
    b = breaker(changes)
    for _ in range(10):
        b.record_success()
    for _ in range(9):
        b.record_failure("HTTP 500")
    assert b.snapshot().state == "closed"  # 9 of 19 = 47 %
    b.record_failure("HTTP 502")
    assert b.snapshot().state == "open"  # 10 of 20 = 50 %
    assert changes == [
        (
            "closed",
            "open",
            "50% of the last 20 requests failed (last: HTTP 502); next probe in 10 s",
        )
    ]


async def test_min_calls(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker()
    for _ in range(9):
        b.record_failure("timeout")
    assert b.snapshot().state == "closed"  # 100 % but only 9 outcomes
    b.record_failure("timeout")
    assert b.snapshot().state == "open"


async def test_old_outcomes_leave_the_window(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(window=10, min_calls=5, threshold_percent=60.0)
    for _ in range(5):
        b.record_success()
        b.record_failure("x")  # never 60 % of the window
    assert b.snapshot().state == "closed"
    for _ in range(20):
        b.record_success()
    for _ in range(5):
        b.record_failure("x")  # 5 of the last 10: below 60 %
    assert b.snapshot().state == "closed"
    b.record_failure("x")
    assert b.snapshot().state == "open"


async def test_cool_down_then_one_probe_then_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    changes: list[Change] = []
    b = breaker(changes)
    await open_it(b)
    opened = trio.current_time()
    passed: list[tuple[int, float]] = []
    probe_may_finish = trio.Event()

    async def caller(i: int) -> None:
        async with b.guard():
            passed.append((i, trio.current_time() - opened))
            if len(passed) == 1:  # the probe
                await probe_may_finish.wait()
                b.record_success()
            else:
                b.record_success()

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(caller, i)
        await trio.sleep(9.999)
        assert passed == []  # nothing is sent while open
        assert b.snapshot().open_for_s == pytest.approx(0.001)
        await trio.sleep(0.001)
        await trio.testing.wait_all_tasks_blocked()
        assert len(passed) == 1  # exactly one probe, at exactly the end of the cool-down
        assert passed[0][1] == 10.0
        assert b.snapshot().state == "half-open"
        await trio.sleep(3)
        assert len(passed) == 1  # the others wait for the probe's outcome
        probe_may_finish.set()
    assert [t for _, t in passed[1:]] == [13.0] * 4
    assert states(changes) == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
    assert b.snapshot().outcomes == 4  # the window starts afresh after closing


async def test_failed_probe_reopens_with_a_longer_cool_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    changes: list[Change] = []
    b = breaker(changes, cooldown_s=10.0)
    await open_it(b)
    start = trio.current_time()
    await b.before_call()
    assert trio.current_time() - start == 10.0
    b.record_failure("HTTP 503")
    assert b.snapshot().state == "open"
    await b.before_call()
    assert trio.current_time() - start == 10.0 + 20.0  # doubled
    b.record_success()
    assert b.snapshot().state == "closed"
    assert states(changes) == [
        ("closed", "open"),
        ("open", "half-open"),
        ("half-open", "open"),
        ("open", "half-open"),
        ("half-open", "closed"),
    ]
    assert changes[2][2] == "probe failed: HTTP 503; next probe in 20 s"


async def test_cool_down_is_capped(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker(cooldown_s=10.0, max_cooldown_s=15.0, max_failed_probes=5)
    await open_it(b)
    start = trio.current_time()
    for _ in range(3):
        await b.before_call()
        b.record_failure("x")
    await b.before_call()
    assert trio.current_time() - start == 10.0 + 15.0 + 15.0 + 15.0


async def test_repeated_failed_probes_stop_every_waiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    changes: list[Change] = []
    b = breaker(changes, max_failed_probes=3)
    await open_it(b)
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            async with b.guard():
                b.record_failure("HTTP 500")  # whoever gets through is a probe, and fails
        except CircuitBreakerOpenError as error:
            errors.append(error)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(waiter)
    assert trio.current_time() - start == 10.0 + 20.0 + 40.0
    assert len(errors) == 3  # three probes failed; the other three waiters raise
    assert isinstance(errors[0], ProviderFatalError)
    assert "3 probe requests failed in a row" in str(errors[0])
    assert changes[-1][:2] == ("half-open", "open")
    with pytest.raises(CircuitBreakerOpenError):
        await b.before_call()
    assert b.snapshot().stopped is not None


async def test_trip_fails_waiters_at_once(autojump_clock: trio.testing.MockClock) -> None:
    changes: list[Change] = []
    b = breaker(changes)
    await open_it(b)
    failed_at: list[float] = []

    async def waiter() -> None:
        with pytest.raises(CircuitBreakerOpenError, match="invalid API key"):
            await b.before_call()
        failed_at.append(trio.current_time())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(waiter)
        await trio.sleep(2)
        b.trip("invalid API key (HTTP 401)")
    assert failed_at == [start + 2] * 3
    assert changes[-1] == ("open", "open", "invalid API key (HTTP 401); stopping")


async def test_trip_from_closed(autojump_clock: trio.testing.MockClock) -> None:
    b = breaker()
    b.trip("quota exhausted")
    b.trip("again")  # the first reason stays
    assert b.snapshot().state == "open"
    with pytest.raises(CircuitBreakerOpenError, match="quota exhausted"):
        async with b.guard():
            pass


async def test_disabled_is_a_no_op(autojump_clock: trio.testing.MockClock) -> None:
    changes: list[Change] = []
    b = breaker(changes, enabled=False)
    for _ in range(100):
        await b.before_call()
        b.record_failure("HTTP 500")
    assert b.snapshot().state == "closed"
    assert trio.current_time() == 0.0
    assert changes == []
    b.trip("invalid API key")  # a fatal stop is not a failure rate: it still stops the run
    with pytest.raises(CircuitBreakerOpenError):
        await b.before_call()


async def test_stale_outcomes_do_not_move_an_open_breaker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker()
    await open_it(b)
    b.record_success()  # a request sent before it opened, finishing late
    assert b.snapshot().state == "open"
    start = trio.current_time()

    async def probe() -> None:
        async with b.guard():
            await trio.sleep(5)
            b.record_success()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe)
        await trio.sleep(12)
        assert b.snapshot().state == "half-open"
        b.record_failure("late failure from another task")  # not the probe: ignored
        assert b.snapshot().state == "half-open"
    assert b.snapshot().state == "closed"
    assert trio.current_time() - start == 15.0


async def test_a_probe_that_gives_no_outcome_lets_another_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    b = breaker()
    await open_it(b)
    with trio.move_on_after(12):  # the probe is cancelled mid-request
        async with b.guard():
            await trio.sleep_forever()
    assert b.snapshot().state == "half-open"
    async with b.guard():  # not stuck: this caller becomes the probe at once
        assert trio.current_time() == 12.0
        b.record_success()
    assert b.snapshot().state == "closed"


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        CircuitBreaker(window=0)
    with pytest.raises(ValueError, match="threshold_percent"):
        CircuitBreaker(threshold_percent=150)
