"""The fake provider answers edit-mode requests like a careful model, over real loopback HTTP.

The script it writes is read by the tool's own reader and is valid for the chunk; it drops
the lines made only of links and joins wrapped prose; it is the same every time; it honours
``response_format`` (JSON alone when structured output was asked for, JSON in a fence after
a sentence when not) and refuses the forms its ``structured_output`` does not take, as
OpenAI and llama-cpp-python do. Its completion tokens are the script's, so
``latency_per_1k_tokens`` makes an edit answer fast and a rewrite slow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
import trio
from faithful_support import BOILERPLATE_BOTTOM, BOILERPLATE_TOP, PAGES

from crawl4ai_llm_docs.llm.cleaning import _STRUCTURED as EDIT_OUTPUT
from crawl4ai_llm_docs.llm.edit_script import read_script
from crawl4ai_llm_docs.llm.edits import NumberedChunk
from crawl4ai_llm_docs.llm.provider.accepted import response_format
from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, serve

GUARD = 20
PAGE = BOILERPLATE_TOP + PAGES["click-prompts"] + BOILERPLATE_BOTTOM


@asynccontextmanager
async def running(**fields: Any) -> AsyncIterator[tuple[FakeProvider, httpx.AsyncClient]]:
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            handle: FakeProvider = await nursery.start(serve, make_config(fields))
            async with httpx.AsyncClient(base_url=handle.base_url, timeout=10) as client:
                yield handle, client
            nursery.cancel_scope.cancel()


def edit_request(
    text: str = PAGE, form: str | None = "json_schema", **extra: Any
) -> dict[str, Any]:
    numbered = NumberedChunk(text).render()
    body: dict[str, Any] = {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "Answer with an edit script."},
            {"role": "user", "content": f"Source: x\n\n<document>\n{numbered}\n</document>"},
        ],
        **extra,
    }
    if form is not None:
        body["response_format"] = response_format(form, EDIT_OUTPUT)  # type: ignore[arg-type]
    return body


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


async def test_a_careful_script_for_a_real_page() -> None:
    async with running() as (_, client):
        first = await client.post("/chat/completions", json=edit_request())
        again = await client.post("/chat/completions", json=edit_request())
    answer = content(first)
    assert answer == content(again)  # deterministic
    assert answer.startswith("{")  # structured output: the JSON alone
    script = read_script(answer)
    chunk = NumberedChunk(PAGE)
    out = chunk.apply(script, first_chunk=True)
    assert "[Edit on GitHub]" not in out
    assert "Report a Bug" not in out
    assert script.description.startswith("Fake summary of")
    # Only link-only lines went: the page's own text is all there, code blocks unchanged.
    assert "".join(out.split()) == "".join(PAGES["click-prompts"].split())
    usage = first.json()["usage"]
    assert usage["completion_tokens"] == -(-len(answer) // 4)
    assert usage["completion_tokens"] < len(PAGE) // 4 // 10


async def test_wrapped_prose_lines_are_joined() -> None:
    text = "# Title\n\nThe first line of a paragraph\nthat goes on here\nand ends here.\n\n- item\n"
    async with running() as (_, client):
        answer = content(await client.post("/chat/completions", json=edit_request(text)))
    script = read_script(answer)
    assert script.join == ((2, 4),)
    assert NumberedChunk(text).apply(script, first_chunk=True) == (
        "# Title\n\nThe first line of a paragraph that goes on here and ends here.\n\n- item\n"
    )


async def test_without_response_format_the_json_comes_in_a_fence() -> None:
    async with running() as (_, client):
        answer = content(await client.post("/chat/completions", json=edit_request(form=None)))
    assert answer.startswith("Here is the edit script:")
    assert "```json\n{" in answer
    assert read_script(answer).description.startswith("Fake summary")


@pytest.mark.parametrize(
    ("accepts", "form", "status", "names"),
    [
        ("json_schema", "json_schema", 200, None),
        ("json_schema", "json_object", 400, b"response_format.schema"),
        ("json_object", "json_schema", 500, b"response_format"),  # as llama-cpp-python 0.3
        ("json_object", "json_object", 200, None),
        ("none", "json_schema", 400, b"response_format"),
        ("none", "json_object", 400, b"response_format"),
        ("none", None, 200, None),
    ],
)
async def test_response_format_refusals(
    accepts: str, form: str | None, status: int, names: bytes | None
) -> None:
    async with running(structured_output=accepts) as (provider, client):
        response = await client.post("/chat/completions", json=edit_request(form=form))
        stats = provider.stats()
    assert response.status_code == status
    if names is not None:
        assert names in response.content
        assert stats.format_refused == 1
    else:
        read_script(content(response))


async def test_an_edit_answer_streams_too() -> None:
    async with running(stream_chunks=5) as (_, client):
        body = edit_request(stream=True)
        async with client.stream("POST", "/chat/completions", json=body) as response:
            lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    pieces = [
        msgspec.json.decode(line[6:])["choices"][0]["delta"].get("content", "") for line in lines
    ]
    read_script("".join(pieces))


async def test_a_short_max_tokens_cuts_the_script() -> None:
    async with running() as (_, client):
        response = await client.post("/chat/completions", json=edit_request(max_tokens=10))
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) == 40
