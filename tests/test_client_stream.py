"""Streamed requests: deadlines, usage, fallback; ChatClient against httpx.MockTransport in
exact virtual time (autojump_clock), and StreamReader on its own."""

from __future__ import annotations

import json
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import httpx
import msgspec
import pytest
import structlog
import trio
import trio.testing

from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import ProviderFatalError
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.concurrency import QueueAwareLimit
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.provider.classify import Action, Decision
from crawl4ai_llm_docs.llm.provider.client import ChatClient, Completion, NeedsSplitError
from crawl4ai_llm_docs.llm.provider.streaming import StreamReader, estimate_tokens

MESSAGES = [{"role": "user", "content": "hello"}]
GUARD = 3600  # virtual seconds

Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m-stream",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


USAGE = (
    b'data: {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 9, '
    b'"total_tokens": 30}}\n\n'
)
DONE = b"data: [DONE]\n\n"


def events(
    pieces: Sequence[str],
    *,
    gaps: float | Sequence[float] = 0.1,
    first_after: float = 0.1,
    usage: bool = True,
    finish: str = "stop",
    tail: Sequence[bytes] = (),
) -> list[tuple[float, bytes]]:
    """(delay before, bytes) for a whole answer: role, pieces, finish, usage, [DONE]."""
    role = b'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}\n\n'
    steps = [(first_after, role)]
    delays = [gaps] * len(pieces) if isinstance(gaps, float | int) else list(gaps)
    for index, (piece, delay) in enumerate(zip(pieces, delays, strict=True)):
        last = index == len(pieces) - 1
        steps.append((float(delay), chunk(piece, finish if last else None)))
    if usage:
        steps.append((0.0, USAGE))
    steps.extend((0.0, data) for data in tail)
    if not tail:
        steps.append((0.0, DONE))
    return steps


class Streamed(httpx.AsyncByteStream):
    def __init__(self, steps: Sequence[tuple[float, bytes]], hang_at_end: bool = False) -> None:
        self.steps = steps
        self.hang_at_end = hang_at_end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delay, data in self.steps:
            await trio.sleep(delay)
            yield data
        if self.hang_at_end:
            await trio.sleep_forever()


def stream(steps: Sequence[tuple[float, bytes]], *, hang_at_end: bool = False) -> Answer:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=Streamed(steps, hang_at_end),
        )

    return answer


def plain(content: str = "plain answer") -> Answer:
    body = {
        "model": "m-plain",
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=msgspec.json.encode(body))

    return answer


def refusal(message: str = "Streaming is not supported by this server.") -> Answer:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": "stream"}}

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=msgspec.json.encode(body))

    return answer


async def no_headers(request: httpx.Request) -> httpx.Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


class Script(httpx.MockTransport):
    def __init__(self, *answers: Answer) -> None:
        super().__init__(self._handle)
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return await answer(request)


def make_client(
    script: Script,
    *,
    tokens: list[int] | None = None,
    queue: QueueAwareLimit | None = None,
    **parallel: Any,
) -> ChatClient:
    llm = LLMConfig(base_url="https://llm.example/v1", model="test-model", max_tokens=50)
    config = ParallelConfig(**parallel)
    return ChatClient(
        llm=llm,
        parallel=config,
        api_key="sk-stream-test",
        limiter=AdaptiveRateLimiter(max_concurrent=4, rng=random.Random(1)),
        breaker=CircuitBreaker(enabled=False),
        rng=random.Random(1),
        transport=script,
        stream=True,
        queue_limit=queue,
        on_tokens=None if tokens is None else tokens.append,
    )


async def complete(client: ChatClient) -> Completion:
    with trio.fail_after(GUARD):
        async with client:
            return await client.complete(MESSAGES, prompt_tokens=10, url="https://d/x", chunk=0)


def retries(logs: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in logs if e["event"] == "retry"]


async def test_streamed_answer_with_exact_usage(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(stream(events(["# Title", "\n\nbody ", "text"])))
    tokens: list[int] = []
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script, tokens=tokens))
    assert result == Completion(
        content="# Title\n\nbody text",
        finish_reason="stop",
        prompt_tokens=21,
        completion_tokens=9,
        model="m-stream",
    )
    [body] = script.requests
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert tokens == [estimate_tokens(p) for p in ["# Title", "\n\nbody ", "text"]]
    [request] = [e for e in logs if e["event"] == "llm_request"]
    assert request["first_token_ms"] == pytest.approx(100.0)
    assert request["latency_ms"] == pytest.approx(400.0)
    assert not [e for e in logs if e["event"] == "warning"]


async def test_no_usage_chunk_means_an_estimate(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(stream(events(["a" * 40], usage=False)))
    with structlog.testing.capture_logs() as logs:
        client = make_client(script)
        first = await complete(client)
        second = await complete(client)
    assert (first.prompt_tokens, first.completion_tokens) == (10, 10)
    assert second == first
    warnings = [e["message"] for e in logs if e["event"] == "warning"]
    assert len(warnings) == 1  # said once per run
    assert "estimated" in warnings[0]


async def test_an_answer_that_keeps_arriving_is_never_cut_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """60 s of answer, a chunk every 2 s: far beyond request_timeout, never idle for long."""
    script = Script(stream(events(["word "] * 30, gaps=2.0)))
    start = trio.current_time()
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script, request_timeout=5.0, idle_timeout=3.0))
    assert result.content == "word " * 30
    assert trio.current_time() - start == pytest.approx(60.1)
    assert retries(logs) == []


