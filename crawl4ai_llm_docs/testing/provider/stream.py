"""The fake provider's slots and streamed answers.

Slots: with `ProviderConfig.slots = N`, at most N requests are served at once; later ones wait
server-side in arrival order (a FIFO `trio.CapacityLimiter`), as on llama.cpp, Ollama or
LM Studio. A client that gives up while its request waits, or while it is being answered, is
counted in the stats (`abandoned`, `abandoned_queued`, `abandoned_work_s`: the slot time spent
on answers nobody read).

Streaming: a request with `"stream": true` gets `text/event-stream` in OpenAI's chunk format.
The first chunk (the role) goes out when a slot starts serving it, the answer follows in
`stream_chunks` pieces spread evenly over the latency, then (when `stream_options.include_usage`
asks and `stream_usage` allows) a chunk with empty `choices` and the usage, then
`data: [DONE]`. Faults keep their meaning: `drop` ends the stream half-way, `malformed` sends
a broken event, `empty_choices` sends chunks without choices.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable

from crawl4ai_llm_docs.testing.provider.answers import Answer, ChatRequest
from crawl4ai_llm_docs.testing.provider.limits import Headers
from crawl4ai_llm_docs.testing.provider.state import ProviderState


async def _watch(receive: ASGIReceiveCallable, scope: trio.CancelScope, gone: list[bool]) -> None:
    """Note a disconnect and stop the work; once `gone` holds False the answer was sent."""
    while (await receive())["type"] != "http.disconnect":
        pass
    if not gone:
        gone.append(True)
        scope.cancel()


async def acquire_slot(state: ProviderState, receive: ASGIReceiveCallable, holder: object) -> bool:
    """Wait for a free slot, in arrival order; False if the client left while waiting."""
    slots = state.slots
    try:
        slots.acquire_on_behalf_of_nowait(holder)
    except trio.WouldBlock:
        state.stats.queued += 1
        gone: list[bool] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch, receive, nursery.cancel_scope, gone)
            await slots.acquire_on_behalf_of(holder)
            nursery.cancel_scope.cancel()
        if gone:
            if holder in slots.statistics().borrowers:
                slots.release_on_behalf_of(holder)
            state.stats.abandoned += 1
            state.stats.abandoned_queued += 1
            return False
    state.serving += 1
    state.stats.max_serving = max(state.stats.max_serving, state.serving)
    return True


def release_slot(state: ProviderState, holder: object) -> None:
    state.serving -= 1
    state.slots.release_on_behalf_of(holder)


def record_abandoned_work(state: ProviderState, started: float) -> None:
    state.stats.abandoned += 1
    state.stats.abandoned_work_s += max(0.0, state.now() - started)


def _event(payload: Any) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


def _pieces(text: str, count: int) -> list[str]:
    if not text:
        return [""]
    count = max(1, min(count, len(text)))
    step = -(-len(text) // count)
    return [text[i : i + step] for i in range(0, len(text), step)]


async def stream_answer(
    state: ProviderState,
    send: ASGISendCallable,
    receive: ASGIReceiveCallable,
    *,
    request: ChatRequest,
    result: Answer,
    latency: float,
    headers: Headers,
    fault: str | None,
    completion_id: str,
    on_sent: Callable[[], None],
) -> bool:
    """Send the answer as an event stream over `latency` seconds; False if the client left.

    `on_sent` runs just before the last bytes go out (so a client that has read the whole
    stream finds the stats counted)."""
    config = state.config
    started = state.now()
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "system_fingerprint": "fp_fake",
            "choices": [] if fault == "empty_choices" else [choice],
        }

    start = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        *headers,
    ]
    by_status = state.stats.by_status
    by_status[200] = by_status.get(200, 0) + 1
    pieces = _pieces(result.content, config.stream_chunks)
    gone: list[bool] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch, receive, nursery.cancel_scope, gone)
        await send({"type": "http.response.start", "status": 200, "headers": start})
        body = _event(chunk({"role": "assistant", "content": "", "refusal": None}))
        await send({"type": "http.response.body", "body": body, "more_body": True})
        for index, piece in enumerate(pieces):
            await trio.sleep_until(started + latency * (index + 1) / len(pieces))
            last = index == len(pieces) - 1
            if fault == "drop" and index >= len(pieces) // 2:
                nursery.cancel_scope.cancel()  # returning unfinished: hypercorn closes it
                return True
            data = _event(chunk({"content": piece}, result.finish_reason if last else None))
            if fault == "malformed" and last:
                data = data[: len(data) // 2] + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
        include = request.stream_options is not None and request.stream_options.include_usage
        tail = b""
        gone.append(False)  # sent in full from here on, whatever the client does next
        on_sent()
        if include and config.stream_usage:
            usage = {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens,
            }
            tail = _event({**chunk({}), "choices": [], "usage": usage})
        await send(
            {"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False}
        )
        nursery.cancel_scope.cancel()
    if gone and gone[0]:
        record_abandoned_work(state, started)
        return False
    return True
