"""ChatClient's retry loop against httpx.MockTransport, in exact virtual time (autojump_clock)."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import msgspec
import pytest
import structlog
import trio
import trio.testing

from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import (
    CircuitBreakerOpenError,
    ProviderError,
    ProviderFatalError,
    RateLimitExceededError,
)
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.provider.client import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    RATE_LIMIT_RETRIES,
    ChatClient,
    Completion,
    NeedsSplitError,
    backoff_delay,
)

KEY = "sk-test-0123456789abcdefSECRET"
BASE_URL = "https://llm.example/v1/"
MESSAGES = [{"role": "system", "content": "Clean."}, {"role": "user", "content": "hello"}]
GUARD = 3600  # virtual seconds: the hang guard of every test (autojump makes waits instant)

Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


def ok(
    content: str = "cleaned", *, finish: str = "stop", model: str = "m-2024", **extra: Any
) -> Answer:
    body = {
        "id": "chatcmpl-1",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        **extra,
    }
    return raw(200, msgspec.json.encode(body))


def raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return answer


def error(
    status: int,
    code: str | None = None,
    message: str = "something went wrong",
    headers: dict[str, str] | None = None,
) -> Answer:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return raw(status, msgspec.json.encode(body), headers)


async def hang(request: httpx.Request) -> httpx.Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


def refuse(request: httpx.Request) -> Awaitable[httpx.Response]:
    raise httpx.ConnectError("connection refused", request=request)


class Script(httpx.MockTransport):
    """Answers from a list, the last one repeating; records requests, send times and closes."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__(self._handle)
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.closed = 0

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return await answer(request)

    async def aclose(self) -> None:
        self.closed += 1

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def make_client(
    script: Script,
    *,
    breaker: CircuitBreaker | None = None,
    api_key: str | None = KEY,
    max_retries: int = 6,
    seed: int = 1,
    **parallel: Any,
) -> ChatClient:
    llm = LLMConfig(base_url=BASE_URL, model="test-model", max_tokens=50, max_retries=max_retries)
    config = ParallelConfig(**parallel)
    limiter = AdaptiveRateLimiter(
        max_concurrent=config.max_concurrent_requests, rng=random.Random(seed)
    )
    return ChatClient(
        llm=llm,
        parallel=config,
        api_key=api_key,
        limiter=limiter,
        breaker=breaker or CircuitBreaker(enabled=False),
        rng=random.Random(seed),
        transport=script,
    )


async def complete(client: ChatClient) -> Completion:
    with trio.fail_after(GUARD):
        async with client:
            return await client.complete(MESSAGES, prompt_tokens=10, url="https://d/x", chunk=0)


async def test_success_decodes_body_and_usage(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(ok("# Title\n\ntext"))
    result = await complete(make_client(script))
    assert result == Completion(
        content="# Title\n\ntext",
        finish_reason="stop",
        prompt_tokens=11,
        completion_tokens=7,
        model="m-2024",
    )
    [request] = script.requests
    assert str(request.url) == "https://llm.example/v1/chat/completions"  # no double slash
    assert request.method == "POST"
    assert msgspec.json.decode(request.content) == {
        "model": "test-model",
        "messages": MESSAGES,
        "max_tokens": 50,
        "temperature": 0.1,
    }
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("crawl4ai-llm-docs/")


async def test_no_key_sends_no_authorization(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(ok())
    await complete(make_client(script, api_key=None))
    assert "authorization" not in script.requests[0].headers


async def test_missing_usage_and_content_are_tolerated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = b'{"choices": [{"message": {"content": null}}], "extra": [1, 2]}'
    result = await complete(make_client(Script(raw(200, body))))
    assert (result.content, result.finish_reason, result.prompt_tokens, result.model) == (
        "",
        "stop",
        0,
        "",
    )


@pytest.mark.parametrize(
    "bad",
    [
        b'{"choices": [{"message": {"content": "cut',  # truncated JSON
        b"<html>502 Bad Gateway</html>",
        b'{"choices": []}',
        b'{"choices": [{"finish_reason": "stop"}]}',  # no message
        b'{"choices": "nope"}',  # wrong type
    ],
)
async def test_unusable_200_is_retried(autojump_clock: trio.testing.MockClock, bad: bytes) -> None:
    script = Script(raw(200, bad), ok("fine"))
    breaker = CircuitBreaker(min_calls=1, window=1, threshold_percent=100)
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script, breaker=breaker))
    assert result.content == "fine"
    assert len(script.requests) == 2
    retries = [e for e in logs if e["event"] == "retry"]
    assert len(retries) == 1
    assert "malformed" in retries[0]["reason"] or "no choices" in retries[0]["reason"]
    # The bad answer counted as a failure (the breaker opened), the retry closed it again.
    assert breaker.state == "closed"


