"""`check_provider` and `render` against the fake provider over loopback HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from crawl4ai_llm_docs.config import AppConfig, LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import InputError, ProviderFatalError
from crawl4ai_llm_docs.llm.limits.headers import BucketInfo
from crawl4ai_llm_docs.llm.provider.check import (
    DEFAULT_CONCURRENCY,
    CheckResult,
    check_provider,
    render,
    suggest_concurrency,
    with_probe,
)
from crawl4ai_llm_docs.llm.provider.probe import Wave, analyse
from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, serve

GUARD = 10  # seconds: the hang guard of every test that does I/O
KEY = "sk-check-0123456789abcdef"


@asynccontextmanager
async def provider(**fields: Any) -> AsyncIterator[FakeProvider]:
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            handle: FakeProvider = await nursery.start(serve, make_config(fields))
            yield handle
            nursery.cancel_scope.cancel()


def config(base_url: str, *, model: str = "fake-model", **parallel: Any) -> AppConfig:
    return AppConfig(
        llm=LLMConfig(base_url=base_url, model=model), parallel=ParallelConfig(**parallel)
    )


async def check(base_url: str, *, key: str | None = KEY, **options: Any) -> CheckResult:
    with trio.fail_after(GUARD):
        return await check_provider(config(base_url, **options), api_key=key)


async def test_success_shows_openai_limits_and_a_suggestion() -> None:
    async with provider(rpm=600, tpm=100_000, latency=0.3, require_api_key=KEY) as fake:
        result = await check(fake.base_url)
        [request_count] = [fake.stats().requests]
    assert request_count == 7  # one tiny request alone, then 2 and 4 at once
    assert result.ok
    assert result.problem is None
    assert (result.model, result.status, result.reply) == ("fake-model", 200, "Reply with OK")
    assert 0.3 <= result.latency_s < 2.0
    assert (result.requests.limit, result.tokens.limit) == (600, 100_000)
    assert result.requests.remaining is not None
    assert result.tokens.remaining is not None
    expected = max(1, min(20, round(600 / 60 * result.latency_s * 0.9)))
    assert result.suggested_concurrency == expected
    assert 2 <= expected <= 5
    text = render(result)
    assert text.startswith("Provider check: OK")
    assert "600 requests per minute" in text
    assert "100,000 tokens per minute" in text
    assert f"max_concurrent_requests = {expected} (configured: 4)" in text
    assert "chunks take longer than this answer" in text  # a floor, said so
    assert f"{fake.base_url}/chat/completions" in text
    assert KEY not in text


@pytest.mark.parametrize("dialect", ["anthropic", "ietf"])
async def test_other_dialects_show_the_limits(dialect: str) -> None:
    async with provider(rpm=120, tpm=50_000, header_dialect=dialect) as fake:
        result = await check(fake.base_url)
    assert result.ok
    assert (result.requests.limit, result.tokens.limit) == (120, 50_000)
    assert "120 requests per minute" in render(result)


async def test_no_headers_says_none_advertised() -> None:
    async with provider(header_dialect="none", rpm=600) as fake:
        result = await check(fake.base_url, max_concurrent_requests=7)
    assert result.ok
    assert not result.limits_advertised
    assert result.suggested_concurrency == DEFAULT_CONCURRENCY
    text = render(result)
    assert "none advertised" in text
    assert "max_concurrent_requests = 4 (configured: 7)" in text
    assert "chunks take longer" not in text


async def test_wrong_key() -> None:
    async with provider(require_api_key="sk-the-right-one") as fake:
        with pytest.raises(ProviderFatalError) as caught:
            await check(fake.base_url)
    message = caught.value.message
    assert "rejected the API key" in message
    assert "HTTP 401" in message
    assert "$OPENAI_API_KEY" in message  # names where the key comes from
    assert KEY not in message


async def test_missing_key() -> None:
    async with provider(require_api_key="sk-the-right-one") as fake:
        with pytest.raises(ProviderFatalError, match=r"OPENAI_API_KEY is not set"):
            await check(fake.base_url, key=None)


async def test_unknown_model() -> None:
    async with provider(models=["gpt-real"]) as fake:
        with pytest.raises(ProviderFatalError) as caught:
            await check(fake.base_url, model="gpt-typo")
    message = caught.value.message
    assert "'gpt-typo'" in message
    assert "model_not_found" in message
    assert "llm.model" in message
    assert f"{fake.base_url}/models" in message


async def test_wrong_path() -> None:
    async with provider() as fake:
        with pytest.raises(InputError) as caught:
            await check(fake.url + "/api")  # the /v1 is missing
    message = caught.value.message
    assert "HTTP 404" in message
    assert "llm.base_url" in message
    assert "/v1" in message


async def test_connection_refused_on_a_closed_port() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, and nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError) as caught:
        await check(f"http://127.0.0.1:{port}/v1")
    message = caught.value.message
    assert f"127.0.0.1:{port}" in message
    assert "connection refused" in message
    assert "llm.base_url" in message


async def test_quota() -> None:
    async with provider(quota_after=0) as fake:
        with pytest.raises(ProviderFatalError) as caught:
            await check(fake.base_url)
    assert "insufficient_quota" in caught.value.message
    assert "billing" in caught.value.message


async def test_timeout() -> None:
    async with provider(hang_rate=1.0) as fake:
        with pytest.raises(ProviderFatalError) as caught:
            await check(fake.base_url, request_timeout=0.3)
    assert "parallel.request_timeout (0.3 s)" in caught.value.message


async def test_tls_error() -> None:
    async with provider() as fake:
        with pytest.raises(InputError) as caught:  # https:// to a plain-HTTP server
            await check(fake.base_url.replace("http://", "https://"))
    message = caught.value.message
    assert "TLS handshake" in message
    assert "llm.verify_tls" in message
    assert "http://" in message


async def test_busy_provider_is_not_ok_but_reports() -> None:
    async with provider(error_rate=1.0, error_codes=[503]) as fake:
        result = await check(fake.base_url)
    assert not result.ok
    assert result.problem is not None
    assert "HTTP 503" in result.problem
    assert render(result).startswith("Provider check: NOT OK")


async def test_rate_limited_still_shows_limits() -> None:
    async with provider(rpm=1) as fake:
        assert (await check(fake.base_url)).ok  # the one request of the minute
        result = await check(fake.base_url)
    assert not result.ok
    assert result.status == 429
    assert result.requests.limit == 1
    assert result.retry_after_s is not None
    text = render(result)
    assert "rate limited" in text
    assert "retry after" in text


async def test_key_echoed_by_a_provider_is_removed() -> None:
    async def echo(request: httpx.Request) -> httpx.Response:
        said = f"Incorrect API key provided: {KEY}"
        return httpx.Response(401, json={"error": {"message": said, "code": "invalid_api_key"}})

    with trio.fail_after(GUARD), pytest.raises(ProviderFatalError) as caught:
        await check_provider(
            config("https://llm.example/v1"), api_key=KEY, transport=httpx.MockTransport(echo)
        )
    assert KEY not in str(caught.value)
    assert "[REDACTED]" in str(caught.value)


async def test_unknown_host() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    with trio.fail_after(GUARD), pytest.raises(InputError) as caught:
        await check_provider(
            config("https://api.opnai.com/v1"), api_key=KEY, transport=httpx.MockTransport(fail)
        )
    assert "'api.opnai.com'" in caught.value.message
    assert "cannot be resolved" in caught.value.message


async def test_html_page_is_not_an_api() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<!doctype html><title>Welcome</title>")

    with trio.fail_after(GUARD), pytest.raises(InputError, match="not with a chat completion"):
        await check_provider(
            config("https://example.com"), api_key=KEY, transport=httpx.MockTransport(html)
        )


@pytest.mark.parametrize(
    ("limit", "window", "latency", "expected"),
    [
        (None, None, 3.0, DEFAULT_CONCURRENCY),  # nothing advertised
        (600, None, 0.5, 4),  # 10/s x 0.5 s x 0.9 = 4.5
        (600, 60.0, 2.0, 18),
        (10_000, None, 1.0, 20),  # capped
        (3, None, 0.2, 1),  # at least one
        (100, 10.0, 0.5, 4),  # a 10 s window: 10/s
    ],
)
def test_suggest_concurrency(
    limit: int | None, window: float | None, latency: float, expected: int
) -> None:
    suggested, basis = suggest_concurrency(BucketInfo(limit=limit, window_s=window), latency)
    assert suggested == expected
    assert basis


def test_check_command_through_the_cli(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crawl4ai_llm_docs.cli.app import run_cli
    from crawl4ai_llm_docs.testing.provider.server import run_in_thread

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.chdir(tmp_path)
    with run_in_thread(make_config({"rpm": 600, "require_api_key": KEY})) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        assert run_cli(["check"]) == 0
        out = capsys.readouterr().out
        assert "600" in out  # the advertised request limit
        assert KEY not in out
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000000000000")
        assert run_cli(["check"]) == 3
        captured = capsys.readouterr()
        assert "sk-wrong-key-000000000000" not in captured.out + captured.err


@pytest.mark.parametrize(("slots", "expected"), [(1, 1), (2, 2), (3, 3)])
async def test_a_queueing_server_gets_its_slots_suggested(slots: int, expected: int) -> None:
    with trio.fail_after(30):
        async with provider(latency=0.4, slots=slots, header_dialect="none") as fake:
            result = await check_provider(config(fake.base_url), api_key=KEY)
    assert result.ok
    assert result.queueing is not None
    assert result.queueing.queues
    assert result.queueing.slots == expected
    assert result.suggested_concurrency == expected
    text = render(result)
    assert f"queueing     yes, the server runs about {expected} request" in text
    assert f"max_concurrent_requests = {expected} (configured: 4)" in text
    assert "4 at once took" in text


async def test_unlimited_server_does_not_queue_and_keeps_the_default() -> None:
    with trio.fail_after(30):
        async with provider(latency=0.4, header_dialect="none") as fake:
            result = await check_provider(config(fake.base_url), api_key=KEY)
    assert result.queueing is not None
    assert not result.queueing.queues
    assert result.suggested_concurrency == DEFAULT_CONCURRENCY == 4
    assert "queueing     none seen" in render(result)


async def test_queued_requests_get_time_beyond_request_timeout() -> None:
    """4 at once on one slot take 4 x 0.6 s, past request_timeout (1 s): still measured."""
    with trio.fail_after(30):
        async with provider(latency=0.6, slots=1, header_dialect="none") as fake:
            result = await check_provider(config(fake.base_url, request_timeout=1.0), api_key=KEY)
            stats = fake.stats()
    assert result.queueing is not None
    assert result.queueing.slots == 1
    assert [wave.unanswered for wave in result.queueing.waves] == [0, 0]
    assert stats.abandoned == 0


def test_analyse_counts_an_unanswered_request_as_queued() -> None:
    waves = (
        Wave(size=2, latencies_s=(1.0, 2.0), duration_s=2.0, unanswered=0),
        Wave(size=4, latencies_s=(1.0, 2.0), duration_s=9.0, unanswered=2),
    )
    probe = analyse(1.0, waves)
    assert (probe.queues, probe.slots) == (True, 1)
    assert "2 at once took 2.0x, 4 at once took 9.0x" in probe.describe()


def test_a_lower_advertised_suggestion_wins_over_the_slots() -> None:
    result = with_probe(
        CheckResult(
            ok=True,
            url="u",
            requested_model="m",
            model="m",
            status=200,
            latency_s=1.0,
            reply="OK",
            problem=None,
            requests=BucketInfo(limit=60, window_s=60.0),
            tokens=BucketInfo(),
            retry_after_s=None,
            configured_concurrency=4,
            suggested_concurrency=1,
            suggestion_basis="advertised",
        ),
        analyse(
            1.0, (Wave(size=4, latencies_s=(1.0, 1.0, 2.0, 2.0), duration_s=2.0, unanswered=0),)
        ),
    )
    assert result.queueing is not None
    assert result.queueing.slots == 2
    # A queueing server caps the suggestion, but a lower advertised-limit suggestion wins.
    assert (result.suggested_concurrency, result.suggestion_basis) == (1, "advertised")


def test_check_takes_the_provider_options(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --base-url URL --model M`: no config file or environment needed."""
    from crawl4ai_llm_docs.cli.app import run_cli
    from crawl4ai_llm_docs.testing.provider.server import run_in_thread

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    with run_in_thread(
        make_config({"models": ["local-model"], "slots": 1, "latency": 0.3})
    ) as fake:
        code = run_cli(["check", "--base-url", fake.base_url, "--model", "local-model"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "model        local-model" in out
        assert "max_concurrent_requests = 1 (configured: 4)" in out
        config_file = tmp_path / "c.toml"
        config_file.write_text(f'[llm]\nbase_url = "{fake.base_url}"\nmodel = "nope"\n')
        assert run_cli(["check", "--config", str(config_file)]) == 3  # unknown model
        assert run_cli(["check", "--config", str(config_file), "--model", "local-model"]) == 0
        assert run_cli(["check", "--base-url", fake.base_url, "--insecure"]) == 3
        captured = capsys.readouterr()
        assert "does not offer the model 'nope'" in captured.err
        assert "does not offer the model 'gpt-4o-mini'" in captured.err  # the default model
