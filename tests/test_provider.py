"""The fake provider over real loopback HTTP: answers, rate-limit dialects, faults, stats, runners."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import msgspec
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from crawl4ai_llm_docs.testing.provider.answers import extract_document
from crawl4ai_llm_docs.testing.provider.limits import TokenBucket, openai_duration
from crawl4ai_llm_docs.testing.provider.server import (
    FakeProvider,
    document_digest,
    estimate_tokens,
    make_config,
    parse_args,
    run_in_thread,
    serve,
    start_subprocess,
    stop_subprocess,
)

GUARD = 10  # seconds; every I/O test runs under trio.fail_after(GUARD)
DOC = "# Install guide\n\nRun `pip install thing`.\n"


def chat(content: str = "hello", model: str = "fake-model", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def doc_prompt(text: str = DOC) -> str:
    return f"Clean this page.\n<document>\n{text}\n</document>\nThanks."


@asynccontextmanager
async def running(**fields: Any) -> AsyncIterator[tuple[FakeProvider, httpx.AsyncClient]]:
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            handle: FakeProvider = await nursery.start(serve, make_config(fields))
            async with httpx.AsyncClient(base_url=handle.base_url, timeout=5) as client:
                yield handle, client
            nursery.cancel_scope.cancel()


def parse_openai_duration(text: str) -> float:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:([\d.]+)s)?(?:(\d+)ms)?", text)
    assert text, "empty duration"
    assert match is not None, text
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def parse_ietf(value: str) -> dict[str, dict[str, int]]:
    """Parse a structured-field list like `"default";r=2;t=1, "tokens";r=5;t=3`."""
    items: dict[str, dict[str, int]] = {}
    for item in value.split(","):
        name, *params = item.strip().split(";")
        assert name.startswith('"'), value
        assert name.endswith('"'), value
        items[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return items


# --- answers -----------------------------------------------------------------------------


async def test_success_shape_and_deterministic_document_answer() -> None:
    async with running() as (handle, client):
        first = await client.post("/chat/completions", json=chat(doc_prompt()))
        second = await client.post("/chat/completions", json=chat(doc_prompt()))
    assert first.status_code == 200
    body = first.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "fake-model"
    content = body["choices"][0]["message"]["content"]
    assert content == f'<!-- description: Fake summary of "Install guide". -->\n\n{DOC.strip()}'
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == math.ceil(len(doc_prompt()) / 4)
    assert usage["completion_tokens"] == estimate_tokens(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert second.json()["choices"][0]["message"]["content"] == content
    assert handle.stats().documents == [document_digest(DOC)] * 2


async def test_documents_listed_in_arrival_order_not_completion_order() -> None:
    slow, fast = "# Slow\n" + "s" * 4000, "# Fast\n"
    async with (
        running(latency_per_1k_tokens=1.0) as (handle, client),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(partial(client.post, "/chat/completions", json=chat(doc_prompt(slow))))
        await trio.sleep(0.2)  # let the slow one arrive first
        fast_reply = await client.post("/chat/completions", json=chat(doc_prompt(fast)))
        assert handle.stats().documents == [document_digest(fast)]  # the slow one is pending
    assert fast_reply.status_code == 200
    assert handle.stats().documents == [document_digest(slow), document_digest(fast)]


async def test_echo_and_first_chars_title() -> None:
    plain = "no heading here, " * 10
    async with running() as (_, client):
        echo = await client.post("/chat/completions", json=chat("just echo me"))
        untitled = await client.post("/chat/completions", json=chat(doc_prompt(plain)))
    assert echo.json()["choices"][0]["message"]["content"] == "just echo me"
    first_line = untitled.json()["choices"][0]["message"]["content"].splitlines()[0]
    assert first_line == f'<!-- description: Fake summary of "{plain.strip()[:60]}". -->'


@given(st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=200))
def test_document_round_trips_through_the_tags(text: str) -> None:
    assert extract_document(f"x<document>{text}</document>y") == text.strip()


# --- rate limits and header dialects -------------------------------------------------------


async def test_openai_dialect_counts_down_then_429_with_retry_after() -> None:
    async with running(rpm=60, burst_requests=3, tpm=6000) as (_, client):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    remaining = [int(r.headers["x-ratelimit-remaining-requests"]) for r in responses]
    assert remaining == [2, 1, 0, 0]
    assert all(r.headers["x-ratelimit-limit-requests"] == "60" for r in responses)
    assert all(r.headers["x-ratelimit-limit-tokens"] == "6000" for r in responses)
    # One request refills per second, so the bucket is full again after `used` seconds.
    resets = [parse_openai_duration(r.headers["x-ratelimit-reset-requests"]) for r in responses]
    assert resets[:3] == pytest.approx([1, 2, 3], abs=0.25)
    limited = responses[3]
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.json()["error"]["type"] == "requests"
    assert "retry-after" not in responses[0].headers


async def test_minute_scope_reports_the_minute_while_the_burst_enforces() -> None:
    # OpenAI's documented reading: limit and remaining per minute, enforced over less.
    async with running(rpm=60, burst_requests=3, header_scope="minute") as (_, client):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    remaining = [int(r.headers["x-ratelimit-remaining-requests"]) for r in responses]
    assert remaining == [59, 58, 57, 57]  # "57 left" while the burst of 3 is spent
    resets = [parse_openai_duration(r.headers["x-ratelimit-reset-requests"]) for r in responses]
    assert resets[:3] == pytest.approx([1, 2, 3], abs=0.25)  # the minute bucket refills 1/s
    limited = responses[3]
    assert limited.headers["retry-after"] == "1"
    assert 0 < int(limited.headers["retry-after-ms"]) <= 1000  # the exact wait, < the minute
    assert "retry-after-ms" not in responses[0].headers
    _, config = parse_args(["--header-scope", "minute", "--rpm", "60"])
    assert config.header_scope == "minute"


async def test_bucket_scope_429_has_no_retry_after_ms() -> None:
    async with running(rpm=60, burst_requests=1) as (_, client):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 429]
    assert "retry-after-ms" not in responses[1].headers


async def test_token_bucket_refuses_request_that_does_not_fit() -> None:
    big = "x" * 400  # 100 prompt tokens
    async with running(tpm=600, burst_tokens=250) as (handle, client):
        ok = await client.post("/chat/completions", json=chat(big, max_tokens=100))
        limited = await client.post("/chat/completions", json=chat(big, max_tokens=100))
    assert ok.status_code == 200
    assert int(ok.headers["x-ratelimit-remaining-tokens"]) == 50
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "tokens"
    # 150 tokens missing at 10 tokens/s.
    assert limited.headers["retry-after"] == "15"
    assert handle.stats().rate_limited == 1


async def test_anthropic_dialect_headers() -> None:
    async with running(rpm=60, burst_requests=2, tpm=1000, header_dialect="anthropic") as (
        _,
        client,
    ):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["anthropic-ratelimit-requests-remaining"] for r in responses] == [
        "1",
        "0",
        "0",
    ]
    assert responses[0].headers["anthropic-ratelimit-requests-limit"] == "60"
    assert responses[0].headers["anthropic-ratelimit-tokens-limit"] == "1000"
    reset = datetime.strptime(
        responses[1].headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=UTC)
    assert 0 <= (reset - datetime.now(UTC)).total_seconds() <= 3
    assert responses[2].headers["retry-after"] == "1"
    assert not any(name.startswith("x-ratelimit") for name in responses[0].headers)


async def test_ietf_dialect_structured_fields() -> None:
    async with running(rpm=60, burst_requests=2, header_dialect="ietf") as (_, client):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert parse_ietf(responses[0].headers["ratelimit-policy"]) == {"default": {"q": 60, "w": 60}}
    states = [parse_ietf(r.headers["ratelimit"])["default"] for r in responses]
    assert [s["r"] for s in states] == [1, 0, 0]
    assert [s["t"] for s in states] == [1, 2, 2]
    assert responses[2].headers["retry-after"] == "1"


async def test_none_dialect_sends_no_rate_limit_headers() -> None:
    async with running(rpm=60, burst_requests=1, header_dialect="none") as (_, client):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 429]
    for response in responses:
        names = set(response.headers)
        assert not {n for n in names if "ratelimit" in n or n == "retry-after"}, names


def test_openai_duration_format() -> None:
    assert openai_duration(0.012) == "12ms"
    assert openai_duration(1.0) == "1s"
    assert openai_duration(360) == "6m0s"
    assert openai_duration(179.56) == "2m59.56s"
    assert openai_duration(0) == "0s"


def test_token_bucket_refills_at_limit_per_minute() -> None:
    bucket = TokenBucket(limit_per_minute=60, capacity=3, now=0.0)
    bucket.take(3, now=0.0)
    assert bucket.wait_for(1, now=0.0) == pytest.approx(1.0)
    assert bucket.remaining(now=2.5) == 2
    assert bucket.until_full(now=2.5) == pytest.approx(0.5)
    assert bucket.remaining(now=100.0) == 3  # never above the burst


# --- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (500, "server_error"),
        (502, "cf_bad_gateway"),
        (503, "server_error"),
        (529, "overloaded_error"),
    ],
)
async def test_injected_server_errors(code: int, error_type: str) -> None:
    async with running(error_rate=1.0, error_codes=[code]) as (handle, client):
        response = await client.post("/chat/completions", json=chat())
    assert response.status_code == code
    assert response.json()["error"]["type"] == error_type
    assert handle.stats().injected == {"error": 1}
    assert handle.stats().successes == 0


async def test_hang_until_client_goes_away() -> None:
    async with running(hang_rate=1.0) as (handle, client):
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat(), timeout=0.3)
        assert handle.stats().max_in_flight == 1
        await handle.wait_idle()  # the server notices the disconnect and finishes
        assert handle.stats().in_flight == 0
    assert handle.stats().injected == {"hang": 1}


async def test_client_timeout_during_latency_is_no_success() -> None:
    async with running(latency=2.0) as (handle, client):
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat(doc_prompt()), timeout=0.2)
        with trio.fail_after(1):  # far less than the 2 s latency: the handler stopped early
            await handle.wait_idle()
    stats = handle.stats()
    assert (stats.abandoned, stats.successes, stats.documents) == (1, 0, [])


async def test_drop_aborts_mid_body() -> None:
    async with running(drop_rate=1.0) as (handle, client):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/chat/completions", json=chat())
    assert handle.stats().injected == {"drop": 1}


async def test_malformed_json_body() -> None:
    async with running(malformed_rate=1.0) as (_, client):
        response = await client.post("/chat/completions", json=chat())
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_empty_choices() -> None:
    async with running(empty_choices_rate=1.0) as (handle, client):
        response = await client.post("/chat/completions", json=chat())
    assert response.status_code == 200
    assert response.json()["choices"] == []
    assert handle.stats().successes == 0


async def test_same_seed_same_fault_sequence() -> None:
    async def statuses(seed: int) -> list[int]:
        async with running(seed=seed, error_rate=0.5, error_codes=[503]) as (_, client):
            return [
                (await client.post("/chat/completions", json=chat())).status_code for _ in range(12)
            ]

    first = await statuses(7)
    assert first == await statuses(7)
    assert {200, 503} == set(first)


# --- fatal and request errors ----------------------------------------------------------


async def test_quota_after_is_fatal_with_openai_body() -> None:
    async with running(quota_after=2) as (handle, client):
        responses = [await client.post("/chat/completions", json=chat()) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 429]
    assert responses[2].json() == {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing "
            "details. For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    stats = handle.stats()
    assert stats.requests_after_fatal == 2
    assert stats.quota_refused == 3
    assert stats.rate_limited == 0
    assert stats.by_status == {200: 2, 429: 3}


async def test_context_limit() -> None:
    async with running(context_limit=100) as (_, client):
        ok = await client.post("/chat/completions", json=chat("x" * 200, max_tokens=50))
        too_long = await client.post("/chat/completions", json=chat("x" * 200, max_tokens=60))
    assert ok.status_code == 200
    assert too_long.status_code == 400
    error = too_long.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "messages"
    assert error["message"] == (
        "This model's maximum context length is 100 tokens. However, you requested 110 tokens "
        "(50 in the messages, 60 in the completion). Please reduce the length of the messages "
        "or completion."
    )


async def test_truncation_gives_finish_reason_length() -> None:
    async with running(max_output_tokens=5) as (_, client):
        by_request = await client.post("/chat/completions", json=chat("y" * 40, max_tokens=3))
        by_server = await client.post("/chat/completions", json=chat("z" * 40))
        short = await client.post("/chat/completions", json=chat("ok"))
    assert by_request.json()["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "y" * 12, "refusal": None},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert by_request.json()["usage"]["completion_tokens"] == 3
    assert by_server.json()["choices"][0]["message"]["content"] == "z" * 20
    assert by_server.json()["choices"][0]["finish_reason"] == "length"
    assert short.json()["choices"][0]["finish_reason"] == "stop"


async def test_api_key_required() -> None:
    async with running(require_api_key="sk-good-key-123456") as (_, client):
        missing = await client.post("/chat/completions", json=chat())
        wrong = await client.post(
            "/chat/completions", json=chat(), headers={"Authorization": "Bearer sk-bad-key-999999"}
        )
        good = await client.post(
            "/chat/completions", json=chat(), headers={"Authorization": "Bearer sk-good-key-123456"}
        )
        models = await client.get("/models")
    assert missing.status_code == wrong.status_code == models.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-bad-key-999999" not in wrong.text  # the key is masked like OpenAI does
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key.")
    assert good.status_code == 200


async def test_unknown_model_404_and_models_list() -> None:
    async with running(models=["model-a", "model-b"]) as (_, client):
        unknown = await client.post("/chat/completions", json=chat(model="gpt-nope"))
        known = await client.post("/chat/completions", json=chat(model="model-b"))
        listing = await client.get("/models")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "message": "The model `gpt-nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    assert known.status_code == 200
    assert [m["id"] for m in listing.json()["data"]] == ["model-a", "model-b"]


async def test_bad_bodies_get_400() -> None:
    async with running() as (_, client):
        not_json = await client.post("/chat/completions", content=b"{nope")
        no_messages = await client.post("/chat/completions", json={"model": "m"})
    assert not_json.status_code == no_messages.status_code == 400
    assert "messages" in no_messages.json()["error"]["message"]


# --- stats and control ------------------------------------------------------------------


async def test_max_in_flight_and_connections_opened() -> None:
    async with running(latency=0.3) as (handle, client):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(partial(client.post, "/chat/completions", json=chat()))
        assert handle.stats().max_in_flight == 5
        assert handle.stats().connections_opened == 5  # five requests at once, five sockets

        await handle.wait_idle()  # responses can reach us before the handlers return
        handle.update(latency=0.0)
        handle.reset()
        async with httpx.AsyncClient(base_url=handle.base_url) as pooled:
            for _ in range(3):
                await pooled.post("/chat/completions", json=chat())
        assert handle.stats().connections_opened == 1
        for _ in range(2):
            async with httpx.AsyncClient(base_url=handle.base_url) as fresh:
                await fresh.post("/chat/completions", json=chat())
        stats = handle.stats()
    assert stats.connections_opened == 3
    assert stats.max_in_flight == 1
    assert stats.requests == stats.successes == 5
    assert stats.first_request_at is not None
    assert stats.last_request_at is not None
    assert stats.first_request_at <= stats.last_request_at


async def test_control_endpoint_changes_behaviour_mid_run() -> None:
    async with running() as (handle, client):
        root = handle.url
        before = await client.post("/chat/completions", json=chat())
        changed = await client.post(
            f"{root}/_control", json={"error_rate": 1, "error_codes": [503]}
        )
        after = await client.post("/chat/completions", json=chat())
        rejected = await client.post(f"{root}/_control", json={"error_rate": 2})
        unknown = await client.post(f"{root}/_control", json={"no_such_knob": 1})
        stats = (await client.get(f"{root}/_stats")).json()
        await client.post(f"{root}/_reset")
        zeroed = (await client.get(f"{root}/_stats")).json()
    assert before.status_code == 200
    assert changed.json()["error_rate"] == 1.0
    assert after.status_code == 503
    assert rejected.status_code == unknown.status_code == 400
    assert handle.config.error_rate == 1.0  # rejected changes leave the config alone
    assert stats["requests"] == 2
    assert stats["by_status"] == {"200": 1, "503": 1}
    assert set(stats) >= {"successes", "rate_limited", "max_in_flight", "documents"}
    assert zeroed["requests"] == 0
    assert zeroed["by_status"] == {}


async def test_update_rejects_invalid_values() -> None:
    async with running() as (handle, _):
        with pytest.raises(msgspec.ValidationError):
            handle.update(hang_rate=-1)


# --- runners ------------------------------------------------------------------------------


def test_run_in_thread_with_blocking_client() -> None:
    with run_in_thread(make_config({"rpm": 60, "burst_requests": 1})) as handle:
        with httpx.Client(base_url=handle.base_url, timeout=5) as client:
            first = client.post("/chat/completions", json=chat(doc_prompt()))
            second = client.post("/chat/completions", json=chat())
            handle.update(rpm=None)
            third = client.post("/chat/completions", json=chat())
        stats = handle.stats()
    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]
    assert stats.documents == [document_digest(DOC)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handle.url}/_stats", timeout=2)  # stopped on exit


def test_module_entry_point() -> None:
    process, base_url = start_subprocess(["--models", "m1", "--rpm", "5"])
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        ok = httpx.post(f"{base_url}/chat/completions", json=chat(model="m1"), timeout=5)
        unknown = httpx.post(f"{base_url}/chat/completions", json=chat(model="m2"), timeout=5)
    finally:
        code = stop_subprocess(process)
    assert ok.json()["choices"][0]["message"]["content"] == "hello"
    assert ok.headers["x-ratelimit-limit-requests"] == "5"  # flags reached the server
    assert unknown.status_code == 404
    assert code == 0  # SIGTERM is a clean shutdown


def test_cli_flags_map_to_config(capsys: pytest.CaptureFixture[str]) -> None:
    port, config = parse_args(
        [
            "--port",
            "0",
            "--rpm",
            "10",
            "--latency",
            "0.5",
            "--error-codes",
            "500, 503",
            "--header-dialect",
            "ietf",
            "--require-api-key",
            "sk-x",
        ]
    )
    assert port == 0
    assert (config.rpm, config.latency, config.error_codes) == (10, 0.5, (500, 503))
    assert (config.header_dialect, config.require_api_key) == ("ietf", "sk-x")
    with pytest.raises(SystemExit):
        parse_args(["--quota-after", "-3"])
    assert "--quota-after" in capsys.readouterr().err
