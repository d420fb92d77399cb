"""Error responses copied from what the real providers send, so clients see realistic bodies.

Each function returns `(status, body)`. OpenAI's shape is
`{"error": {"message", "type", "param", "code"}}`; the 529 body is Anthropic's (the only
provider that sends 529), whose `error.type` / `error.message` keys a client reads the same way.
"""

from __future__ import annotations

from typing import Any

from crawl4ai_llm_docs.testing.provider.limits import Refusal

ErrorResponse = tuple[int, dict[str, Any]]


def openai_error(
    status: int, message: str, type_: str, code: str | None, param: str | None = None
) -> ErrorResponse:
    return status, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def missing_api_key() -> ErrorResponse:
    # OpenAI answers a missing key with code null; only a wrong key says "invalid_api_key".
    return openai_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
        "field (with blank username) if you're accessing the API from your browser and are "
        "prompted for a username. You can obtain an API key from "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
    )


def invalid_api_key(key: str) -> ErrorResponse:
    shown = f"{key[:4]}{'*' * (len(key) - 8)}{key[-4:]}" if len(key) > 8 else "*" * len(key)
    return openai_error(
        401,
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def model_not_found(model: str) -> ErrorResponse:
    return openai_error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def invalid_request(message: str, param: str | None = None) -> ErrorResponse:
    return openai_error(400, message, "invalid_request_error", None, param)


def invalid_json() -> ErrorResponse:
    return invalid_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)"
    )


def invalid_url(method: str, path: str) -> ErrorResponse:
    return openai_error(404, f"Invalid URL ({method} {path})", "invalid_request_error", None)


def context_length_exceeded(limit: int, prompt: int, completion: int | None) -> ErrorResponse:
    if completion is None:
        detail = f"However, your messages resulted in {prompt} tokens. Please reduce the length of the messages."
    else:
        detail = (
            f"However, you requested {prompt + completion} tokens ({prompt} in the messages, "
            f"{completion} in the completion). Please reduce the length of the messages or "
            "completion."
        )
    return openai_error(
        400,
        f"This model's maximum context length is {limit} tokens. {detail}",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )


def insufficient_quota() -> ErrorResponse:
    return openai_error(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
    )


def rate_limited(model: str, refusal: Refusal, retry_after: int | None) -> ErrorResponse:
    """OpenAI's 429; `retry_after` None leaves out "Please try again in Ns." (a bare refusal)."""
    unit = "RPM" if refusal.kind == "requests" else "TPM"
    where = f"for {model} in organization org-fake on {refusal.kind} per min ({unit})"
    if refusal.too_large:
        head = f"Request too large {where}: Limit {refusal.limit}, Requested {refusal.requested}."
    else:
        head = (
            f"Rate limit reached {where}: Limit {refusal.limit}, Used {refusal.used}, "
            f"Requested {refusal.requested}."
        )
    return openai_error(
        429,
        f"{head}{'' if retry_after is None else f' Please try again in {retry_after}s.'} "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        refusal.kind,
        "rate_limit_exceeded",
    )


def server_error(status: int) -> ErrorResponse:
    if status == 529:
        return status, {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
    if status == 502:
        return status, {
            "error": {
                "code": 502,
                "message": "Bad gateway.",
                "param": None,
                "type": "cf_bad_gateway",
            }
        }
    if status == 503:
        return openai_error(
            503,
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        )
    return openai_error(
        status,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    )
