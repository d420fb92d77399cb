"""The LLM stage and the faithfulness check together: retries of unfaithful answers, verdicts
cached with their answers, tokens and progress counted once per answer.

The real ChatClient, rate limiter, breaker and result cache; the provider is an
``httpx.MockTransport`` that answers from a script, so every request is seen.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from faithful_support import PAGES
from structlog.testing import capture_logs

from crawl4ai_llm_docs.cache.results import CachedResult, ResultCache
from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.llm.provider.client import ChatClient
from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Chunk, ChunkResult
from crawl4ai_llm_docs.observe.metrics import RunMetrics

PAGE = PAGES["getpass"]
# The answer of the issue: an invented function, the same items again and again.
LOOPED = "\n".join(f"{n}. Call `getpass.setuser()` to change the login name." for n in range(1, 7))
UNFAITHFUL = f"# getpass\n\n{LOOPED}\n\n```\n```\n"


def make_chunk(text: str = PAGE) -> Chunk:
    return Chunk(
        page_index=0,
        chunk_index=0,
        chunk_count=1,
        url="https://docs.example/library/getpass.html",
        title="getpass — Portable password input",
        text=text,
        tokens=count_tokens(text),
    )


class Script:
    """Answers requests in turn; records each request body."""

    def __init__(self, *answers: str | int) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        answer = self.answers.pop(0)
        if isinstance(answer, int):  # an HTTP error status
            return httpx.Response(answer, json={"error": {"message": "bad request"}})
        finish = "length" if answer.startswith("CUT:") else "stop"
        return httpx.Response(
            200,
            json={
                "model": body["model"],
                "choices": [
                    {
                        "message": {"content": answer.removeprefix("CUT:")},
                        "finish_reason": finish,
                    }
                ],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 300},
            },
        )


async def process(
    script: Script, cache: ResultCache, chunk: Chunk | None = None, **llm: Any
) -> tuple[ChunkResult, list[dict[str, Any]]]:
    # The judge on rewrites (edit scripts: tests/test_cleaning.py).
    config = LLMConfig(
        **{
            "base_url": "https://llm.example/v1",
            "model": "m",
            "max_retries": 0,
            "cleaning": "rewrite",
            **llm,
        }
    )
    parallel = ParallelConfig()
    client = ChatClient(
        llm=config,
        parallel=parallel,
        api_key="sk-test",
        limiter=AdaptiveRateLimiter(max_concurrent=1, rng=random.Random(1)),
        breaker=CircuitBreaker(enabled=False),
        rng=random.Random(2),
        transport=httpx.MockTransport(script.handle),
    )
    processor = ChunkProcessor(client=client, cache=cache, llm=config)
    with capture_logs() as events:
        async with client:
            result = await processor.process(chunk or make_chunk())
    return result, events


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == name]


def chunks_done(events: list[dict[str, Any]]) -> int:
    metrics = RunMetrics(clock=lambda: 0.0)
    for event in events:
        metrics.observe(event)
    return metrics.snapshot().chunks_done


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / "cache")


async def test_a_faithful_answer_is_used_and_a_rerun_sends_nothing(cache: ResultCache) -> None:
    script = Script(f"<!-- description: Reading passwords. -->\n\n{PAGE}")
    result, events = await process(script, cache)
    assert (result.source, result.markdown.strip(), result.description) == (
        "llm",
        PAGE.strip(),
        "Reading passwords.",
    )
    assert not named(events, "faithfulness_fallback")
    again, events = await process(Script(), cache)
    assert (again.source, again.markdown) == ("cache", result.markdown)
    assert len(named(events, "chunk_cached")) == 1


async def test_an_unfaithful_answer_is_asked_again_at_temperature_0(cache: ResultCache) -> None:
    script = Script(UNFAITHFUL, PAGE)
    result, events = await process(script, cache, temperature=0.7)
    assert [request["temperature"] for request in script.requests] == [0.7, 0.0]
    assert result.source == "llm"
    assert result.markdown.strip() == PAGE.strip()
    # Both answers were billed.
    assert (result.prompt_tokens, result.completion_tokens) == (2000, 600)
    (retry,) = named(events, "unfaithful_retry")
    assert retry["attempt"] == 1
    assert "getpass.setuser()" in retry["reason"]
    assert not named(events, "faithfulness_fallback")
    assert chunks_done(events) == 1


async def test_every_answer_rejected_keeps_the_crawled_text_and_is_cached(
    cache: ResultCache,
) -> None:
    script = Script(UNFAITHFUL, UNFAITHFUL)
    result, events = await process(script, cache)
    assert len(script.requests) == 2
    assert (result.source, result.markdown, result.llm_failed) == ("fallback", PAGE, False)
    assert result.warning is not None
    assert result.warning.startswith("answer discarded (2 answers): ")
    (fallback,) = named(events, "faithfulness_fallback")
    reason = fallback["reason"]
    assert "\n" not in reason
    for part in ("getpass.setuser()", "is repeated 6 times", "empty code block"):
        assert part in reason
    assert chunks_done(events) == 1
    # The re-run asks nothing: both verdicts are cached with their answers.
    again, events = await process(Script(), cache)
    assert (again.source, again.markdown, again.warning) == ("fallback", PAGE, result.warning)
    assert len(named(events, "chunk_cached")) == 1
    assert len(named(events, "faithfulness_fallback")) == 1
    assert chunks_done(events) == 1


async def test_no_retry_when_unfaithful_retries_is_0(cache: ResultCache) -> None:
    script = Script(UNFAITHFUL)
    result, _ = await process(script, cache, unfaithful_retries=0)
    assert len(script.requests) == 1
    assert result.source == "fallback"


async def test_a_rerun_after_the_first_answer_resumes_with_the_retry(
    cache: ResultCache,
) -> None:
    """Killed after the first (rejected) answer: the re-run sends only the retry."""
    chunk = make_chunk()
    await process(Script(UNFAITHFUL), cache, unfaithful_retries=0)
    script = Script(PAGE)
    result, events = await process(script, cache, chunk=chunk)
    assert len(script.requests) == 1
    assert script.requests[0]["temperature"] == 0.0
    assert result.source == "llm"
    assert chunks_done(events) == 1


async def test_changed_check_settings_rejudge_without_asking_again(cache: ResultCache) -> None:
    short = "\n\n".join(PAGE.split("\n\n")[:6])  # the first part of the page only
    await process(Script(short, short), cache)
    # Stricter on nothing that matters here, lenient on text and structure kept: the cached
    # answers are judged again and now pass, with no request.
    script = Script()
    result, _ = await process(
        script, cache, min_text_kept=0.1, min_inline_code_kept=0.1, min_output_ratio=0.1
    )
    assert script.requests == []
    assert result.source == "cache"
    assert result.markdown.strip() == short.strip()
    key = ResultCache.key_for(
        make_chunk(), LLMConfig(base_url="https://llm.example/v1", model="m", cleaning="rewrite")
    )
    entry = await cache.get(key)
    assert entry is not None
    assert entry.problem is None  # the new verdict was written back


@pytest.mark.parametrize(
    "change", [{"model": "other"}, {"system_prompt": "Other prompt."}, {"max_tokens": 1000}]
)
async def test_changed_model_or_prompt_asks_again(
    cache: ResultCache, change: dict[str, Any]
) -> None:
    await process(Script(PAGE), cache)
    script = Script(PAGE)
    await process(script, cache, **change)
    assert len(script.requests) == 1


async def test_a_retry_cut_off_is_a_verdict_too(cache: ResultCache) -> None:
    script = Script(UNFAITHFUL, "CUT:" + PAGE[:200])
    result, events = await process(script, cache)
    assert result.source == "fallback"
    # The reason shown is the judged answer's, not the cut-off's.
    assert "getpass.setuser()" in (named(events, "faithfulness_fallback")[0]["reason"])
    assert chunks_done(events) == 1
    again = Script()
    await process(again, cache)
    assert again.requests == []


async def test_a_failed_retry_is_tried_again_next_run(cache: ResultCache) -> None:
    script = Script(UNFAITHFUL, 400)
    result, _ = await process(script, cache)
    assert result.source == "fallback"
    assert "getpass.setuser()" in (result.warning or "")
    again = Script(PAGE)
    result, _ = await process(again, cache)
    assert len(again.requests) == 1
    assert result.source == "llm"


async def test_an_invented_name_in_the_description_drops_the_description(
    cache: ResultCache,
) -> None:
    script = Script(f"<!-- description: Use `getpass.setuser()` to log in. -->\n\n{PAGE}")
    result, _ = await process(script, cache)
    assert result.source == "llm"
    assert result.description == ""


async def test_the_disabled_cache_still_retries(tmp_path: Path) -> None:
    script = Script(UNFAITHFUL, PAGE)
    result, _ = await process(script, ResultCache.disabled())
    assert len(script.requests) == 2
    assert result.source == "llm"


async def test_old_cache_entries_are_judged_not_trusted(cache: ResultCache) -> None:
    """An entry written before verdicts were cached (no ``check``) is judged on reading."""
    key = ResultCache.key_for(
        make_chunk(), LLMConfig(base_url="https://llm.example/v1", model="m", cleaning="rewrite")
    )
    await cache.put_entry(CachedResult(key=key, markdown=UNFAITHFUL))
    script = Script(PAGE)
    result, _ = await process(script, cache)
    assert len(script.requests) == 1  # the cached answer failed: the retry was sent
    assert result.source == "llm"


def test_cached_entries_round_trip_with_their_verdict() -> None:
    entry = CachedResult(key="k", markdown="m", problem="p", checks_failed=("text",), check="c")
    decoded = msgspec.json.decode(msgspec.json.encode(entry), type=CachedResult)
    assert decoded == entry


async def test_a_chunk_too_large_to_split_is_not_asked_again(cache: ResultCache) -> None:
    small = make_chunk("# Title\n\nA short page, too short to be split.\n")
    script = Script("CUT:# Title\n\nA short")
    result, _ = await process(script, cache, chunk=small)
    assert (result.source, result.llm_failed) == ("fallback", True)
    assert "cannot be split further" in (result.warning or "")
    again = Script()
    result2, events = await process(again, cache, chunk=small)
    assert again.requests == []
    assert (result2.llm_failed, result2.warning) == (True, result.warning)
    assert chunks_done(events) == 1
    # Allowed to split smaller, it is asked again.
    third = Script("# Title\n\nA short page, too short to be split.\n")
    await process(third, cache, chunk=small, chunk_min_tokens=64)
    assert len(third.requests) == 1
