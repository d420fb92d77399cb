"""Chat completions against any OpenAI-compatible API, with the run's one retry loop.

One pooled ``httpx.AsyncClient`` serves every request (``enable_session_pooling = false``
opens a client per request, for comparison). Each attempt waits for the circuit breaker and
the shared rate limiter, runs under its deadlines (``streaming.exchange``: a streamed answer
has until its first token, then ``idle_timeout`` between chunks; a plain one
``request_timeout``), and is classified by ``classify.classify``: retry (the limiter holds
every worker through a 429's Retry-After; other errors back off with full jitter), split (the
caller halves the chunk), fatal (the breaker trips and the run stops) or fail (this chunk only).

With ``stream=True`` requests ask for a stream with the usage in its last chunk; a provider
that refuses streaming (an HTTP 4xx naming ``stream``) gets plain requests for the rest of the
run. Every attempt is reported to the ``QueueAwareLimit`` (sent, first token, end), which
lowers concurrency when the server queues.

Each request may carry its own ``max_tokens`` (the rate limiter reserves by it), a
``StructuredOutput`` (sent in the form the provider accepts, learnt from its refusals:
``structured.py``) and an ``AnswerGuard`` factory: the guard stops reading a streamed answer
that can no longer be used, and turns an answer cut off by a loop into an unfaithful
``Completion`` (``stopped``) instead of a split.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Protocol

import httpx
import msgspec
import structlog
import trio

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import (
    ProviderError,
    ProviderFatalError,
    RateLimitExceededError,
)
from crawl4ai_llm_docs.llm.limits.concurrency import Flight, Outcome, QueueAwareLimit
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter, Permit
from crawl4ai_llm_docs.llm.provider.accepted import (
    Accepted,
    FormatStyle,
    StructuredOutput,
    response_format,
)
from crawl4ai_llm_docs.llm.provider.classify import Action, Decision, classify, transport_failure
from crawl4ai_llm_docs.llm.provider.completion import (
    AnswerGuard,
    ChatResponse,
    Choice,
    Completion,
    Message,
    Usage,
    decode_completion,
)
from crawl4ai_llm_docs.llm.provider.streaming import (
    Exchange,
    NoAnswerError,
    StreamReader,
    Timeouts,
    Timing,
    estimate_tokens,
    exchange,
    log_request,
)

__all__ = [
    "ChatClient",
    "ChatResponse",
    "Choice",
    "Completion",
    "Message",
    "NeedsSplitError",
    "Usage",
    "backoff_delay",
    "decode_completion",
]

log = structlog.get_logger()

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
# 429s paced by the limiter (Retry-After, growing pauses up to a minute) before giving up.
RATE_LIMIT_RETRIES = 30


class NeedsSplitError(ProviderError):
    """The chunk is too large for the provider: waiting cannot help, splitting can."""


class Breaker(Protocol):
    def guard(self) -> AbstractAsyncContextManager[None]: ...
    def raise_if_stopped(self) -> None: ...
    def record_success(self) -> None: ...
    def record_failure(self, reason: str) -> None: ...
    def trip(self, reason: str) -> None: ...


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS architecture blog), capped."""
    return rng.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1)))


