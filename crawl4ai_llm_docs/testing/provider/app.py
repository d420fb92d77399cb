"""The fake provider's ASGI app: routing and the chat-completions decision chain.

Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /_stats`, `POST /_reset`,
`GET|POST /_control`, and the Batch API's `/v1/files*`, `/v1/batches*` and `/_batches`
(`provider_batch`). A chat request goes through, in order: API key, body, model, context
limit, quota, rate limits, then at most one injected fault, then a slot and the latency, and
the answer: JSON, or an event stream for `"stream": true` (`provider_stream`).
Counters and live config live in `provider_state`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from crawl4ai_llm_docs.testing.provider import errors
from crawl4ai_llm_docs.testing.provider.answers import (
    Answer,
    ChatRequest,
    answer,
    document_digest,
    prompt_tokens,
)
from crawl4ai_llm_docs.testing.provider.batch import BatchService
from crawl4ai_llm_docs.testing.provider.config import ProviderConfig
from crawl4ai_llm_docs.testing.provider.edit_answers import format_refusal
from crawl4ai_llm_docs.testing.provider.limits import Headers, refusal_extras
from crawl4ai_llm_docs.testing.provider.state import ProviderState
from crawl4ai_llm_docs.testing.provider.stream import (
    acquire_slot,
    record_abandoned_work,
    release_slot,
    stream_answer,
)

FAULTS = ("error", "hang", "drop", "malformed", "empty_choices")


class ProviderApp:
    """A hand-written ASGI 3 application; hypercorn does all the HTTP."""

    def __init__(self, state: ProviderState) -> None:
        self.state = state
        self.batches = BatchService(state)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._route(scope, receive, send)

    async def _route(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        method, path = scope["method"], scope["path"]
        state = self.state
        if path.startswith("/v1/"):
            state.saw_client(scope["client"])
        body = await _read_body(receive)
        if body is None:
            return  # client went away before sending the whole request
        if (method, path) == ("POST", "/v1/chat/completions"):
            await self._chat(scope, body, receive, send)
        elif (method, path) == ("GET", "/v1/models"):
            refused = _check_key(state.config, scope)
            if refused is not None:
                await _send_json(send, *refused)
                return
            names = state.config.models or ("fake-model",)
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
            await _send_json(send, 200, {"object": "list", "data": data})
        elif (method, path) == ("GET", "/_stats"):
            await _send_json(send, 200, state.stats)
        elif (method, path) == ("POST", "/_reset"):
            state.reset()
            await _send_json(send, 200, state.stats)
        elif path == "/_control" and method in ("GET", "POST"):
            await self._control(method, body, send)
        elif BatchService.handles(path):
            await self.batches.route(scope, body, send, check_key=_check_key)
        else:
            await _send_json(send, *errors.invalid_url(method, path))

    async def _control(self, method: str, body: bytes, send: ASGISendCallable) -> None:
        if method == "POST":
            try:
                changes = msgspec.json.decode(body or b"{}", type=dict[str, Any])
                self.state.update(changes)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                await _send_json(send, *errors.invalid_request(str(error)))
                return
        await _send_json(send, 200, self.state.config)

    async def _chat(
        self, scope: HTTPScope, body: bytes, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        state, stats = self.state, self.state.stats
        stats.requests += 1
        stats.first_request_at = stats.first_request_at or time.time()
        stats.last_request_at = time.time()
        if state.fatal:
            stats.requests_after_fatal += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        if state.idle.is_set():
            state.idle = trio.Event()
        try:
            response = await self._answer(scope, body, receive, send, arrival=stats.requests)
            if response is not None:
                await self._reply(send, response)
        finally:
            # Reset may have swapped the stats object while this request ran.
            state.stats.in_flight -= 1
            if state.stats.in_flight <= 0:
                state.idle.set()

    def _limit_headers(self) -> Headers:
        return self.state.limits.headers(
            self.state.config.header_dialect, self.state.now(), time.time()
        )

    async def _reply(self, send: ASGISendCallable, response: _Reply) -> None:
        by_status = self.state.stats.by_status
        by_status[response.status] = by_status.get(response.status, 0) + 1
        headers = [*self._limit_headers(), *response.extra]
        await _send_json(send, response.status, response.payload, headers)

    async def _answer(
        self,
        scope: HTTPScope,
        body: bytes,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        *,
        arrival: int,
    ) -> _Reply | None:
        """Decide the response; hang and drop faults are carried out here and return None."""
        state = self.state
        config = state.config
        refused = _check_key(config, scope)
        if refused is not None:
            return _Reply(*refused)
        try:
            request = msgspec.json.decode(body, type=ChatRequest)
        except msgspec.ValidationError as error:
            return _Reply(*errors.invalid_request(str(error)))
        except msgspec.DecodeError:
            return _Reply(*errors.invalid_json())
        if request.stream and not config.streaming:
            return _Reply(*errors.invalid_request("This server does not stream.", "stream"))
        if config.models and request.model not in config.models:
            return _Reply(*errors.model_not_found(request.model))
        refused = format_refusal(request.response_format, config.structured_output)
        if refused is not None:
            state.stats.format_refused += 1
            return _Reply(*refused)
        cap = request.output_cap()
        prompt = prompt_tokens(request)
        if config.context_limit is not None and prompt + (cap or 0) > config.context_limit:
            return _Reply(*errors.context_length_exceeded(config.context_limit, prompt, cap))
        if config.quota_after is not None and state.stats.successes >= config.quota_after:
            state.fatal = True
            state.stats.quota_refused += 1
            return _Reply(*errors.insufficient_quota())

        looping = state.stats.loops < config.loop_first
        result = answer(
            request, config.max_output_tokens, config.unfaithful_above_temperature, looping=looping
        )
        # Like OpenAI, the token bucket is charged the prompt plus max_tokens when given.
        refusal = state.limits.admit(prompt + (cap or result.completion_tokens), state.now())
        if refusal is not None:
            state.stats.rate_limited += 1
            hint, extra = refusal_extras(config, refusal)
            return _Reply(*errors.rate_limited(request.model, refusal, hint), tuple(extra))

        fault = _pick_fault(config, state.rng)
        if fault is not None:
            state.stats.injected[fault] = state.stats.injected.get(fault, 0) + 1
        if fault == "error":
            return _Reply(*errors.server_error(state.rng.choice(config.error_codes)))
        if looping and result.document is not None:
            state.stats.loops += 1
        holder = object()  # this request's claim on a slot (see provider_stream)
        if not await acquire_slot(state, receive, holder):
            return None
        try:
            return await self._serve(request, result, receive, send, fault=fault, arrival=arrival)
        finally:
            release_slot(state, holder)

    async def _serve(
        self,
        request: ChatRequest,
        result: Answer,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        *,
        fault: str | None,
        arrival: int,
    ) -> _Reply | None:
        """Answer a request that holds a slot: latency, then the JSON body or the stream."""
        state, config = self.state, self.state.config
        if fault == "hang":
            await _wait_for_disconnect(receive)
            return None

        jitter = state.rng.uniform(-config.latency_jitter, config.latency_jitter)
        per_token = config.latency_per_1k_tokens * result.completion_tokens / 1000
        latency = max(0.0, config.latency + jitter) + per_token
        if request.stream:

            def sent() -> None:
                if fault is None:
                    state.stats.streamed += 1
                    self._count_success(result, arrival)

            await stream_answer(
                state,
                send,
                receive,
                request=request,
                result=result,
                latency=latency,
                headers=self._limit_headers(),
                fault=fault,
                completion_id=state.next_id(),
                on_sent=sent,
            )
            return None
        started = state.now()
        if not await _sleep_unless_gone(receive, latency):
            record_abandoned_work(state, started)
            return None

        payload = self._completion(request, result, empty=fault == "empty_choices")
        if fault == "drop":
            state.stats.by_status[200] = state.stats.by_status.get(200, 0) + 1
            await _send_partial(send, msgspec.json.encode(payload), self._limit_headers())
            return None
        if fault == "malformed":
            encoded = msgspec.json.encode(payload)
            return _Reply(200, _Raw(encoded[: len(encoded) // 2]))
        if fault is None:
            self._count_success(result, arrival)
        return _Reply(200, payload)

    def _count_success(self, result: Answer, arrival: int) -> None:
        state, stats = self.state, self.state.stats
        stats.successes += 1
        stats.prompt_tokens += result.prompt_tokens
        stats.completion_tokens += result.completion_tokens
        if result.document is not None:
            state.record_document(arrival, document_digest(result.document))

    def _completion(self, request: ChatRequest, result: Answer, *, empty: bool) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result.content, "refusal": None},
            "logprobs": None,
            "finish_reason": result.finish_reason,
        }
        return {
            "id": self.state.next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [] if empty else [choice],
            "usage": {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    payload: Any
    extra: tuple[tuple[bytes, bytes], ...] = ()


class _Raw:
    """Bytes to send as the body unchanged (used for the malformed-JSON fault)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def _pick_fault(config: ProviderConfig, rng: random.Random) -> str | None:
    # One draw per admitted request keeps the random sequence reproducible for a given seed.
    roll = rng.random()
    rates = (
        config.error_rate,
        config.hang_rate,
        config.drop_rate,
        config.malformed_rate,
        config.empty_choices_rate,
    )
    for name, rate in zip(FAULTS, rates, strict=True):
        if roll < rate:
            return name
        roll -= rate
    return None


def _check_key(config: ProviderConfig, scope: HTTPScope) -> errors.ErrorResponse | None:
    if config.require_api_key is None:
        return None
    auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, key = auth.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return errors.missing_api_key()
    if key.strip() != config.require_api_key:
        return errors.invalid_api_key(key.strip())
    return None


async def _read_body(receive: ASGIReceiveCallable) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] == "http.request":
            chunks.append(message["body"])
            if not message["more_body"]:
                return b"".join(chunks)


async def _wait_for_disconnect(receive: ASGIReceiveCallable) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _sleep_unless_gone(receive: ASGIReceiveCallable, seconds: float) -> bool:
    """Sleep, but stop early if the client disconnects (a timed-out call is no success)."""
    gone = False
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            nonlocal gone
            await _wait_for_disconnect(receive)
            gone = True
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    return not gone


async def _send_json(
    send: ASGISendCallable, status: int, payload: Any, headers: Headers | None = None
) -> None:
    data = payload.data if isinstance(payload, _Raw) else msgspec.json.encode(payload)
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(data)),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _send_partial(send: ASGISendCallable, data: bytes, extra: Headers) -> None:
    """Promise the whole body, send half, then return: hypercorn closes the unfinished stream."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(data)),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})


async def _lifespan(receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
