"""QueueAwareLimit against simulated servers, in exact virtual time (autojump_clock).

The simulated server has N slots served in arrival order (``trio.CapacityLimiter``), a time
to first token and a service time; the simulated client keeps ``limit.limit`` requests in
flight, like the rate limiter's admission does.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable

import pytest
import trio
import trio.testing

from crawl4ai_llm_docs.llm.limits.concurrency import QueueAwareLimit, attach
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter


class Result:
    def __init__(self) -> None:
        self.limits: list[int] = []  # the limit after each answer
        self.changes: list[tuple[int, int, str]] = []
        self.ends: list[float] = []


async def simulate(
    *,
    slots: float,
    service: Callable[[random.Random], float],
    ttft: Callable[[random.Random], float] = lambda _: 0.05,
    requests: int = 60,
    max_limit: int = 4,
    streamed: bool = True,
    seed: int = 1,
) -> Result:
    rng = random.Random(seed)
    result = Result()
    limit = QueueAwareLimit(
        max_limit=max_limit, on_change=lambda *change: result.changes.append(change)
    )
    server = trio.CapacityLimiter(slots)
    in_flight = 0
    finished = trio.Event()

    async def one() -> None:
        nonlocal in_flight, finished
        flight = limit.start(streamed=streamed)
        async with server:
            await trio.sleep(ttft(rng))
            limit.first_token(flight)
            await trio.sleep(service(rng))
        in_flight -= 1
        limit.finish(flight, "ok")
        result.limits.append(limit.limit)
        result.ends.append(trio.current_time())
        finished.set()
        finished = trio.Event()

    with trio.fail_after(100_000):
        async with trio.open_nursery() as nursery:
            for _ in range(requests):
                while in_flight >= limit.limit:
                    await finished.wait()
                in_flight += 1
                nursery.start_soon(one)
    return result


def settled(result: Result) -> list[int]:
    """The limits after the first quarter of the answers."""
    return result.limits[len(result.limits) // 4 :]


@pytest.mark.parametrize(("slots", "max_limit"), [(1, 4), (2, 4), (2, 8), (4, 8), (3, 12)])
async def test_settles_at_about_the_server_slots(
    autojump_clock: trio.testing.MockClock, slots: int, max_limit: int
) -> None:
    result = await simulate(slots=slots, service=lambda _: 3.0, max_limit=max_limit)
    after = settled(result)
    assert set(after) <= {slots, slots + 1}, result.limits
    assert statistics.mean(after) <= slots + 0.6
    # Within a few rounds: the first lowering comes with the first answers.
    first_low = next(i for i, value in enumerate(result.limits) if value <= slots + 1)
    assert first_low <= 2 * max_limit
    assert result.changes[0][1] < result.changes[0][0]  # the first change lowers it


async def test_single_slot_keeps_the_throughput_of_one_at_a_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result = await simulate(slots=1, service=lambda _: 3.0, requests=30)
    assert result.ends[-1] == pytest.approx(30 * 3.05, rel=0.02)


@pytest.mark.parametrize("max_limit", [1, 4, 20])
async def test_never_lowers_on_constant_latency(
    autojump_clock: trio.testing.MockClock, max_limit: int
) -> None:
    result = await simulate(slots=math.inf, service=lambda _: 3.0, max_limit=max_limit)
    assert result.changes == []
    assert set(result.limits) == {max_limit}


async def test_never_lowers_when_sizes_vary_but_nothing_queues(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Answers from 0.2 s to 20 s (pages differ): no queue at the server, no lowering."""
    result = await simulate(
        slots=math.inf,
        service=lambda rng: rng.uniform(0.2, 20.0),
        ttft=lambda rng: rng.uniform(0.2, 0.6),
        max_limit=8,
        requests=200,
    )
    assert min(result.limits) == 8, result.changes


async def test_not_streamed_leaves_the_limit_alone(autojump_clock: trio.testing.MockClock) -> None:
    result = await simulate(slots=1, service=lambda _: 3.0, streamed=False)
    assert result.changes == []


