"""Reading an answer under its deadlines, and a streamed one chunk by chunk (OpenAI's SSE).

A streamed answer is ``data: {chunk}`` lines, each chunk holding a ``delta`` of the answer,
then (with ``stream_options.include_usage``) a chunk with empty ``choices`` and the usage, then
``data: [DONE]``. ``StreamReader`` takes the lines as they come and ends in the same
``Completion | Decision`` as a plain answer (``client.decode_completion``), so the retry loop
treats both alike. Without a usage chunk the token counts are estimated (prompt: the caller's
count; answer: characters / 4) and ``usage_estimated`` says so. Given an ``AnswerGuard``, the
reader stops at the piece after which the answer can no longer be used (a loop, too long):
the stream is closed there, and the answer read so far is a ``Completion`` marked ``stopped``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import msgspec
import structlog
import trio

from crawl4ai_llm_docs.llm.provider.classify import Action, Decision
from crawl4ai_llm_docs.llm.provider.completion import (
    AnswerGuard,
    Completion,
    Usage,
    finished_answer,
)

CHARS_PER_TOKEN = 4  # the estimate when a stream carries no usage

log = structlog.get_logger()


class _Delta(msgspec.Struct):
    content: str | None = None


class _ChunkChoice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_ChunkChoice] = []
    usage: Usage | None = None
    model: str = ""
    error: Any = None  # some servers report a failure mid-stream as {"error": {...}}


_chunk_decoder = msgspec.json.Decoder(_Chunk)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class StreamReader:
    """Feed it the response's lines; ``result`` once the stream ended (or was cut short)."""

    def __init__(self, *, prompt_tokens: int, guard: AnswerGuard | None = None) -> None:
        self._prompt_estimate = prompt_tokens
        self._guard = guard
        self.stopped = ""  # why the guard stopped the answer
        self._parts: list[str] = []
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._model = ""
        self._choices = False
        self._problem: Decision | None = None
        self.events = 0  # data events read
        self.done = False  # [DONE] read, or a problem that ends the stream

    def feed(self, line: str) -> str | None:
        """Read one line; returns the answer text it added (None: not a data event)."""
        if not line.startswith("data:") or self.done:
            return None  # blank separators, comments (": ping"), event names
        data = line[5:].strip()
        self.events += 1
        if data == "[DONE]":
            self.done = True
            return ""
        try:
            chunk = _chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._stop(f"malformed stream event ({str(exc)[:120]})")
            return ""
        if chunk.error is not None:
            message = msgspec.json.encode(chunk.error).decode("utf-8", "replace")[:200]
            self._stop(f"the provider reported an error in the stream: {message}")
            return ""
        self._model = chunk.model or self._model
        if chunk.usage is not None:
            self._usage = chunk.usage
        added = ""
        for choice in chunk.choices[:1]:
            self._choices = True
            if choice.delta is not None and choice.delta.content:
                added = choice.delta.content
                self._parts.append(added)
                if self._guard is not None:
                    self.stopped = self._guard.feed(added) or ""
                    self.done = self.done or bool(self.stopped)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        return added

    def _stop(self, reason: str) -> None:
        self._problem = Decision(Action.RETRY, reason)
        self.done = True

    @property
    def usage_estimated(self) -> bool:
        return self._usage is None

    def result(self) -> Completion | Decision:
        """What the stream amounted to, like ``decode_completion`` for a plain answer."""
        if self._problem is not None:
            return self._problem
        if self.stopped:  # read no further: what arrived is the (unusable) answer
            content = "".join(self._parts)
            return Completion(
                content=content,
                finish_reason="stopped",
                prompt_tokens=self._usage.prompt_tokens if self._usage else self._prompt_estimate,
                completion_tokens=estimate_tokens(content),
                model=self._model,
                stopped=self.stopped,
            )
        if self.events == 0:
            return Decision(
                Action.RETRY,
                "the server ended the stream before its first event (it failed after answering"
                " 200; asked again without streaming, it can say why)",
                ask_plainly=True,
            )
        if not self._choices:
            return Decision(Action.RETRY, "response has no choices")
        if self._finish is None and not self.done:
            return Decision(Action.RETRY, "the stream ended before the answer was complete")
        if self._finish is None:
            # [DONE] without a finish_reason: the server stopped the answer (llama-cpp-python
            # does when another request arrives, unless run with --interrupt_requests false).
            return Decision(
                Action.RETRY, "the server ended the stream without finishing the answer"
            )
        content = "".join(self._parts)
        usage = self._usage or Usage(
            prompt_tokens=self._prompt_estimate, completion_tokens=estimate_tokens(content)
        )
        return finished_answer(content, self._finish, usage, self._model, self._guard)


class Timing:
    """When an attempt was sent, saw its first token and ended, and its HTTP status."""

    __slots__ = ("finished_at", "first_at", "sent_at", "status")

    def __init__(self) -> None:
        self.sent_at = self.finished_at = trio.current_time()
        self.first_at: float | None = None
        self.status: int | None = None


def log_request(
    url: str,
    chunk: int,
    attempt: int,
    outcome: Completion | Decision,
    timing: Timing,
    queued_at: float,
) -> None:
    """The ``llm_request`` event of one attempt."""
    first = None if timing.first_at is None else timing.first_at - timing.sent_at
    log.info(
        "llm_request",
        url=url,
        chunk=chunk,
        attempt=attempt,
        status=timing.status,
        outcome=outcome.action.value if isinstance(outcome, Decision) else "ok",
        latency_ms=round((timing.finished_at - timing.sent_at) * 1000, 1),
        queued_ms=round((timing.sent_at - queued_at) * 1000, 1),
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        first_token_ms=None if first is None else round(first * 1000, 1),
    )