async def test_finish_reason_length_asks_for_a_split(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(ok("half an answ", finish="length"))
    breaker = CircuitBreaker(min_calls=1, window=1)
    with pytest.raises(NeedsSplitError, match="finish_reason=length"):
        await complete(make_client(script, breaker=breaker))
    assert len(script.requests) == 1  # waiting cannot help: no retry
    assert breaker.snapshot().failure_percent == 0  # a large chunk is no provider failure


async def test_context_length_error_asks_for_a_split(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(error(400, "context_length_exceeded", "maximum context length is 8192"))
    with pytest.raises(NeedsSplitError):
        await complete(make_client(script))
    assert len(script.requests) == 1


async def test_429_retry_after_pauses_then_succeeds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limited = error(429, "rate_limit_exceeded", "Rate limit reached", {"retry-after": "7"})
    script = Script(limited, ok())
    breaker = CircuitBreaker(min_calls=1, window=1)
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script, breaker=breaker, max_retries=0))
    assert result.content == "cleaned"
    [gap] = script.gaps()
    assert 7.0 <= gap <= 7.2  # the server's delay, plus the limiter's small release jitter
    # Flow control is neither a breaker failure nor a spent retry (max_retries=0 still retried).
    assert breaker.snapshot().failure_percent == 0
    [retry] = [e for e in logs if e["event"] == "retry"]
    assert "retry after 7 s" in retry["reason"]
    statuses = [e["status"] for e in logs if e["event"] == "llm_request"]
    assert statuses == [429, 200]


async def test_5xx_backs_off_with_full_jitter_under_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(*[error(500)] * 10, ok())
    result = await complete(make_client(script, max_retries=10, seed=7))
    assert result.content == "cleaned"
    gaps = script.gaps()
    assert len(gaps) == 10
    for attempt, gap in enumerate(gaps, start=1):
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        assert 0 <= gap <= ceiling + 1e-9, (attempt, gap)
    assert max(gaps) <= BACKOFF_CAP_S
    # Full jitter: not the deterministic exponential ladder.
    ladder = [min(BACKOFF_CAP_S, 2.0 ** (n - 1)) for n in range(1, 11)]
    assert gaps != pytest.approx(ladder)


def test_backoff_delay_is_full_jitter_capped() -> None:
    rng = random.Random(3)
    for attempt in range(1, 12):
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, rng) for _ in range(400)]
        assert min(delays) >= 0
        assert max(delays) <= ceiling
        # Spread over the whole range, not bunched at the top.
        assert min(delays) < 0.1 * ceiling
        assert max(delays) > 0.9 * ceiling


async def test_connection_error_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(refuse, refuse, ok())
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script))
    assert result.content == "cleaned"
    assert len(script.requests) == 3
    reasons = [e["reason"] for e in logs if e["event"] == "retry"]
    assert reasons == ["connection error: ConnectError"] * 2


async def test_per_attempt_timeout_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(hang, hang, ok())
    start = trio.current_time()
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script, request_timeout=5.0))
    assert result.content == "cleaned"
    assert len(script.requests) == 3
    # Each attempt gets its own 5 s, plus up to 1 s and 2 s of backoff.
    assert 10.0 <= trio.current_time() - start <= 13.1
    reasons = [e["reason"] for e in logs if e["event"] == "retry"]
    assert reasons == ["no answer within request_timeout (5 s)"] * 2


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (error(401, "invalid_api_key", "Incorrect API key provided: sk-t****CRET."), "401"),
        (error(403, None, "Project does not have access"), "403"),
        (error(404, "model_not_found", "The model `x` does not exist"), "model_not_found"),
        (error(404, None, "Invalid URL (POST /v1/chat/completions)"), "404"),
        (error(429, "insufficient_quota", "You exceeded your current quota"), "insufficient_quota"),
    ],
)
async def test_fatal_answers_stop_and_trip_the_breaker(
    autojump_clock: trio.testing.MockClock, answer: Answer, words: str
) -> None:
    script = Script(answer, ok())
    breaker = CircuitBreaker()
    with pytest.raises(ProviderFatalError, match=words):
        await complete(make_client(script, breaker=breaker))
    assert len(script.requests) == 1
    assert breaker.snapshot().stopped is not None
    with trio.fail_after(1):  # and nothing else gets through
        with pytest.raises(ProviderFatalError):
            await breaker.before_call()