class ChatClient:
    """Sends chat-completion requests; one instance per run, shared by every worker."""

    def __init__(
        self,
        *,
        llm: LLMConfig,
        parallel: ParallelConfig,
        api_key: str | None,
        limiter: AdaptiveRateLimiter,
        breaker: Breaker,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        stream: bool = False,
        queue_limit: QueueAwareLimit | None = None,
        on_tokens: Callable[[int], None] | None = None,
    ) -> None:
        self._accepted = Accepted(stream=stream)
        self._queue = queue_limit
        self._on_tokens = on_tokens
        self._timeouts = Timeouts(
            total_s=parallel.request_timeout,
            first_token_s=parallel.first_token_timeout,
            idle_s=parallel.idle_timeout,
        )
        self._llm = llm
        self._parallel = parallel
        self._limiter = limiter
        self._breaker = breaker
        self._rng = rng or random.Random()
        self._transport = transport
        self._url = llm.base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "User-Agent": f"crawl4ai-llm-docs/{__version__}",
            "Content-Type": "application/json",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._secret = (api_key or "").encode()  # removed from every error body
        self._pool: httpx.AsyncClient | None = None
        self._side: httpx.AsyncClient | None = None  # other endpoints when pooling is off

    def _new_client(self, connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=self._headers,
            verify=self._llm.verify_tls,
            transport=self._transport,
            # Our own fail_after bounds each attempt; httpx's timeout only guards connecting.
            timeout=httpx.Timeout(None, connect=min(30.0, self._parallel.request_timeout)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def __aenter__(self) -> ChatClient:
        if self._parallel.enable_session_pooling:
            self._pool = self._new_client(self._parallel.max_connections_per_host)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in (self._pool, self._side):
            if client is not None:
                with trio.move_on_after(5, shield=True):
                    await client.aclose()
        self._pool = self._side = None

    @property
    def llm(self) -> LLMConfig:
        return self._llm

    @property
    def request_timeout(self) -> float:
        return self._parallel.request_timeout

    @property
    def secret(self) -> str | None:
        return self._secret.decode() or None

    def http(self) -> httpx.AsyncClient:
        """The run's pooled client (auth headers set), for the provider's other endpoints
        such as the Batch API's files and batches."""
        if self._pool is not None:
            return self._pool
        if self._side is None:
            self._side = self._new_client(2)
        return self._side

    @asynccontextmanager
    async def _open(self, payload: bytes) -> AsyncIterator[httpx.Response]:
        """The response with its body still to read (a stream is read as it arrives)."""
        if self._pool is not None:
            async with self._pool.stream("POST", self._url, content=payload) as response:
                yield response
            return
        async with (
            self._new_client(1) as client,
            client.stream("POST", self._url, content=payload) as response,
        ):
            yield response

    @property
    def streaming(self) -> bool:
        """Whether requests are streamed (False after the provider refused a stream)."""
        return self._accepted.stream

    @property
    def format_style(self) -> FormatStyle:
        """The response_format form sent (the first the provider has not refused)."""
        return self._accepted.format

    def payload(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        stream: bool = False,
        temperature: float | None = None,
        max_tokens: int | None = None,
        structured: StructuredOutput | None = None,
    ) -> bytes:
        body: dict[str, Any] = {
            "model": self._llm.model,
            "messages": list(messages),
            "max_tokens": self._llm.max_tokens if max_tokens is None else max_tokens,
            "temperature": self._llm.temperature if temperature is None else temperature,
        }
        if structured is not None:
            form = response_format(self._accepted.format, structured)
            if form is not None:
                body["response_format"] = form
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return msgspec.json.encode(body)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        prompt_tokens: int,
        url: str,
        chunk: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
        structured: StructuredOutput | None = None,
        guard: Callable[[], AnswerGuard] | None = None,
    ) -> Completion:
        """Send one request, retrying as the classification table says.

        ``temperature`` replaces ``llm.temperature`` (a retry of an unfaithful answer uses 0),
        ``max_tokens`` replaces ``llm.max_tokens``; ``structured`` asks for JSON of a schema;
        ``guard`` makes each attempt's ``AnswerGuard``.

        Raises NeedsSplitError, ProviderFatalError (after tripping the breaker) or
        ProviderError / RateLimitExceededError when the retries are exhausted.
        """
        cap = self._llm.max_tokens if max_tokens is None else max_tokens
        estimate = prompt_tokens + cap
        failures = rate_limited = attempt = 0
        plainly = False  # this request's stream ended unexplained: ask without one
        while True:
            attempt += 1
            queued_at = trio.current_time()
            streamed = self._accepted.stream and not plainly
            style = self._accepted.format
            formatted = structured is not None and style != "none"
            payload = self.payload(
                messages,
                stream=streamed,
                temperature=temperature,
                max_tokens=cap,
                structured=structured,
            )
            async with self._breaker.guard():
                timing, outcome = await self._attempt(
                    payload,
                    estimate,
                    prompt_tokens,
                    streamed=streamed,
                    formatted=formatted,
                    guard=guard() if guard is not None else None,
                )
                if self._accepted.learn(outcome, style):
                    attempt -= 1  # not the provider's failure: send it again, as it accepts
                    continue
                self._record(outcome, timing.status)
            log_request(url, chunk, attempt, outcome, timing, queued_at)
            if isinstance(outcome, Completion):
                return outcome
            if outcome.action is Action.SPLIT:
                raise NeedsSplitError(outcome.reason)
            plainly = plainly or outcome.ask_plainly
            if outcome.action is Action.FATAL:
                raise ProviderFatalError(f"The provider refused the request: {outcome.reason}")
            if outcome.action is Action.FAIL:
                raise ProviderError(f"the provider rejected the request: {outcome.reason}")
            # Rate limiting is flow control with its own, larger budget: the limiter paces us.
            if outcome.overload:
                rate_limited += 1
                if rate_limited > RATE_LIMIT_RETRIES:
                    raise RateLimitExceededError(
                        f"still rate limited after {attempt} attempts: {outcome.reason}"
                    )
            else:
                failures += 1
                if failures > self._llm.max_retries:
                    raise ProviderError(f"gave up after {attempt} attempts: {outcome.reason}")
            # An overload pause is waited out inside the next slot(); other errors back off here.
            delay = 0.0 if outcome.overload else backoff_delay(failures, self._rng)
            log.info(
                "retry", url=url, reason=outcome.reason, delay_s=round(delay, 3), attempt=attempt
            )
            await trio.sleep(delay)

    async def _attempt(
        self,
        payload: bytes,
        estimate: int,
        prompt_tokens: int,
        *,
        streamed: bool,
        formatted: bool,
        guard: AnswerGuard | None,
    ) -> tuple[Timing, Completion | Decision]:
        """One request under the rate limiter: its timing and outcome."""
        timing = Timing()
        async with self._limiter.slot(estimate) as permit:
            # A fatal answer may have stopped the breaker while this request queued for its
            # slot: sending it now would be a request after the fatal one.
            self._breaker.raise_if_stopped()
            timing.sent_at = trio.current_time()
            flight = self._queue.start(streamed=streamed) if self._queue is not None else None
            ended: Outcome = "error"

            def on_first() -> None:
                timing.first_at = trio.current_time()
                if flight is not None and self._queue is not None:
                    self._queue.first_token(flight)

            def on_text(text: str) -> None:
                if self._queue is not None:
                    self._queue.progress()
                if self._on_tokens is not None:
                    self._on_tokens(estimate_tokens(text))

            reader = StreamReader(prompt_tokens=prompt_tokens, guard=guard)
            try:
                try:
                    response = await exchange(
                        self._open(payload),
                        reader=reader,
                        streaming=streamed,
                        timeouts=self._timeouts,
                        on_first=on_first,
                        on_text=on_text,
                        excused=lambda: 0.0 if flight is None else self._queue_excused(flight),
                        on_stream=permit.observe_stream_start,
                    )
                except NoAnswerError as exc:
                    permit.observe_failure("timeout")
                    ended = "timeout"
                    outcome: Completion | Decision = Decision(Action.RETRY, exc.reason)
                except httpx.TransportError as exc:
                    permit.observe_failure("connection")
                    outcome = transport_failure(exc, httpx.URL(self._url).host)
                else:
                    outcome = self._judge(response, permit, streamed, formatted, guard)
                    timing.status = response.status
                    ended = "ok" if isinstance(outcome, Completion) else "error"
            finally:
                if flight is not None and self._queue is not None:
                    self._queue.finish(flight, ended)
        timing.finished_at = trio.current_time()
        return timing, outcome

    def _queue_excused(self, flight: Flight) -> float:
        return 0.0 if self._queue is None else self._queue.excused(flight)

    def _judge(
        self,
        response: Exchange,
        permit: Permit,
        streamed: bool,
        formatted: bool,
        guard: AnswerGuard | None,
    ) -> Completion | Decision:
        """Classify an answer and tell the limiter what it learned."""
        status = response.status
        # Remove an echoed key before anything shortens the text around it.
        body = self._scrub_bytes(response.body)
        verdict = permit.observe(status, response.headers, body)
        if status == 200:
            if response.stream is not None:
                outcome = response.stream.result()
                stopped = response.stream.stopped  # we closed it: no usage chunk came
                if (
                    response.stream.usage_estimated
                    and not stopped
                    and isinstance(outcome, Completion)
                ):
                    self._accepted.warn_estimated_usage()
            else:
                outcome = decode_completion(body, guard)
            if outcome.prompt_tokens or outcome.completion_tokens:
                permit.observe_usage(outcome.prompt_tokens + outcome.completion_tokens)
            return outcome
        refused = self._accepted.refusal(status, body, streamed=streamed, formatted=formatted)
        if refused is not None:
            return refused
        outcome = classify(status, body, response.headers)
        if outcome.action is Action.RETRY and verdict.retry_after_s:
            reason = f"{outcome.reason} (retry after {verdict.retry_after_s:g} s)"
            outcome = Decision(Action.RETRY, reason, overload=outcome.overload)
        return outcome

    def _scrub_bytes(self, body: bytes) -> bytes:
        if self._secret and self._secret in body:
            return body.replace(self._secret, b"[REDACTED]")
        return body

    def _record(self, outcome: Completion | Decision, status: int | None) -> None:
        """Tell the breaker; inside its guard, because this attempt may be its probe."""
        if isinstance(outcome, Completion) or outcome.action is Action.SPLIT:
            self._breaker.record_success()  # a too-large chunk says nothing bad about the provider
        elif outcome.action is Action.FATAL:
            self._breaker.trip(outcome.reason)
        elif status == 429 and outcome.overload:
            pass  # flow control, not a failure: the limiter already holds every worker
        else:
            self._breaker.record_failure(outcome.reason)
