"""Never paying for an answer that cannot be used, and structured output in the form the
provider takes: ChatClient against httpx.MockTransport in virtual time (autojump_clock).

- a request carries its own ``max_tokens``, and the rate limiter reserves by it;
- a streamed answer that loops (the judge's repetition rule) is stopped at once: the
  stream is closed and the partial answer comes back marked ``stopped``;
- an answer cut off at ``max_tokens`` because it looped is unfaithful, not a split; one cut
  off honestly is still a split;
- ``response_format`` goes as json_schema, then (refused with a 4xx naming it) as
  llama-cpp-python's json_object with a schema, then not at all, and the run remembers.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import structlog
import trio
import trio.testing
from test_client_stream import GUARD, MESSAGES, Script, Streamed, events, make_client, plain

from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.llm.cleaning import _STRUCTURED as EDIT_OUTPUT
from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts
from crawl4ai_llm_docs.llm.faithfulness.guard import AnswerGuard
from crawl4ai_llm_docs.llm.faithfulness.judge import FaithfulSettings
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.permits import Slot
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.provider.client import ChatClient, Completion, NeedsSplitError

CHUNK = MarkdownFacts.of("# Options\n\nEvery option has a name and a `default`.\n" * 3)
LOOP_LINE = "The option is described in the option reference.\n"


def guard() -> AnswerGuard:
    return AnswerGuard(CHUNK, FaithfulSettings())


class CountingStream(Streamed):
    """A stream that counts how many of its events the client read."""

    def __init__(self, steps: list[tuple[float, bytes]]) -> None:
        super().__init__(steps)
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in super().__aiter__():
            self.sent += 1
            yield data


class SpyLimiter(AdaptiveRateLimiter):
    """Records the token estimate each request reserved."""

    def __init__(self) -> None:
        super().__init__(max_concurrent=4, rng=random.Random(1))
        self.reserved: list[int] = []

    def slot(self, estimated_tokens: int = 0) -> Slot:
        self.reserved.append(estimated_tokens)
        return super().slot(estimated_tokens)


def _client(
    script: Script, *, limiter: AdaptiveRateLimiter | None = None, stream: bool = True
) -> ChatClient:
    llm = LLMConfig(base_url="https://llm.example/v1", model="test-model", max_tokens=4000)
    return ChatClient(
        llm=llm,
        parallel=ParallelConfig(),
        api_key="sk-budget-test",
        limiter=limiter or AdaptiveRateLimiter(max_concurrent=4, rng=random.Random(1)),
        breaker=CircuitBreaker(enabled=False),
        rng=random.Random(1),
        transport=script,
        stream=stream,
    )


async def test_each_request_sends_and_reserves_its_own_max_tokens(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(plain())
    limiter = SpyLimiter()
    with trio.fail_after(GUARD):
        async with _client(script, limiter=limiter, stream=False) as client:
            await client.complete(MESSAGES, prompt_tokens=100, url="u", chunk=0, max_tokens=333)
            await client.complete(MESSAGES, prompt_tokens=100, url="u", chunk=1)
    assert [r["max_tokens"] for r in script.requests] == [333, 4000]
    assert limiter.reserved == [100 + 333, 100 + 4000]


async def test_a_streamed_loop_is_stopped_at_once_and_marked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pieces = ["# Options\n\n", *[LOOP_LINE] * 200]
    body = CountingStream(events(pieces, finish="length"))

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    script = Script(answer)
    with structlog.testing.capture_logs() as logs, trio.fail_after(GUARD):
        async with _client(script) as client:
            result = await client.complete(
                MESSAGES, prompt_tokens=10, url="u", chunk=0, guard=guard
            )
    assert result.finish_reason == "stopped"
    assert "repeated 4 times" in result.stopped
    assert result.content.count(LOOP_LINE) == 4  # read up to the fourth repetition, no further
    assert body.sent < 10  # of 200+ events: the stream was closed, not read to the end
    assert result.completion_tokens == len(result.content) // 4 + (len(result.content) % 4 > 0)
    requests = [e for e in logs if e["event"] == "llm_request"]
    assert [e["outcome"] for e in requests] == ["ok"]  # an answer (judged unfaithful later)
    assert not [e for e in logs if "carry no usage" in e.get("message", "")]


def _cut_off(content: str) -> Any:
    body = {
        "model": "m",
        "choices": [{"message": {"content": content}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 900, "total_tokens": 950},
    }

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=msgspec.json.encode(body))

    return answer


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_cut_off_caused_by_a_loop_is_unfaithful_not_a_split(
    autojump_clock: trio.testing.MockClock, streamed: bool
) -> None:
    looping = "# Options\n\n" + LOOP_LINE * 3 + "The end of it"  # 3 times: the guard reads on
    looping += "\n" + LOOP_LINE * 2  # ... the cut-off answer has it 5 times
    if streamed:
        steps = events([looping[:40], looping[40:]], finish="length")

        async def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=Streamed(steps)
            )

        script = Script(answer)
    else:
        script = Script(_cut_off(looping))
    with trio.fail_after(GUARD):
        async with _client(script, stream=streamed) as client:
            result = await client.complete(
                MESSAGES, prompt_tokens=10, url="u", chunk=0, guard=guard
            )
    assert isinstance(result, Completion)
    assert result.stopped
    assert "repeated" in result.stopped


async def test_an_honest_cut_off_is_still_a_split(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(_cut_off("# Options\n\nEvery option has a name"))
    with trio.fail_after(GUARD), pytest.raises(NeedsSplitError):
        async with _client(script, stream=False) as client:
            await client.complete(MESSAGES, prompt_tokens=10, url="u", chunk=0, guard=guard)


def _format_server(accepts: str, refusal_status: int = 500) -> tuple[Script, list[str]]:
    """A provider that takes only one response_format form, like OpenAI or llama-cpp-python
    (0.3 answers json_schema with an HTTP 500 holding the validation error; others 422)."""
    seen: list[str] = []
    ok = plain('{"description": "d", "drop": [], "headings": [], "join": [], "title": ""}')

    async def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        form = body.get("response_format")
        kind = "none" if form is None else form["type"]
        seen.append(kind)
        if kind == "json_schema" and accepts != "json_schema":
            detail = [
                {
                    "loc": ["body", "response_format", "type"],
                    "msg": "Input should be 'text' or 'json_object'",
                }
            ]
            return httpx.Response(refusal_status, content=msgspec.json.encode({"detail": detail}))
        if kind == "json_object" and accepts == "none":
            error = {"message": "response_format is not supported", "param": "response_format"}
            return httpx.Response(400, content=msgspec.json.encode({"error": error}))
        return await ok(request)

    return Script(answer), seen


@pytest.mark.parametrize(
    ("accepts", "first_run", "second_run"),
    [
        ("json_schema", ["json_schema"], ["json_schema"]),
        ("json_object", ["json_schema", "json_object"], ["json_object"]),
        ("none", ["json_schema", "json_object", "none"], ["none"]),
    ],
)
async def test_structured_output_in_the_form_the_provider_takes_learnt_once(
    autojump_clock: trio.testing.MockClock,
    accepts: str,
    first_run: list[str],
    second_run: list[str],
) -> None:
    script, seen = _format_server(accepts)
    with structlog.testing.capture_logs() as logs, trio.fail_after(GUARD):
        async with _client(script, stream=False) as client:
            kwargs: dict[str, Any] = {"prompt_tokens": 10, "url": "u", "structured": EDIT_OUTPUT}
            await client.complete(MESSAGES, chunk=0, **kwargs)
            assert seen == first_run
            seen.clear()
            await client.complete(MESSAGES, chunk=1, **kwargs)
            assert seen == second_run
            assert client.format_style == accepts
    warnings = [e["message"] for e in logs if e["event"] == "warning"]
    assert len(warnings) == len(first_run) - 1
    requests = [e for e in logs if e["event"] == "llm_request"]
    assert [e["outcome"] for e in requests] == ["ok", "ok"]  # refusals are not failures
    forms = [r.get("response_format") for r in script.requests]
    if accepts == "json_schema":
        assert forms[0]["json_schema"]["strict"] is True
        assert forms[0]["json_schema"]["schema"] == EDIT_OUTPUT.schema
    if accepts == "json_object":
        assert forms[-1] == {"type": "json_object", "schema": EDIT_OUTPUT.grammar_schema}


@pytest.mark.parametrize("status", [400, 422, 500])
async def test_a_refusal_naming_response_format_is_no_failure_at_any_status(
    autojump_clock: trio.testing.MockClock, status: int
) -> None:
    script, seen = _format_server("json_object", refusal_status=status)
    with structlog.testing.capture_logs() as logs, trio.fail_after(GUARD):
        async with _client(script, stream=False) as client:
            await client.complete(
                MESSAGES, prompt_tokens=10, url="u", chunk=0, structured=EDIT_OUTPUT
            )
    assert seen == ["json_schema", "json_object"]
    assert [e for e in logs if e["event"] == "retry"] == []  # not retried as a server error


async def test_a_server_error_that_names_no_format_is_retried_as_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    error = {"error": {"message": "internal error", "type": "server_error"}}

    async def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=msgspec.json.encode(error))

    script = Script(broken, plain('{"drop": []}'))
    with structlog.testing.capture_logs() as logs, trio.fail_after(GUARD):
        async with _client(script, stream=False) as client:
            await client.complete(
                MESSAGES, prompt_tokens=10, url="u", chunk=0, structured=EDIT_OUTPUT
            )
            assert client.format_style == "json_schema"
    assert len([e for e in logs if e["event"] == "retry"]) == 1


async def test_requests_without_structured_output_never_carry_response_format(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(plain())
    with trio.fail_after(GUARD):
        async with make_client(script) as client:
            await client.complete(MESSAGES, prompt_tokens=10, url="u", chunk=0)
    assert "response_format" not in script.requests[0]
