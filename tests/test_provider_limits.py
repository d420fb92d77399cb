"""The fake provider's silent limit shapes: fixed windows, what a 429 carries, `ideal_span`.

Windows and the ideal are checked on `RateLimits` with an explicit clock; what a 429 says
goes over real loopback HTTP and is read back with the limiter's own parsers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from crawl4ai_llm_docs.llm.limits.headers import parse_rate_limit, retry_delay_from_body
from crawl4ai_llm_docs.testing.provider.limits import RateLimits, ideal_span
from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, parse_args, serve

GUARD = 10  # seconds; every I/O test runs under trio.fail_after(GUARD)
WALL = 1_704_067_217.3  # the wall clock at time 0: 17.3 s into a minute


@asynccontextmanager
async def running(**fields: Any) -> AsyncIterator[httpx.AsyncClient]:
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            handle: FakeProvider = await nursery.start(serve, make_config(fields))
            async with httpx.AsyncClient(base_url=handle.base_url, timeout=5) as client:
                yield client
            nursery.cancel_scope.cancel()


async def two_requests(**fields: Any) -> httpx.Response:
    """The second of two requests to a provider with a burst of 1: its 429."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with running(rpm=60, burst_requests=1, **fields) as client:
        first = await client.post("/chat/completions", json=body)
        second = await client.post("/chat/completions", json=body)
    assert (first.status_code, second.status_code) == (200, 429)
    return second


async def test_a_bare_429_says_nothing_about_when_to_come_back() -> None:
    refused = await two_requests(header_dialect="none", rate_limit_hint=False)
    assert "retry-after" not in refused.headers
    assert retry_delay_from_body(refused.content) is None  # the client's own reading
    assert "Rate limit reached" in refused.json()["error"]["message"]


async def test_a_silent_provider_may_still_send_retry_after() -> None:
    refused = await two_requests(header_dialect="none", retry_after="always")
    info = parse_rate_limit(refused.headers, now=0.0)
    assert info.retry_after_s == 1.0
    assert info.requests.remaining is None  # still no budgets
    assert retry_delay_from_body(refused.content) == 1.0  # "Please try again in 1s."


async def test_budget_headers_without_retry_after() -> None:
    refused = await two_requests(header_dialect="openai", retry_after="never")
    assert "retry-after" not in refused.headers
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_clock_minute_window_refuses_until_the_minute_turns() -> None:
    limits = RateLimits(make_config({"rpm": 3, "limit_window": "minute"}), 0.0, WALL)
    assert [limits.admit(0, t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    refusal = limits.admit(0, 3.0)
    assert refusal is not None
    assert refusal.wait == pytest.approx(60.0 - 17.3 - 3.0)  # until 42.7 s, the next minute
    assert limits.admit(0, 42.6) is not None
    assert limits.admit(0, 42.7) is None  # a new window: 3 more
    assert limits.requests is not None
    assert limits.requests.until_full(43.0) == pytest.approx(60.0 - 0.3)


def test_a_window_opened_by_a_request_lasts_a_minute_from_it() -> None:
    limits = RateLimits(make_config({"rpm": 2, "limit_window": "first_request"}), 0.0, WALL)
    assert limits.admit(0, 5.0) is None  # opens the window: it closes at 65 s
    assert limits.admit(0, 6.0) is None
    refusal = limits.admit(0, 30.0)
    assert refusal is not None
    assert refusal.wait == pytest.approx(35.0)
    assert limits.admit(0, 65.0) is None
    assert limits.admit(0, 125.0) is None  # the window opened at 65 closed at 125


@pytest.mark.parametrize(
    ("fields", "requests", "latency", "expected"),
    [
        # 10 at once (8 workers, then 2 more after the first answers) and then one a second.
        ({"rpm": 60, "burst_requests": 10}, 28, 1.0, 18.0),
        ({"rpm": 30, "burst_requests": 1}, 28, 1.0, 54.0),  # one every 2 s
        ({}, 28, 1.0, 3.0),  # no limit: 4 rounds of 8 workers, sends at 0, 1, 2, 3 s
        # 20 go in the first window (rounds at 0, 1, 2 s), the other 8 when it closes.
        ({"rpm": 20, "limit_window": "minute"}, 28, 1.0, 42.7),
        ({"rpm": 20, "limit_window": "first_request"}, 28, 1.0, 60.0),
    ],
)
def test_ideal_span(fields: dict[str, Any], requests: int, latency: float, expected: float) -> None:
    assert ideal_span(make_config(fields), requests, 8, latency, WALL) == pytest.approx(expected)


def test_the_shapes_are_flags_of_the_provider_command() -> None:
    _, config = parse_args(
        ["--limit-window", "minute", "--retry-after", "never", "--rate-limit-hint", "false"]
    )
    assert (config.limit_window, config.retry_after, config.rate_limit_hint) == (
        "minute",
        "never",
        False,
    )
