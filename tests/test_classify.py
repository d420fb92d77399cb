"""The error classification table, with the bodies real providers send."""

from __future__ import annotations

import json

import pytest

from crawl4ai_llm_docs.llm.provider.classify import Action, classify, parse_error


def openai_error(message: str, type_: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}
    ).encode()


RATE_LIMIT = openai_error(
    "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1. Please try again in 20s.",
    "requests",
    "rate_limit_exceeded",
)
TOO_LARGE = openai_error(
    "Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, "
    "Requested 45000. The input or output tokens must be reduced in order to run successfully.",
    "tokens",
    "rate_limit_exceeded",
)
QUOTA = openai_error(
    "You exceeded your current quota, please check your plan and billing details.",
    "insufficient_quota",
    "insufficient_quota",
)
CONTEXT = openai_error(
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "130000 tokens. Please reduce the length of the messages.",
    "invalid_request_error",
    "context_length_exceeded",
)
BAD_KEY = openai_error(
    "Incorrect API key provided: sk-abc***.", "invalid_request_error", "invalid_api_key"
)
NO_MODEL = openai_error(
    "The model `gpt-9` does not exist or you do not have access to it.",
    "invalid_request_error",
    "model_not_found",
)
ANTHROPIC_OVERLOADED = json.dumps(
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
).encode()
ANTHROPIC_TOO_LONG = json.dumps(
    {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 210000 tokens > 200000 maximum",
        },
    }
).encode()
ANTHROPIC_CREDIT = json.dumps(
    {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "Your credit balance is too low to access the Anthropic API.",
        },
    }
).encode()
GEMINI_EXHAUSTED = json.dumps(
    [
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
            }
        }
    ]
).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "action", "overload"),
    [
        (429, RATE_LIMIT, {}, Action.RETRY, True),
        (429, openai_error("slow down", "slow_down", "slow_down"), {}, Action.RETRY, True),
        (408, b"", {}, Action.RETRY, False),
        (409, b"", {}, Action.RETRY, False),
        (500, b"oops", {}, Action.RETRY, False),
        (502, b"<html>bad gateway</html>", {}, Action.RETRY, False),
        (503, b"", {}, Action.RETRY, True),
        (504, b"", {}, Action.RETRY, False),
        (529, ANTHROPIC_OVERLOADED, {}, Action.RETRY, True),
        (429, GEMINI_EXHAUSTED, {}, Action.RETRY, True),
        (400, CONTEXT, {}, Action.SPLIT, False),
        (429, TOO_LARGE, {}, Action.SPLIT, False),
        (400, ANTHROPIC_TOO_LONG, {}, Action.SPLIT, False),
        (401, BAD_KEY, {}, Action.FATAL, False),
        (403, b"forbidden", {}, Action.FATAL, False),
        (402, b"payment required", {}, Action.FATAL, False),
        (404, NO_MODEL, {}, Action.FATAL, False),
        (429, QUOTA, {}, Action.FATAL, False),
        (400, ANTHROPIC_CREDIT, {}, Action.FATAL, False),
        (400, openai_error("bad param", "invalid_request_error", None), {}, Action.FAIL, False),
        (500, b"", {"x-should-retry": "false"}, Action.FAIL, False),
        (400, b"", {"x-should-retry": "true"}, Action.RETRY, False),
        (401, BAD_KEY, {"x-should-retry": "true"}, Action.FATAL, False),
    ],
)
def test_table(
    status: int, body: bytes, headers: dict[str, str], action: Action, overload: bool
) -> None:
    decision = classify(status, body, headers)
    assert decision.action is action, decision.reason
    assert decision.overload is overload
    assert f"HTTP {status}" in decision.reason


def test_reason_carries_code_and_message() -> None:
    decision = classify(429, QUOTA, {})
    assert "insufficient_quota" in decision.reason
    assert "exceeded your current quota" in decision.reason


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b"null", b"42", b'{"error": 5}', b'{"error": "plain text"}']
)
def test_parse_error_never_raises(body: bytes) -> None:
    parse_error(body)
