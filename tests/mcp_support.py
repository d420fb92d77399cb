"""Driving ``serve`` with the MCP SDK's own client: the calls and checks the stdio and HTTP
tests share."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import ClientSession, MCPError
from mcp import types as mcp_types

from crawl4ai_llm_docs.markdown.tokens import count_tokens

TOOLS = {"search_docs", "fetch_doc", "list_docs_sets", "search", "fetch"}


async def call(
    session: ClientSession, name: str, arguments: dict[str, Any]
) -> mcp_types.CallToolResult:
    result = await session.call_tool(name, arguments)
    assert isinstance(result, mcp_types.CallToolResult), result
    return result


def text_of(result: mcp_types.CallToolResult) -> str:
    assert len(result.content) == 1
    content = result.content[0]
    assert isinstance(content, mcp_types.TextContent)
    return content.text


async def check_tools(session: ClientSession) -> None:
    tools = (await session.list_tools()).tools
    assert {tool.name for tool in tools} == TOOLS
    for tool in tools:
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.input_schema["type"] == "object"


async def search_first(session: ClientSession, query: str, **extra: Any) -> dict[str, Any]:
    result = await call(session, "search_docs", {"query": query, **extra})
    assert not result.is_error, text_of(result)
    payload = result.structured_content
    assert isinstance(payload, dict)
    assert payload["results"], payload
    first: dict[str, Any] = payload["results"][0]
    # The text the model reads cites the source and the crawl date.
    assert f"Source: {first['url']} (crawled {first['crawled_at'][:10]}" in text_of(result)
    return first


async def check_fetch_within_budget(
    session: ClientSession, ref: str, budget: int
) -> dict[str, Any]:
    result = await call(session, "fetch_doc", {"url_or_id": ref, "max_tokens": budget})
    assert not result.is_error, text_of(result)
    page = result.structured_content
    assert isinstance(page, dict)
    assert count_tokens(page["text"]) <= budget
    assert page["url"] in text_of(result)
    if page["next_offset"] is not None:  # where to continue, and continuing works
        more = await call(
            session,
            "fetch_doc",
            {"url_or_id": page["id"], "max_tokens": budget, "offset": page["next_offset"]},
        )
        assert not more.is_error
        assert isinstance(more.structured_content, dict)
        assert more.structured_content["start_line"] == page["next_offset"]
    return page


async def check_errors(session: ClientSession) -> None:
    """Errors come back as MCP errors or isError results; the session goes on working."""
    bad = await call(session, "search_docs", {"query": "x", "limit": 0})
    assert bad.is_error
    assert "limit" in text_of(bad)
    missing_query = await call(session, "search_docs", {})
    assert missing_query.is_error
    assert "query" in text_of(missing_query)
    missing = await call(session, "fetch_doc", {"url_or_id": "nope/nothing.html"})
    assert missing.is_error
    assert "No indexed page" in text_of(missing)
    unknown_set = await call(session, "search_docs", {"query": "x", "docs_set": "no-such-set"})
    assert unknown_set.is_error
    assert "no-such-set" in text_of(unknown_set)
    for attempt in (
        session.call_tool("no_such_tool", {}),
        session.read_resource("docs://no-such-set/x.html"),
        session.list_resources(params=mcp_types.PaginatedRequestParams(cursor="forged")),
    ):
        with pytest.raises(MCPError) as raised:
            await attempt
        assert raised.value.error.code == mcp_types.INVALID_PARAMS
    assert (await session.list_tools()).tools  # still serving


async def all_resources(session: ClientSession) -> tuple[list[mcp_types.Resource], int]:
    """Every resource, following the cursor; and how many pages of results that took."""
    found: list[mcp_types.Resource] = []
    cursor: str | None = None
    pages = 0
    while True:
        listing = await session.list_resources(
            params=mcp_types.PaginatedRequestParams(cursor=cursor)
        )
        pages += 1
        found += listing.resources
        if listing.next_cursor is None:
            return found, pages
        cursor = listing.next_cursor


async def check_deep_research(session: ClientSession, query: str) -> str:
    """The search/fetch pair in the shape ChatGPT and deep research call: one text item
    holding the JSON object (also as structured content)."""
    found = await call(session, "search", {"query": query})
    payload = json.loads(text_of(found))
    assert payload == found.structured_content
    assert payload["results"]
    assert set(payload["results"][0]) == {"id", "title", "url"}
    first: str = payload["results"][0]["id"]
    fetched = await call(session, "fetch", {"id": first})
    document = json.loads(text_of(fetched))
    assert set(document) == {"id", "title", "text", "url", "metadata"}
    assert document["url"] == payload["results"][0]["url"]
    assert document["metadata"]["crawled_at"]
    return first
