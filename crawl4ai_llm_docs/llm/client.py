"""Chat completions against any OpenAI-compatible API, with the run's one retry loop.

One pooled ``httpx.AsyncClient`` serves every request (``enable_session_pooling = false``
opens a client per request, for comparison). Each attempt waits for the circuit breaker and
the shared rate limiter, runs under ``trio.fail_after(request_timeout)``, and is classified by
``classify.classify``: retry (the limiter holds every worker through a 429's Retry-After;
other errors back off with full jitter), split (the caller halves the chunk), fatal (the
breaker trips and the run stops) or fail (this chunk only).
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
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
    causes,
)
from crawl4ai_llm_docs.llm.classify import Action, Decision, classify
from crawl4ai_llm_docs.llm.ratelimit import AdaptiveRateLimiter

log = structlog.get_logger()

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
# 429s paced by the limiter (Retry-After, growing pauses up to a minute) before giving up.
RATE_LIMIT_RETRIES = 30


class NeedsSplitError(ProviderError):
    """The chunk is too large for the provider: waiting cannot help, splitting can."""


class Message(msgspec.Struct):
    content: str | None = None


class Choice(msgspec.Struct):
    message: Message | None = None
    finish_reason: str | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResponse(msgspec.Struct):
    choices: list[Choice] = []
    usage: Usage | None = None
    model: str = ""


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class Breaker(Protocol):
    def guard(self) -> AbstractAsyncContextManager[None]: ...
    def raise_if_stopped(self) -> None: ...
    def record_success(self) -> None: ...
    def record_failure(self, reason: str) -> None: ...
    def trip(self, reason: str) -> None: ...


_response_decoder = msgspec.json.Decoder(ChatResponse)


def decode_completion(body: bytes) -> Completion | Decision:
    """A 200's body as a Completion, or a retry decision when it is unusable."""
    try:
        response = _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Decision(Action.RETRY, f"malformed response body ({str(exc)[:120]})")
    if not response.choices or response.choices[0].message is None:
        return Decision(Action.RETRY, "response has no choices")
    choice = response.choices[0]
    usage = response.usage or Usage()
    content = (choice.message.content if choice.message else None) or ""
    finish = choice.finish_reason or "stop"
    if finish == "length":
        return Decision(
            Action.SPLIT,
            "answer cut off at max_tokens (finish_reason=length)",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
    return Completion(
        content=content,
        finish_reason=finish,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        model=response.model,
    )


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
    ) -> None:
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

    async def _post(self, payload: bytes) -> httpx.Response:
        if self._pool is not None:
            return await self._pool.post(self._url, content=payload)
        async with self._new_client(1) as client:
            response = await client.post(self._url, content=payload)
            await response.aread()
            return response

    def payload(
        self, messages: Sequence[Mapping[str, str]], *, temperature: float | None = None
    ) -> bytes:
        body: dict[str, Any] = {
            "model": self._llm.model,
            "messages": list(messages),
            "max_tokens": self._llm.max_tokens,
            "temperature": self._llm.temperature if temperature is None else temperature,
        }
        return msgspec.json.encode(body)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        prompt_tokens: int,
        url: str,
        chunk: int,
        temperature: float | None = None,
    ) -> Completion:
        """Send one request, retrying as the classification table says.

        ``temperature`` replaces ``llm.temperature`` (a retry of an unfaithful answer uses 0).

        Raises NeedsSplitError, ProviderFatalError (after tripping the breaker) or
        ProviderError / RateLimitExceededError when the retries are exhausted.
        """
        payload = self.payload(messages, temperature=temperature)
        estimate = prompt_tokens + self._llm.max_tokens
        failures = rate_limited = attempt = 0
        while True:
            attempt += 1
            queued_at = trio.current_time()
            async with self._breaker.guard():
                outcome, status, sent_at, finished_at = await self._attempt(payload, estimate)
                self._record(outcome, status)
            self._log_request(
                url, chunk, attempt, status, outcome, sent_at - queued_at, finished_at - sent_at
            )
            if isinstance(outcome, Completion):
                return outcome
            if outcome.action is Action.SPLIT:
                raise NeedsSplitError(outcome.reason)
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
        self, payload: bytes, estimate: int
    ) -> tuple[Completion | Decision, int | None, float, float]:
        """One request under the rate limiter: the outcome, HTTP status and send/finish times."""
        status: int | None = None
        async with self._limiter.slot(estimate) as permit:
            # A fatal answer may have stopped the breaker while this request queued for its
            # slot: sending it now would be a request after the fatal one.
            self._breaker.raise_if_stopped()
            sent_at = trio.current_time()
            try:
                with trio.fail_after(self._parallel.request_timeout):
                    response = await self._post(payload)
            except trio.TooSlowError:
                permit.observe_failure("timeout")
                timeout = self._parallel.request_timeout
                outcome: Completion | Decision = Decision(
                    Action.RETRY, f"no answer within request_timeout ({timeout:g} s)"
                )
            except httpx.TransportError as exc:
                permit.observe_failure("connection")
                outcome = self._transport_failure(exc)
            else:
                status = response.status_code
                # Remove an echoed key before anything shortens the text around it.
                body = self._scrub_bytes(response.content)
                verdict = permit.observe(status, response.headers, body)
                if status == 200:
                    outcome = decode_completion(body)
                    if outcome.prompt_tokens or outcome.completion_tokens:
                        permit.observe_usage(outcome.prompt_tokens + outcome.completion_tokens)
                else:
                    outcome = classify(status, body, response.headers)
                    if outcome.action is Action.RETRY and verdict.retry_after_s:
                        reason = f"{outcome.reason} (retry after {verdict.retry_after_s:g} s)"
                        outcome = Decision(Action.RETRY, reason, overload=outcome.overload)
        return outcome, status, sent_at, trio.current_time()

    def _transport_failure(self, exc: httpx.TransportError) -> Decision:
        """No answer: retry a network blip, but stop on what retrying cannot change."""
        if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes(exc)):
            host = httpx.URL(self._url).host
            return Decision(
                Action.FATAL,
                f"TLS certificate verification failed for {host}: check llm.base_url, or use "
                "--insecure only for a trusted local endpoint",
            )
        return Decision(Action.RETRY, f"connection error: {type(exc).__name__}")

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

    @staticmethod
    def _log_request(
        url: str,
        chunk: int,
        attempt: int,
        status: int | None,
        outcome: Completion | Decision,
        queued_s: float,
        latency_s: float,
    ) -> None:
        log.info(
            "llm_request",
            url=url,
            chunk=chunk,
            attempt=attempt,
            status=status,
            outcome=outcome.action.value if isinstance(outcome, Decision) else "ok",
            latency_ms=round(latency_s * 1000, 1),
            queued_ms=round(queued_s * 1000, 1),
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
        )