# The provider refused `"stream": true`: not an outcome of the request, a reason to resend it.
STREAM_REFUSED = Decision(Action.RETRY, "the provider refused a streamed request")
STREAM_REFUSAL_STATUSES = frozenset({400, 415, 422, 501})


def refuses_streaming(status: int, body: bytes) -> bool:
    return status in STREAM_REFUSAL_STATUSES and b"stream" in body.lower()


class NoAnswerError(Exception):
    """The attempt's deadline passed: ``phase`` "total", "first_token" or "idle"."""

    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


class Exchange:
    """What came back: the status and headers, and the plain body or the read stream."""

    def __init__(
        self, status: int, headers: httpx.Headers, body: bytes, stream: StreamReader | None
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    total_s: float  # parallel.request_timeout
    first_token_s: float  # parallel.first_token_timeout
    idle_s: float  # parallel.idle_timeout

    def first_token_reason(self) -> str:
        if self.first_token_s <= self.total_s:
            return f"no first token within first_token_timeout ({self.first_token_s:g} s)"
        return f"no first token within request_timeout ({self.total_s:g} s)"


async def exchange(
    response_cm: AbstractAsyncContextManager[httpx.Response],
    *,
    reader: StreamReader,
    streaming: bool,
    timeouts: Timeouts,
    on_first: Callable[[], None],
    on_text: Callable[[str], None],
    excused: Callable[[], float] = lambda: 0.0,
    on_stream: Callable[[], None] = lambda: None,
) -> Exchange:
    """Send and read one request under its deadlines; raises NoAnswerError when one passes.

    A plain request (or a stream the provider answered with a plain body) has
    ``request_timeout`` for everything. A stream has until the first token
    (``min(first_token_timeout, request_timeout)``, plus the ``excused()`` seconds it waited
    behind other requests the server was serving in order), then ``idle_timeout`` between
    events: an answer that is arriving is never cut off, a stalled one is noticed in seconds.
    ``on_stream`` runs when a stream's headers arrive, before any of its text.
    """
    sent = trio.current_time()
    first = min(timeouts.first_token_s, timeouts.total_s) if streaming else timeouts.total_s
    attempt = _Attempt(sent, "first_token" if streaming else "total")
    with trio.CancelScope(deadline=math.inf if streaming else sent + first) as attempt.scope:
        try:
            async with trio.open_nursery() as nursery:
                if streaming:
                    nursery.start_soon(_first_token_watch, attempt, sent + first, excused)
                try:
                    return await _receive(
                        response_cm,
                        attempt,
                        reader,
                        timeouts,
                        on_first=on_first,
                        on_text=on_text,
                        on_stream=on_stream,
                    )
                finally:
                    attempt.watch.cancel()
        except BaseExceptionGroup as group:  # the watchdog never fails: it is the request's
            inner = _only(group)
            raise inner from inner.__cause__  # keep its cause: TLS errors are found by it
    if attempt.phase == "first_token":
        raise NoAnswerError(attempt.phase, timeouts.first_token_reason())
    if attempt.phase == "idle":
        raise NoAnswerError(
            attempt.phase, f"the answer stalled: nothing for idle_timeout ({timeouts.idle_s:g} s)"
        )
    raise NoAnswerError(attempt.phase, f"no answer within request_timeout ({timeouts.total_s:g} s)")


class _Attempt:
    """The deadlines of one request: its phase, its cancel scope and its first-token watchdog."""

    def __init__(self, sent: float, phase: str) -> None:
        self.sent = sent
        self.phase = phase  # "first_token" -> "idle" for a stream; "total" for a plain body
        self.scope = trio.CancelScope()
        self.watch = trio.CancelScope()  # the watchdog's own scope, ended by the first token


async def _receive(
    response_cm: AbstractAsyncContextManager[httpx.Response],
    attempt: _Attempt,
    reader: StreamReader,
    timeouts: Timeouts,
    *,
    on_first: Callable[[], None],
    on_text: Callable[[str], None],
    on_stream: Callable[[], None],
) -> Exchange:
    async with response_cm as response:
        kind = response.headers.get("content-type", "")
        if response.status_code != 200 or "text/event-stream" not in kind:
            if attempt.phase == "first_token":  # a plain body after all: the whole deadline
                attempt.watch.cancel()
                attempt.phase, attempt.scope.deadline = "total", attempt.sent + timeouts.total_s
            body = await response.aread()
            return Exchange(response.status_code, response.headers, body, None)
        on_stream()  # its headers: the round trip of an answer, before its text
        async for line in response.aiter_lines():
            text = reader.feed(line)
            if text is None:
                continue
            if attempt.phase == "first_token":
                attempt.watch.cancel()
                attempt.phase = "idle"
                on_first()
            attempt.scope.deadline = trio.current_time() + timeouts.idle_s
            if text:
                on_text(text)
            if reader.done:
                break
        return Exchange(response.status_code, response.headers, b"", reader)


def _only(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a group holds (nested groups unwrapped), or the group itself."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return group


async def _first_token_watch(attempt: _Attempt, due: float, excused: Callable[[], float]) -> None:
    """Cancel the attempt at ``due`` plus the time it is excused for, asked again each time."""
    with attempt.watch:
        while True:
            deadline = due + excused()
            if trio.current_time() >= deadline:
                attempt.scope.cancel()
                return
            await trio.sleep_until(deadline)
