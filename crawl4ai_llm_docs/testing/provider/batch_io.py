"""Wire formats of the fake Batch API: multipart bodies, ASGI replies and result lines."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from hypercorn.typing import ASGISendCallable, HTTPScope

from crawl4ai_llm_docs.testing.provider import errors
from crawl4ai_llm_docs.testing.provider.answers import ChatRequest, answer
from crawl4ai_llm_docs.testing.provider.state import ProviderState

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def answer_line(state: ProviderState, custom_id: str, request_id: str, body: bytes) -> bytes:
    """An output line: the chat endpoint's answer to the line's request."""
    request = msgspec.json.decode(body, type=ChatRequest)
    config = state.config
    result = answer(request, config.max_output_tokens, config.unfaithful_above_temperature)
    completion = {
        "id": state.next_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.content, "refusal": None},
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }
    response = {"status_code": 200, "request_id": request_id, "body": completion}
    return msgspec.json.encode(
        {"id": request_id, "custom_id": custom_id, "response": response, "error": None}
    )


def error_line(custom_id: str, request_id: str) -> bytes:
    body = {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    response = {"status_code": 500, "request_id": request_id, "body": body}
    return msgspec.json.encode(
        {"id": request_id, "custom_id": custom_id, "response": response, "error": None}
    )


def expired_line(custom_id: str, request_id: str) -> bytes:
    error = {"code": "batch_expired", "message": EXPIRED_MESSAGE}
    return msgspec.json.encode(
        {"id": request_id, "custom_id": custom_id, "response": None, "error": error}
    )


def missing(kind: str, identifier: str) -> errors.ErrorResponse:
    return errors.openai_error(
        404, f"No such {kind}: '{identifier}'", "invalid_request_error", None, "id"
    )


def query(scope: HTTPScope) -> dict[str, str]:
    pairs = scope["query_string"].decode("latin-1").split("&")
    return dict(pair.partition("=")[::2] for pair in pairs if pair)


def multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]] | None:
    """The fields of a multipart/form-data body: name -> (filename, data)."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data" or "boundary=" not in params:
        return None
    boundary = params.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        disposition = next(
            (
                line
                for line in head.decode("latin-1").split("\r\n")
                if line.lower().startswith("content-disposition")
            ),
            "",
        )
        attrs = dict(
            item.strip().partition("=")[::2] for item in disposition.split(";")[1:] if "=" in item
        )
        name = attrs.get("name", "").strip('"')
        filename = attrs["filename"].strip('"') if "filename" in attrs else None
        fields[name] = (filename, data.removesuffix(b"\r\n"))
    return fields


async def send_json(send: ASGISendCallable, status: int, payload: Any) -> None:
    await send_raw(send, msgspec.json.encode(payload), status=status, kind=b"application/json")


async def send_raw(
    send: ASGISendCallable,
    data: bytes,
    *,
    status: int = 200,
    kind: bytes = b"application/octet-stream",
) -> None:
    headers = [(b"content-type", kind), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})
