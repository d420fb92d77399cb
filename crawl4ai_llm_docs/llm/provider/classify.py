"""What to do with a provider's answer: one table, used by the retry loop and by the tests.

    RETRY  wait (server-given or backoff) and send the same request again
    SPLIT  the chunk is too large: waiting can never help, split it and retry the halves
    FATAL  stop sending at once for the whole run (bad key, no quota, unknown model)
    OK     use the answer

``x-should-retry: true|false`` (sent by OpenAI and others) overrides RETRY/FAIL for
statuses that are not fatal by nature.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from crawl4ai_llm_docs.errors import causes


class Action(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    SPLIT = "split"
    FATAL = "fatal"
    FAIL = "failed"  # give up on this request only (e.g. a 400 that is not about size)


class Decision(msgspec.Struct, frozen=True):
    action: Action
    reason: str
    overload: bool = False  # a 429/503/529-style signal: the rate limiter should back off
    # Tokens the provider billed for an answer that was still unusable (e.g. cut off).
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # A stream that ended before its first event: the server failed after its 200 and could
    # not say why (llama-cpp-python, for a prompt over its context). Asked again without
    # streaming, the same failure comes back as an error that says it (and may be split).
    ask_plainly: bool = False


RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
OVERLOAD_STATUSES = frozenset({429, 503, 529})
FATAL_STATUSES = frozenset({401, 402, 403})
FATAL_CODES = frozenset(
    {
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
        "invalid_api_key",
        "account_deactivated",
        "model_not_found",
        "access_terminated",
    }
)
SPLIT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
FATAL_MESSAGE_HINTS = (
    "exceeded your current quota",
    "credit balance",
    "spend limit",
    "billing",
    "insufficient balance",
)
SPLIT_MESSAGE_HINTS = (
    "request too large",
    "maximum context length",
    "context length",
    "too many tokens",
    "prompt is too long",
)


class ErrorBody(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | int | None = None
    status: str | None = None  # Gemini puts e.g. RESOURCE_EXHAUSTED here


def parse_error(body: bytes) -> ErrorBody:
    """Extract the error object from OpenAI-, Anthropic- and Gemini-style bodies; never raises."""
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ErrorBody(message=body[:300].decode("utf-8", "replace"))
    if isinstance(data, list) and data:  # Gemini sometimes wraps the error in an array
        data = data[0]
    if not isinstance(data, dict):
        return ErrorBody()
    error = data.get("error", data)
    if isinstance(error, str):
        return ErrorBody(message=error)
    if not isinstance(error, dict):
        return ErrorBody()
    code = error.get("code")
    return ErrorBody(
        message=str(error.get("message") or ""),
        type=str(error["type"]) if error.get("type") is not None else None,
        code=code if isinstance(code, str | int) else None,
        status=str(error["status"]) if error.get("status") is not None else None,
    )


def classify(status: int, body: bytes, headers: Mapping[str, str]) -> Decision:
    """Decide what to do with one HTTP answer (status != 200, or a 200 with a bad body)."""
    error = parse_error(body)
    code = str(error.code or error.type or error.status or "").lower()
    message = error.message.lower()
    what = (
        f"HTTP {status}"
        + (f" {code}" if code else "")
        + (f": {error.message[:200]}" if error.message else "")
    )

    if code in SPLIT_CODES or (
        status in {400, 413, 429} and any(h in message for h in SPLIT_MESSAGE_HINTS)
    ):
        return Decision(Action.SPLIT, what)
    if code in FATAL_CODES or status in FATAL_STATUSES:
        return Decision(Action.FATAL, what)
    if status == 404:
        # An unknown model or a wrong base URL: every further request would fail the same way.
        return Decision(Action.FATAL, what)
    if status in {400, 402, 429} and any(h in message for h in FATAL_MESSAGE_HINTS):
        return Decision(Action.FATAL, what)
    should_retry = headers.get("x-should-retry", "").strip().lower()
    if should_retry == "false":
        return Decision(Action.FAIL, what)
    if status in RETRY_STATUSES or should_retry == "true" or status >= 500:
        return Decision(Action.RETRY, what, overload=status in OVERLOAD_STATUSES)
    return Decision(Action.FAIL, what)


def transport_failure(exc: httpx.TransportError, host: str) -> Decision:
    """No answer: retry a network blip, but stop on what retrying cannot change."""
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes(exc)):
        return Decision(
            Action.FATAL,
            f"TLS certificate verification failed for {host}: check llm.base_url, or use "
            "--insecure only for a trusted local endpoint",
        )
    return Decision(Action.RETRY, f"connection error: {type(exc).__name__}")