async def test_disabled_reports_the_maximum(autojump_clock: trio.testing.MockClock) -> None:
    limit = QueueAwareLimit(max_limit=6, enabled=False)
    flights = [limit.start(streamed=True) for _ in range(6)]
    limit.first_token(flights[0])
    await trio.sleep(30)
    for flight in flights:
        limit.finish(flight, "ok")
    assert limit.limit == 6


async def test_lowering_that_costs_throughput_is_undone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Waits for the first token that are not a queue of ours (every request waits long, at
    random): if a lower limit serves less, the old limit comes back and stays a while."""
    result = await simulate(
        slots=math.inf,
        service=lambda _: 2.0,
        ttft=lambda rng: 0.05 if rng.random() < 0.3 else rng.uniform(2.0, 6.0),
        max_limit=6,
        requests=300,
        seed=3,
    )
    reverted = [change for change in result.changes if "throughput fell" in change[2]]
    assert reverted, result.changes
    assert statistics.mean(result.limits) >= 4.0


async def test_errors_are_not_counted_but_timeouts_are(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limit = QueueAwareLimit(max_limit=4)
    served = limit.start(streamed=True)
    refused = [limit.start(streamed=True) for _ in range(3)]
    await trio.sleep(0.1)
    limit.first_token(served)
    for flight in refused:
        limit.finish(flight, "error")  # 429s: the AIMD limit's business
    await trio.sleep(3)
    limit.finish(served, "ok")
    assert limit.limit == 4
    waiting = [limit.start(streamed=True) for _ in range(3)]
    first = limit.start(streamed=True)
    await trio.sleep(0.1)
    limit.first_token(first)
    await trio.sleep(10)
    for flight in waiting:
        limit.finish(flight, "timeout")  # gave up in the server's queue: a queue
    assert limit.limit == 1
    limit.finish(first, "ok")
    limit.finish(first, "ok")  # a second report of the same request is ignored
    assert limit.limit == 1


async def test_attach_caps_the_rate_limiter(autojump_clock: trio.testing.MockClock) -> None:
    limiter = AdaptiveRateLimiter(max_concurrent=4)
    queue = QueueAwareLimit(max_limit=4)
    probe = attach(limiter, queue)
    queue._limit = 1  # as if it had seen a single-slot server
    admitted = 0

    async def one() -> None:
        nonlocal admitted
        async with limiter.slot():
            admitted += 1
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
        await trio.sleep(0.5)
        assert admitted == 1
        assert probe().effective_limit == 1
        assert probe().max_concurrent == 4
    assert admitted == 3


def test_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        QueueAwareLimit(max_limit=0)


async def test_waiting_in_order_behind_served_requests_is_excused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limit = QueueAwareLimit(max_limit=4)
    first = limit.start(streamed=True)
    await trio.sleep(0.01)
    second = limit.start(streamed=True)
    assert limit.excused(second) == 0.0  # no progress from the server yet
    await trio.sleep(20)  # `first` waits 20 s for its first token (a long prompt)
    limit.first_token(first)
    assert limit.excused(second) == pytest.approx(20.0)  # the server worked on `first`
    assert limit.excused(first) == 0.0  # it is served, nothing to excuse
    await trio.sleep(5)
    limit.progress()  # a chunk of `first`
    assert limit.excused(second) == pytest.approx(25.0)
    limit.finish(first, "ok")
    await trio.sleep(30)  # no progress since: the clock of `second` runs again
    assert limit.excused(second) == pytest.approx(25.0)
    third = limit.start(streamed=True)
    await trio.sleep(0.1)
    limit.first_token(third)  # sent after `second`, served before it: `second` is hung
    assert limit.excused(second) == 0.0
    assert QueueAwareLimit(max_limit=4, enabled=False).excused(second) == 0.0


async def test_probing_above_a_queueing_limit_backs_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On one slot, trying 2 again costs a queued request each time: it is tried after 2, 4,
    8 ... rounds, not every round."""
    result = await simulate(slots=1, service=lambda _: 3.0, requests=150, max_limit=4)
    increases = [change for change in result.changes if change[1] > change[0]]
    assert 2 <= len(increases) <= 6, result.changes
    assert result.limits.count(2) <= 12
