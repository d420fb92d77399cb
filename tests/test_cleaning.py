"""The chunk processor in both cleaning modes: edit scripts asked for, applied, judged and
cached; answers that cannot be used (a loop, a bad script) retried, never split.

The real ChatClient, rate limiter, breaker, judge and result cache; the provider is an
``httpx.MockTransport`` playing a model from a script of answers, so every request is seen.
Real page Markdown (``tests/fixtures/markdown``) with a site's boilerplate around it.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from faithful_support import BOILERPLATE_BOTTOM, BOILERPLATE_TOP, PAGES
from markdown_it import MarkdownIt
from structlog.testing import capture_logs

from crawl4ai_llm_docs.cache.results import ResultCache
from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.llm.cleaning import ANSWER_MARGIN_TOKENS, TOKENIZER_SLACK, rewrite_max_tokens
from crawl4ai_llm_docs.llm.edits import NumberedChunk
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.llm.provider.client import ChatClient
from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Chunk, ChunkResult

PAGE = BOILERPLATE_TOP + PAGES["getpass"] + BOILERPLATE_BOTTOM
_MD = MarkdownIt("commonmark")
_NUMBER = re.compile(r"^ *(\d+)\| (.*)$", re.MULTILINE)


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


def link_only_lines(prompt: str) -> list[int]:
    """What a careful model drops: the numbered lines made of nothing but links."""
    link = r"!?\[[^\]]*\]\([^)]*\)"
    only = re.compile(rf"^\s*(?:[*-]\s+)?(?:{link}\s*)+$")
    return [int(n) for n, text in _NUMBER.findall(prompt) if only.match(text)]


class Model:
    """Answers each request with the next entry: a string, a callable of the request, an
    HTTP status, or ("CUT", text) for an answer cut off at max_tokens."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        answer = self.answers.pop(0)
        finish = "stop"
        if isinstance(answer, int):
            return httpx.Response(answer, json={"error": {"message": "bad request"}})
        if isinstance(answer, tuple):
            finish, answer = "length", answer[1]
        if callable(answer):
            answer = answer(body["messages"][-1]["content"])
        return httpx.Response(
            200,
            json={
                "model": body["model"],
                "choices": [{"message": {"content": answer}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 2000, "completion_tokens": len(answer) // 4},
            },
        )


def llm_config(**llm: Any) -> LLMConfig:
    """Rewrite mode unless a test asks for edit (``**EDIT``): the tests name their mode."""
    return msgspec.convert(
        {
            "base_url": "https://llm.example/v1",
            "model": "m",
            "max_retries": 0,
            "cleaning": "rewrite",
            **llm,
        },
        LLMConfig,
    )


async def process(
    model: Model, cache: ResultCache, chunk: Chunk | None = None, **llm: Any
) -> tuple[ChunkResult, list[dict[str, Any]]]:
    config = llm_config(**llm)
    client = ChatClient(
        llm=config,
        parallel=ParallelConfig(),
        api_key="sk-test",
        limiter=AdaptiveRateLimiter(max_concurrent=1, rng=random.Random(1)),
        breaker=CircuitBreaker(enabled=False),
        rng=random.Random(2),
        transport=httpx.MockTransport(model.handle),
    )
    processor = ChunkProcessor(client=client, cache=cache, llm=config)
    with capture_logs() as events:
        async with client:
            result = await processor.process(chunk or make_chunk())
    return result, events


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == name]


def careful_script(prompt: str) -> str:
    return json.dumps(
        {
            "description": "Reading passwords without echo.",
            "drop": [[n, n] for n in link_only_lines(prompt)],
            "headings": [],
            "join": [],
            "title": "",
        }
    )


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / "cache")


EDIT = {"cleaning": "edit"}


async def test_an_edit_script_is_asked_for_applied_and_cached(cache: ResultCache) -> None:
    model = Model(careful_script)
    result, events = await process(model, cache, **EDIT)
    (request,) = model.requests
    # Asked for: the edit prompt, the numbered chunk, structured output, the edit budget.
    assert request["messages"][0]["content"] == llm_config(**EDIT).edit_system_prompt
    assert "\n 1| * [Home](https://docs.example.org/)" in request["messages"][1]["content"]
    assert request["response_format"]["json_schema"]["name"] == "edit_script"
    assert request["max_tokens"] == llm_config().edit_max_tokens
    # Applied: the boilerplate went, every code block and inline-code span of the rest stayed.
    assert result.source == "llm"
    assert result.description == "Reading passwords without echo."
    assert "[Edit on GitHub]" not in result.markdown
    assert "Report a Bug" not in result.markdown
    assert result.markdown.strip() == PAGES["getpass"].strip()
    assert named(events, "faithfulness_fallback") == []
    # Cached with its verdict: a re-run sends nothing.
    again, events = await process(Model(), cache, **EDIT)
    assert again.markdown == result.markdown
    assert again.source == "cache"
    assert named(events, "llm_request") == []


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (
            "# getpass\n\nThe page, rewritten instead.",
            "invalid edit script: the answer is not a JSON",
        ),
        ('{"drop": [[1, 999]]}', "invalid edit script: drop names line 999"),
        (("CUT", '{"description": "x", "drop": [[1,'), "cut off at max_tokens"),
    ],
)
async def test_an_unusable_script_is_asked_again_at_temperature_0(
    cache: ResultCache, first: Any, reason: str
) -> None:
    model = Model(first, careful_script)
    result, events = await process(model, cache, **EDIT)
    assert len(model.requests) == 2
    assert model.requests[1]["temperature"] == 0.0
    (retry,) = named(events, "unfaithful_retry")
    assert reason in retry["reason"]
    assert result.source == "llm"
    assert [e["outcome"] for e in named(events, "llm_request")] == ["ok", "ok"]  # no split