async def test_a_stalled_answer_is_noticed_after_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = events(["part"], finish="")[:2]  # the role and one piece, then nothing
    script = Script(stream(started, hang_at_end=True), plain())
    start = trio.current_time()
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script, idle_timeout=3.0))
    assert result.content == "plain answer"
    assert retries(logs) == ["the answer stalled: nothing for idle_timeout (3 s)"]
    assert trio.current_time() - start < 3.0 + 0.2 + 1.0 + 0.01  # idle, the answer, backoff


@pytest.mark.parametrize(
    ("settings", "reason", "seconds"),
    [
        ({"first_token_timeout": 4.0}, "no first token within first_token_timeout (4 s)", 4.0),
        (
            {"first_token_timeout": 60.0, "request_timeout": 2.0},
            "no first token within request_timeout (2 s)",
            2.0,
        ),
    ],
)
async def test_no_first_token_within_the_smaller_deadline(
    autojump_clock: trio.testing.MockClock, settings: dict[str, float], reason: str, seconds: float
) -> None:
    for silent in (no_headers, stream([(1000.0, DONE)])):  # no headers / headers, no data
        script = Script(silent, plain())
        start = trio.current_time()
        with structlog.testing.capture_logs() as logs:
            result = await complete(make_client(script, **settings))
        assert result.content == "plain answer"
        assert retries(logs) == [reason]
        assert seconds <= trio.current_time() - start <= seconds + 1.0


async def test_refused_streaming_falls_back_to_plain_requests(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(refusal(), plain())
    with structlog.testing.capture_logs() as logs:
        client = make_client(script)
        result = await complete(client)
        again = await complete(client)
    assert result.content == again.content == "plain answer"
    assert [r.get("stream") for r in script.requests] == [True, None, None]
    assert not client.streaming
    assert retries(logs) == []  # not a failure of the request
    warnings = [e["message"] for e in logs if e["event"] == "warning"]
    assert len(warnings) == 1
    assert "refused a streamed request" in warnings[0]
    outcomes = [e["outcome"] for e in logs if e["event"] == "llm_request"]
    assert outcomes == ["ok", "ok"]


async def test_other_400s_are_not_taken_for_a_refusal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = {"error": {"message": "bad temperature", "type": "invalid_request_error"}}

    async def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=msgspec.json.encode(body))

    client = make_client(Script(bad))
    with pytest.raises(Exception, match="bad temperature"):
        await complete(client)
    assert client.streaming


async def test_a_plain_answer_to_a_streamed_request_is_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result = await complete(make_client(Script(plain("as JSON"))))
    assert (result.content, result.prompt_tokens) == ("as JSON", 5)


async def test_cut_off_stream_asks_for_a_split(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(NeedsSplitError, match="finish_reason=length"):
        await complete(make_client(Script(stream(events(["part"], finish="length")))))


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        ([b'data: {"error": {"message": "overloaded"}}\n\n'], "error in the stream"),
        ([b"data: {not json\n\n"], "malformed stream event"),
    ],
)
async def test_broken_streams_are_retried(
    autojump_clock: trio.testing.MockClock, tail: list[bytes], reason: str
) -> None:
    script = Script(stream(events(["x"], usage=False, finish="", tail=tail)), plain())
    with structlog.testing.capture_logs() as logs:
        result = await complete(make_client(script))
    assert result.content == "plain answer"
    [said] = retries(logs)
    assert reason in said


async def test_stream_closed_before_the_end_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    unfinished = [(0.1, chunk("half", None))]
    script = Script(stream(unfinished), plain())
    with structlog.testing.capture_logs() as logs:
        await complete(make_client(script))
    assert retries(logs) == ["the stream ended before the answer was complete"]


