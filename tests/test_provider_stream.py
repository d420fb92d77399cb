"""The fake provider's slots and streamed answers, over real loopback HTTP."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from crawl4ai_llm_docs.testing.provider.server import (
    FakeProvider,
    estimate_tokens,
    make_config,
    serve,
)

GUARD = 15  # seconds; every test runs under trio.fail_after(GUARD)
DOC = "# Install guide\n\nRun `pip install thing` and then read the rest of this page.\n"


def chat(content: str = f"<document>\n{DOC}\n</document>", **extra: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": content}], **extra}


def streamed(**extra: Any) -> dict[str, Any]:
    return chat(stream=True, stream_options={"include_usage": True}, **extra)


@asynccontextmanager
async def running(**fields: Any) -> AsyncIterator[tuple[FakeProvider, httpx.AsyncClient]]:
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            handle: FakeProvider = await nursery.start(serve, make_config(fields))
            async with httpx.AsyncClient(base_url=handle.base_url, timeout=10) as client:
                yield handle, client
            nursery.cancel_scope.cancel()


async def read_events(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[httpx.Response, list[tuple[float, str]]]:
    """The response and its data lines, each with its arrival time after sending."""
    start = trio.current_time()
    events: list[tuple[float, str]] = []
    async with client.stream("POST", "/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append((trio.current_time() - start, line[6:]))
    return response, events


async def test_stream_is_openai_chunks_then_usage_then_done() -> None:
    async with running(latency=0.4, stream_chunks=4) as (handle, client):
        response, events = await read_events(client, streamed())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "x-ratelimit-limit-requests" not in response.headers  # no limits configured
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert content.endswith(DOC.strip())
    assert content.startswith('<!-- description: Fake summary of "Install guide". -->')
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    assert finishes == [None] * (len(finishes) - 1) + ["stop"]
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == estimate_tokens(content)
    assert usage["usage"]["total_tokens"] == sum(
        usage["usage"][k] for k in ("prompt_tokens", "completion_tokens")
    )
    # Spread over the latency: the role at once, the last piece at about 0.4 s.
    assert events[0][0] < 0.2
    assert 0.35 <= events[-2][0] < 2.0
    stats = handle.stats()
    assert (stats.successes, stats.streamed, stats.abandoned) == (1, 1, 0)
    assert stats.completion_tokens == usage["usage"]["completion_tokens"]


async def test_stream_without_usage_when_not_asked_or_disabled() -> None:
    async with running(stream_usage=False) as (_, client):
        _, asked = await read_events(client, streamed())
    async with running() as (_, client):
        _, not_asked = await read_events(client, chat(stream=True))
    for events in (asked, not_asked):
        assert events[-1][1] == "[DONE]"
        assert all("usage" not in json.loads(data) for _, data in events[:-1])


async def test_streaming_off_refuses_with_a_400_naming_stream() -> None:
    async with running(streaming=False) as (handle, client):
        refused = await client.post("/chat/completions", json=streamed())
        plain = await client.post("/chat/completions", json=chat())
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "stream"
    assert plain.status_code == 200
    assert handle.stats().successes == 1


@pytest.mark.parametrize("slots", [1, 2])
async def test_slots_serve_in_arrival_order(slots: int) -> None:
    """Four requests at once on N slots: answered N at a time, in arrival order."""
    latency = 0.5
    async with running(latency=latency, slots=slots) as (handle, client):
        ends: dict[int, float] = {}
        start = trio.current_time()

        async def one(index: int) -> None:
            response = await client.post("/chat/completions", json=chat(f"request {index}"))
            assert response.json()["choices"][0]["message"]["content"] == f"request {index}"
            ends[index] = trio.current_time() - start

        async with trio.open_nursery() as nursery:
            for index in range(4):
                nursery.start_soon(one, index)
                await trio.sleep(0.02)  # a defined arrival order
    groups = [[ends[i] for i in range(g, g + slots)] for g in range(0, 4, slots)]
    for earlier, later in itertools.pairwise(groups):
        assert min(later) - max(earlier) >= 0.7 * latency  # a whole answer later
    assert max(groups[-1]) >= 4 // slots * latency
    stats = handle.stats()
    assert stats.max_serving == slots
    assert stats.max_in_flight == 4
    assert stats.queued == 4 - slots


async def test_abandoned_requests_and_their_work_are_counted() -> None:
    """One client gives up mid-stream (work wasted), another while queued (none wasted)."""
    async with running(latency=1.0, slots=1, stream_chunks=10) as (handle, client):
        async with trio.open_nursery() as nursery:

            async def give_up(after: float) -> None:
                with trio.move_on_after(after):
                    await read_events(client, streamed())

            nursery.start_soon(give_up, 0.5)  # served at once, left half-way
            await trio.sleep(0.05)
            nursery.start_soon(give_up, 0.2)  # queued behind it, left before its turn
        with trio.fail_after(2):
            await handle.wait_idle()
        # The slot is free again at once: the next request is served without waiting.
        _, events = await read_events(client, streamed())
        assert events[0][0] < 0.3
    stats = handle.stats()
    assert (stats.abandoned, stats.abandoned_queued) == (2, 1)
    assert 0.3 <= stats.abandoned_work_s <= 0.9
    assert (stats.successes, stats.streamed) == (1, 1)


async def test_plain_request_abandoned_during_latency_counts_its_work() -> None:
    async with running(latency=2.0) as (handle, client):
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat(), timeout=0.3)
        await handle.wait_idle()
    stats = handle.stats()
    assert stats.abandoned == 1
    assert stats.abandoned_queued == 0
    assert 0.2 <= stats.abandoned_work_s < 1.5


@pytest.mark.parametrize("fault", ["drop", "malformed", "empty_choices"])
async def test_faults_in_streams(fault: str) -> None:
    async with running(**{f"{fault}_rate": 1.0}, stream_chunks=4) as (handle, client):
        try:
            _, events = await read_events(client, streamed())
        except httpx.RemoteProtocolError:
            events = []  # the dropped stream may end mid-chunk
    stats = handle.stats()
    assert stats.successes == 0
    assert stats.injected == {fault: 1}
    if fault == "drop":
        assert all(data != "[DONE]" for _, data in events)
    if fault == "malformed":
        broken = []
        for _, data in events[:-1]:
            try:
                json.loads(data)
            except json.JSONDecodeError:
                broken.append(data)
        assert len(broken) == 1  # the last piece of the answer
        assert events[-1][1] == "[DONE]"
    if fault == "empty_choices":
        assert all(json.loads(data)["choices"] == [] for _, data in events[:-1])


async def test_slots_change_live() -> None:
    async with running(latency=0.2, slots=1) as (handle, client):
        handle.update(slots=3)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(partial(client.post, "/chat/completions", json=chat()))
    assert handle.stats().max_serving == 3
    assert handle.stats().queued == 0