async def test_fatal_even_when_the_breaker_is_disabled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(enabled=False)
    with pytest.raises(ProviderFatalError):
        await complete(make_client(Script(error(401, "invalid_api_key")), breaker=breaker))
    assert breaker.snapshot().stopped is not None


async def test_should_retry_false_fails_without_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(error(500, headers={"x-should-retry": "false"}), ok())
    with pytest.raises(ProviderError) as caught:
        await complete(make_client(script))
    assert type(caught.value) is ProviderError  # this chunk only, not the run
    assert len(script.requests) == 1


async def test_should_retry_true_retries_a_400(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(error(400, headers={"x-should-retry": "true"}), ok())
    assert (await complete(make_client(script))).content == "cleaned"
    assert len(script.requests) == 2


async def test_plain_400_fails_this_request_only(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(error(400, None, "bad temperature"), ok())
    with pytest.raises(ProviderError, match="bad temperature") as caught:
        await complete(make_client(script))
    assert not isinstance(caught.value, ProviderFatalError)
    assert len(script.requests) == 1


@pytest.mark.parametrize("max_retries", [0, 2, 5])
async def test_max_retries_is_respected(
    autojump_clock: trio.testing.MockClock, max_retries: int
) -> None:
    script = Script(error(502))
    with pytest.raises(ProviderError, match=f"gave up after {max_retries + 1} attempts"):
        await complete(make_client(script, max_retries=max_retries))
    assert len(script.requests) == max_retries + 1


async def test_429_storm_uses_its_own_budget(autojump_clock: trio.testing.MockClock) -> None:
    limited = error(429, "rate_limit_exceeded", "Rate limit reached", {"retry-after": "1"})
    script = Script(limited)
    breaker = CircuitBreaker(min_calls=1, window=1)
    with pytest.raises(RateLimitExceededError, match="still rate limited"):
        await complete(make_client(script, breaker=breaker, max_retries=1))
    # max_retries=1 would allow 2 attempts; rate limiting has its own, larger budget.
    assert len(script.requests) == RATE_LIMIT_RETRIES + 1
    assert breaker.state == "closed"
    assert min(script.gaps()) >= 1.0  # every attempt waited out the Retry-After


async def test_429s_do_not_spend_max_retries(autojump_clock: trio.testing.MockClock) -> None:
    limited = error(429, "rate_limit_exceeded", "Rate limit reached", {"retry-after": "2"})
    script = Script(limited, limited, error(500), limited, ok())
    assert (await complete(make_client(script, max_retries=1))).content == "cleaned"
    assert len(script.requests) == 5


async def test_pooled_client_is_reused(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(ok())
    client = make_client(script, enable_session_pooling=True)
    with trio.fail_after(GUARD):
        async with client:
            for chunk in range(5):
                await client.complete(MESSAGES, prompt_tokens=10, url="u", chunk=chunk)
            assert script.closed == 0  # one client, still open
        assert script.closed == 1  # closed once, when the run ends
    assert len(script.requests) == 5


async def test_without_pooling_each_request_has_its_own_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(ok())
    client = make_client(script, enable_session_pooling=False)
    with trio.fail_after(GUARD):
        async with client:
            for chunk in range(5):
                await client.complete(MESSAGES, prompt_tokens=10, url="u", chunk=chunk)
                assert script.closed == chunk + 1  # opened and closed around each request
        assert script.closed == 5


async def test_concurrent_requests_share_one_limiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(1)
        in_flight -= 1
        return await ok()(request)

    client = make_client(Script(slow), max_concurrent_requests=3)
    with trio.fail_after(GUARD):
        async with client, trio.open_nursery() as nursery:
            for chunk in range(12):
                nursery.start_soon(
                    lambda c=chunk: client.complete(MESSAGES, prompt_tokens=1, url="u", chunk=c)
                )
    assert peak == 3  # the limiter's max_concurrent: reached after slow start, never passed


def _secrets_in(values: Sequence[object]) -> list[str]:
    return [repr(v) for v in values if KEY in repr(v) or KEY[-12:] in repr(v)]


async def test_key_is_sent_but_never_logged_or_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A provider that echoes the whole key back in its error messages.
    echo = f"Incorrect API key provided: {KEY}."
    script = Script(
        error(500, None, f"upstream said {echo}"),
        raw(502, f"<html>{KEY}</html>".encode()),
        error(401, "invalid_api_key", echo),
    )
    breaker_events: list[tuple[str, str, str]] = []
    breaker = CircuitBreaker(on_change=lambda *c: breaker_events.append(c))
    with structlog.testing.capture_logs() as logs, pytest.raises(ProviderFatalError) as caught:
        await complete(make_client(script, breaker=breaker))
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in script.requests)
    assert len(script.requests) == 3
    assert logs, "the retry loop logs every attempt"
    assert _secrets_in(logs) == []
    assert _secrets_in([caught.value, caught.value.message, *caught.value.args]) == []
    assert _secrets_in(breaker_events) == []
    assert _secrets_in([breaker.snapshot()]) == []
    with pytest.raises(ProviderFatalError) as again:
        await breaker.before_call()
    assert _secrets_in([again.value]) == []


class SilentBucket:
    """A provider that enforces `per_minute` (bucket of `burst`) but advertises nothing: its
    429s carry only OpenAI's "Please try again in Ns." in the body."""

    def __init__(self, per_minute: int, burst: int, latency: float) -> None:
        self.rate, self.capacity, self.latency = per_minute / 60, burst, latency
        self.level, self.at = float(burst), trio.current_time()
        self.accepted: list[float] = []
        self.refused = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        now = trio.current_time()
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level < 1:
            self.refused += 1
            wait = max(1, math.ceil((1 - self.level) / self.rate))
            message = f"Rate limit reached for requests. Please try again in {wait}s."
            return await error(429, "rate_limit_exceeded", message)(request)
        self.level -= 1
        self.accepted.append(now)
        await trio.sleep(self.latency)
        return await ok()(request)


@pytest.mark.parametrize(
    ("per_minute", "burst", "latency"), [(60, 1, 1.0), (120, 10, 1.0), (600, 10, 0.3)]
)
async def test_silent_provider_429s_stop_once_its_rate_is_learned(
    autojump_clock: trio.testing.MockClock, per_minute: int, burst: int, latency: float
) -> None:
    provider = SilentBucket(per_minute, burst, latency)
    client = make_client(Script(provider), max_concurrent_requests=8)
    jobs = list(range(150))
    start = trio.current_time()

    async def worker() -> None:
        while jobs:
            chunk = jobs.pop()
            await client.complete(MESSAGES, prompt_tokens=1, url="u", chunk=chunk)

    with trio.fail_after(GUARD):
        async with client, trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(worker)
    elapsed = trio.current_time() - start
    ideal = (150 - burst) / (per_minute / 60)
    print(
        f"\n{per_minute} RPM burst {burst}: {provider.refused} 429s, {elapsed / ideal:.2f} x ideal"
    )
    assert len(provider.accepted) == 150
    # Without learning, AIMD alone keeps hitting the empty bucket: about a third are 429s.
    assert provider.refused <= 0.05 * (150 + provider.refused)
    assert elapsed <= 1.4 * ideal  # and it still goes near the provider's pace


async def test_nothing_is_sent_after_a_fatal_answer(autojump_clock: trio.testing.MockClock) -> None:
    # Two workers, one slot: the second queues for the slot inside the breaker's guard while
    # the first gets a 401. Once the breaker is stopped, the queued request must not go out.
    async def slow_401(request: httpx.Request) -> httpx.Response:
        await trio.sleep(1)
        return await error(401, "invalid_api_key")(request)

    script = Script(slow_401, ok())
    breaker = CircuitBreaker()
    client = make_client(script, breaker=breaker, max_concurrent_requests=1)
    errors: list[ProviderFatalError] = []

    async def one(chunk: int) -> None:
        try:
            await client.complete(MESSAGES, prompt_tokens=1, url="u", chunk=chunk)
        except ProviderFatalError as exc:
            errors.append(exc)

    with trio.fail_after(GUARD):
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(one, 0)
            await trio.sleep(0.1)  # the first holds the slot; the second queues behind it
            nursery.start_soon(one, 1)
    assert len(script.requests) == 1
    assert len(errors) == 2
    assert isinstance(errors[1], CircuitBreakerOpenError)