def context_exceeded() -> Answer:
    """llama-cpp-python's plain answer to a prompt over its context."""
    body = {
        "error": {
            "message": "This model's maximum context length is 512 tokens. However, you "
            "requested 951 tokens (931 in the messages, 20 in the completion).",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=msgspec.json.encode(body))

    return answer


async def test_a_stream_that_says_nothing_is_asked_again_plainly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # llama-cpp-python streams a 200 and then nothing when a prompt is over its context
    # (measured with 0.3.36): read as a transient failure, it was retried until the breaker
    # stopped the run. Asked again without streaming, the server says why: split it.
    script = Script(stream([]), context_exceeded(), stream(events(["later"])))
    with structlog.testing.capture_logs() as logs:
        client = make_client(script)
        with pytest.raises(NeedsSplitError, match="maximum context length"):
            await complete(client)
        later = await complete(client)  # other requests still stream
    assert [r.get("stream") for r in script.requests] == [True, None, True]
    assert later.content == "later"
    [said] = retries(logs)
    assert "before its first event" in said
    # A server that only failed once answers the plain request.
    script = Script(stream([]), plain("second time"))
    assert (await complete(make_client(script))).content == "second time"


async def test_queue_limit_hears_of_every_attempt(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueAwareLimit(max_limit=4)
    await complete(make_client(Script(stream(events(["a", "b"]))), queue=queue))
    served, queued, span = queue.measure(trio.current_time())
    assert span > 0
    assert served == pytest.approx(0.2 / span)  # first token at 0.1 s, end at 0.3 s
    assert queued == 0.0


def test_reader_skips_comments_and_takes_data_without_a_space() -> None:
    reader = StreamReader(prompt_tokens=3)
    assert reader.feed(": ping") is None
    assert reader.feed("event: message") is None
    assert reader.feed("") is None
    assert reader.feed('data:{"choices": [{"delta": {"content": "hi"}}]}') == "hi"
    assert reader.feed('data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}') == ""
    assert reader.feed("data: [DONE]") == ""
    assert reader.done
    assert reader.feed('data: {"choices": [{"delta": {"content": "late"}}]}') is None
    result = reader.result()
    assert isinstance(result, Completion)
    assert (result.content, result.prompt_tokens, result.completion_tokens) == ("hi", 3, 1)


def test_reader_without_choices_is_a_retry() -> None:
    reader = StreamReader(prompt_tokens=3)
    reader.feed('data: {"choices": []}')
    reader.feed("data: [DONE]")
    assert reader.result() == Decision(Action.RETRY, "response has no choices")


@pytest.mark.parametrize("with_queue", [True, False])
async def test_a_request_waiting_its_turn_behind_a_served_one_is_not_hung(
    autojump_clock: trio.testing.MockClock, with_queue: bool
) -> None:
    """A single-slot server: B queues behind A's 20 s answer. B is excused while A streams
    (the queue-aware limit knows), so first_token_timeout (4 s) does not abandon it."""
    served = events(["word "] * 20, gaps=1.0)
    queued = [(20.2, served[0][1]), *served[1:]]
    script = Script(stream(served), stream(queued), plain())
    queue = QueueAwareLimit(max_limit=4) if with_queue else None
    client = make_client(script, queue=queue, first_token_timeout=4.0)
    results: list[str] = []
    with structlog.testing.capture_logs() as logs, trio.fail_after(GUARD):
        async with client, trio.open_nursery() as nursery:

            async def one(chunk: int) -> None:
                completion = await client.complete(
                    MESSAGES, prompt_tokens=10, url="https://d/x", chunk=chunk
                )
                results.append(completion.content)

            nursery.start_soon(one, 0)
            await trio.sleep(0.01)
            nursery.start_soon(one, 1)
    if with_queue:
        assert retries(logs) == []
        assert results == ["word " * 20] * 2
    else:
        assert retries(logs) == ["no first token within first_token_timeout (4 s)"]
        assert sorted(results) == ["plain answer", "word " * 20]


async def test_prompt_processing_queue_like_llama_cpp_is_not_taken_for_a_hang(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """llama-cpp-python sends nothing until the prompt is processed (20 s each, one at a
    time): the third request's first token comes at 60 s, past first_token_timeout (30 s),
    but the server answered the two before it meanwhile, in order."""

    def after(seconds: float) -> Answer:
        return stream(events(["done"], first_after=seconds, gaps=0.01))

    script = Script(after(20.0), after(40.0), after(60.0))
    client = make_client(script, queue=QueueAwareLimit(max_limit=4), first_token_timeout=30.0)
    with structlog.testing.capture_logs() as logs, trio.fail_after(GUARD):
        async with client, trio.open_nursery() as nursery:
            for chunk in range(3):
                nursery.start_soon(
                    partial(client.complete, MESSAGES, prompt_tokens=10, url="u", chunk=chunk)
                )
                await trio.sleep(0.001)
    assert retries(logs) == []
    assert len([e for e in logs if e["event"] == "llm_request"]) == 3


def test_reader_done_without_a_finish_reason_is_a_retry() -> None:
    """llama-cpp-python ends an interrupted answer with [DONE] and no finish_reason."""
    reader = StreamReader(prompt_tokens=3)
    reader.feed('data: {"choices": [{"delta": {"role": "assistant"}}]}')
    reader.feed('data: {"choices": [{"delta": {"content": "par"}}]}')
    reader.feed("data: [DONE]")
    result = reader.result()
    assert isinstance(result, Decision)
    assert result.action is Action.RETRY
    assert "without finishing the answer" in result.reason


async def test_tls_failure_keeps_its_cause_and_stops_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The error leaves the attempt's nursery with its cause intact: a certificate error is
    fatal (retrying cannot fix it), not a connection blip."""

    async def untrusted(request: httpx.Request) -> httpx.Response:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("TLS failed", request=request) from exc

    with pytest.raises(ProviderFatalError, match="TLS certificate verification failed"):
        await complete(make_client(Script(untrusted)))