async def test_a_script_that_drops_the_content_keeps_the_crawled_text(cache: ResultCache) -> None:
    # Lines with code stay whatever a drop says: the prose is what such a script takes away.
    prose = "\n".join(
        f"Paragraph {n} explains how the terminal echo is turned off and restored."
        for n in range(12)
    )
    page = f"# getpass\n\n{prose}\n\n```python\nimport getpass\n```\n\nCall `getpass()`.\n"
    units = len(NumberedChunk(page).units)
    everything = json.dumps({"description": "x", "drop": [[1, units]]})
    chunk = make_chunk(page)
    result, events = await process(Model(everything, everything), cache, chunk, **EDIT)
    assert result.source == "fallback"
    assert result.markdown == page  # the crawled text, code blocks and all
    (fallback,) = named(events, "faithfulness_fallback")
    assert "of the chunk's text" in fallback["reason"] or "length" in fallback["reason"]


async def test_an_invented_title_is_left_out(cache: ResultCache) -> None:
    chunk = make_chunk("Prompt for a password with `getpass()`.\n\nIt reads from the terminal.\n")

    def script(prompt: str) -> str:
        return json.dumps({"description": "d", "title": "Use `secure_input()` instead"})

    result, _ = await process(Model(script), cache, chunk, **EDIT)
    assert result.source == "llm"
    assert "secure_input" not in result.markdown
    honest, _ = await process(
        Model(lambda p: json.dumps({"title": "getpass"})), ResultCache(None), chunk, **EDIT
    )
    assert honest.markdown.startswith("# getpass\n\nPrompt for a password")


async def test_rewrite_mode_asks_only_for_what_the_ratio_allows(cache: ResultCache) -> None:
    chunk = make_chunk(PAGES["getpass#0"])
    model = Model(f"<!-- description: d -->\n\n{chunk.text}")
    await process(model, cache, chunk, max_tokens=4000)
    allowed = math.ceil(3.0 * chunk.tokens * TOKENIZER_SLACK) + ANSWER_MARGIN_TOKENS
    assert model.requests[0]["max_tokens"] == allowed < 4000
    assert "response_format" not in model.requests[0]
    assert rewrite_max_tokens(chunk, llm_config(max_tokens=100)) == 100  # the setting caps it


async def test_a_rewrite_cut_off_by_a_loop_is_unfaithful_not_split(cache: ResultCache) -> None:
    chunk = make_chunk(PAGES["getpass#0"])
    loop = "Call the function to read the password.\n" * 40
    model = Model(("CUT", f"<!-- description: d -->\n\n{loop}"), ("CUT", loop))
    result, events = await process(model, cache, chunk)
    assert len(model.requests) == 2  # the chunk and its retry: no halves
    assert [e["outcome"] for e in named(events, "llm_request")] == ["ok", "ok"]
    assert result.source == "fallback"
    assert result.markdown == chunk.text
    (fallback,) = named(events, "faithfulness_fallback")
    assert "cut off at max_tokens" in fallback["reason"]
    assert "repeated 4 times" in fallback["reason"]


async def test_keys_of_the_two_modes_are_apart_and_rewrite_keys_ignore_edit_settings() -> None:
    chunk = make_chunk()
    rewrite = llm_config()
    edit = llm_config(**EDIT)
    keys = {ResultCache.key_for(chunk, config) for config in (rewrite, edit)}
    assert len(keys) == 2
    tweaked = llm_config(edit_system_prompt="Another edit prompt.", edit_max_tokens=100)
    assert ResultCache.key_for(chunk, tweaked) == ResultCache.key_for(chunk, rewrite)
    for change in ({"edit_system_prompt": "Another."}, {"edit_max_tokens": 100}, {"model": "n"}):
        assert ResultCache.key_for(chunk, llm_config(**EDIT, **change)) != ResultCache.key_for(
            chunk, edit
        )
    # The rewrite prompt and budget do not decide an edit answer.
    rewrite_change = llm_config(**EDIT, system_prompt="Other.", max_tokens=100)
    assert ResultCache.key_for(chunk, rewrite_change) == ResultCache.key_for(chunk, edit)


async def test_the_batch_line_asks_the_same_as_a_live_request(cache: ResultCache) -> None:
    config = llm_config(**EDIT)
    client = ChatClient(
        llm=config,
        parallel=ParallelConfig(),
        api_key=None,
        limiter=AdaptiveRateLimiter(max_concurrent=1),
        breaker=CircuitBreaker(enabled=False),
    )
    processor = ChunkProcessor(client=client, cache=cache, llm=config)
    body = json.loads(processor.request_body(make_chunk()))
    assert body["response_format"]["type"] == "json_schema"
    assert body["max_tokens"] == config.edit_max_tokens
    assert "stream" not in body
    numbered = body["messages"][1]["content"]
    assert [n for n, _ in _NUMBER.findall(numbered)][:3] == ["1", "2", "3"]


async def test_a_description_copied_from_the_prompt_is_none(cache: ResultCache) -> None:
    prompt = "Answer with JSON. Put ONE SENTENCE saying what the page covers in description."
    copied = json.dumps({"description": "One sentence saying what the page covers."})
    result, _ = await process(Model(copied), cache, edit_system_prompt=prompt, **EDIT)
    assert result.source == "llm"
    assert result.description == ""
    own = json.dumps({"description": "Reading a password without echo."})
    result, _ = await process(Model(own), ResultCache(None), edit_system_prompt=prompt, **EDIT)
    assert result.description == "Reading a password without echo."
