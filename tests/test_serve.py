"""``serve``: the MCP server over a docs index, driven by the MCP SDK's own client.

A stdio session with the real command in a subprocess, and a streamable-HTTP session with the
server on 127.0.0.1 (an OS-assigned port) in this trio run: initialize, the five read-only
tools, search and fetch within a token budget, resources listed page by page with the
cursor, the deep-research pair, and errors as MCP errors. The HTTP guard (bearer token, Host
header, path) is checked with raw requests; the refusals of ``serve`` (no index, an unknown
set, a bad or busy address, a non-loopback bind without a token) through the CLI in process.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
import trio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from rich.console import Console

from crawl4ai_llm_docs.cli.app import run_cli
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.search.endpoints import is_loopback, parse_bind
from crawl4ai_llm_docs.search.mcp_server import RESOURCES_PER_PAGE, build_server
from crawl4ai_llm_docs.search.mcp_transports import serve_http
from crawl4ai_llm_docs.search.reader import DocsIndex
from crawl4ai_llm_docs.search.update import IndexRequest, write_index
from tests.mcp_support import (
    all_resources,
    check_deep_research,
    check_errors,
    check_fetch_within_budget,
    check_tools,
    search_first,
)

PAGES = 240  # more than two pages of resources/list
HANG_GUARD_S = 60
TOPICS = ["sockets", "threads", "archives", "parsers", "timers", "queues", "codecs", "paths"]


def _page(number: int) -> Document:
    topic = TOPICS[number % len(TOPICS)]
    body = "\n\n".join(
        f"## {topic.title()} part {part}\n\nHow {topic} work, part {part} of page {number}. "
        + " ".join(f"{topic} detail {n}." for n in range(40))
        for part in range(4)
    )
    return Document(
        index=number,
        url=f"https://lib.example/api/{topic}-{number}.html",
        title=f"{topic} {number}",
        markdown=f"# {topic} {number}\n\nAn overview of {topic}.\n\n{body}",
        fetched_at="2026-12-01T10:00:00Z",
    )


TARGET = Document(
    index=PAGES,
    url="https://lib.example/api/retry.html",
    title="Retrying requests",
    markdown="# Retrying requests\n\nWhat to do when a call fails.\n\n"
    "## Exponential backoff\n\nWait twice as long after each failure, with jitter, before "
    "sending the request again.\n",
    fetched_at="2026-12-02T10:00:00Z",
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "docs-index.sqlite"
    documents = [*(_page(n) for n in range(PAGES)), TARGET]
    write_index(
        documents,
        IndexRequest(path=path, docs_set="lib-2.0", source="t", urls=[d.url for d in documents]),
        site_name="Lib",
        title_of=lambda d: d.title,
        describe=lambda d, title: title,
        generated_at=datetime(2026, 12, 7, tzinfo=UTC),
    )
    return path


async def _exercise(session: ClientSession) -> None:
    init = await session.initialize()
    assert init.server_info.name == "crawl4ai-llm-docs"
    await check_tools(session)
    first = await search_first(session, "wait longer between retries after a failed request")
    assert first["id"] == "lib-2.0/lib.example/api/retry.html#exponential-backoff"
    assert first["crawled_at"] == "2026-12-02T10:00:00Z"
    page = await check_fetch_within_budget(session, "https://lib.example/api/sockets-0.html", 150)
    assert page["next_offset"] is not None  # the page is longer than the budget
    resources, listings = await all_resources(session)
    assert len(resources) == PAGES + 1
    assert listings == -(-(PAGES + 1) // RESOURCES_PER_PAGE)
    assert len({resource.uri for resource in resources}) == PAGES + 1
    read = await session.read_resource("docs://lib-2.0/lib.example/api/retry.html")
    assert "Exponential backoff" in read.contents[0].text  # type: ignore[union-attr]
    await check_deep_research(session, "exponential backoff")
    sets = await session.call_tool("list_docs_sets", {})
    assert sets.structured_content["docs_sets"][0]["name"] == "lib-2.0"  # type: ignore[union-attr,index]
    await check_errors(session)


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp / "cfg"), XDG_CACHE_HOME=str(tmp / "cache"))
    return env


async def test_a_stdio_session_with_the_real_command(index: Path, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "crawl4ai_llm_docs", "serve", "--index", str(index)],
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    with trio.fail_after(HANG_GUARD_S):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await _exercise(session)


async def test_a_streamable_http_session_behind_a_bearer_token(index: Path) -> None:
    token = secrets.token_urlsafe(24)
    docs = DocsIndex(index)
    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_http, build_server(docs), "127.0.0.1", 0, token)
            async with httpx2.AsyncClient() as raw:
                init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
                accept = {"accept": "application/json, text/event-stream"}
                refused = await raw.post(url, json=init, headers=accept)
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"].startswith("Bearer")
                wrong = {**accept, "authorization": "Bearer " + token[:-1] + "x"}
                assert (await raw.post(url, json=init, headers=wrong)).status_code == 401
                good = {**accept, "authorization": f"Bearer {token}"}
                rebound = await raw.post(url, json=init, headers={**good, "host": "evil.example"})
                assert rebound.status_code == 421  # the DNS-rebinding guard
                other = await raw.get(url.replace("/mcp", "/admin"), headers=good)
                assert other.status_code == 404
            headers = {"Authorization": f"Bearer {token}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await _exercise(session)
            nursery.cancel_scope.cancel()
    docs.close()


def test_bind_addresses_and_loopback_are_told_apart() -> None:
    assert parse_bind("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_bind("[::1]:0") == ("::1", 0)
    assert parse_bind("localhost:80") == ("localhost", 80)
    for bad in ("8765", "host:", ":80", "h:99999", "h:x"):
        assert parse_bind(bad) is None, bad
    for host in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "192.168.1.5", "10.0.0.1", "::", "example.org", "fe80::1"):
        assert not is_loopback(host), host


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CRAWL4AI_LLM_DOCS_SERVE_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    console = Console(record=True, width=300, file=open(os.devnull, "w"))  # noqa: SIM115
    code = run_cli(list(args), stderr=console)
    return code, " ".join(console.export_text().split())


def test_serve_refuses_what_it_cannot_do_with_one_message(cli: Path, index: Path) -> None:
    code, message = _run("serve")
    assert code == 2
    assert "No docs index at" in message
    assert "crawl4ai-llm-docs URLS_FILE" in message
    code, message = _run("serve", "--index", str(index), "--docs-set", "nope")
    assert code == 2
    assert "Unknown docs set 'nope'" in message
    assert "lib-2.0" in message
    code, message = _run("serve", "--index", str(index), "--http", "8765")
    assert code == 2
    assert "is not HOST:PORT" in message
    code, message = _run("serve", "--index", str(index), "--http", "0.0.0.0:8765")
    assert code == 2
    assert "CRAWL4AI_LLM_DOCS_SERVE_TOKEN" in message


def test_serve_says_when_the_port_is_taken(cli: Path, index: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, message = _run("serve", "--index", str(index), "--http", f"127.0.0.1:{port}")
    assert code == 2
    assert "port is in use" in message


async def test_a_server_limited_to_some_sets_answers_from_those_only(index: Path) -> None:
    from crawl4ai_llm_docs.search.mcp_server import DocsTools
    from crawl4ai_llm_docs.search.mcp_tools import FetchDocArgs, ListDocsSetsArgs, SearchDocsArgs

    docs = DocsIndex(index)
    try:
        limited = DocsTools(docs, ["other-set"])
        listed = await limited.list_docs_sets(ListDocsSetsArgs())
        assert listed.structured_content == {"docs_sets": []}
        with pytest.raises(Exception, match="this server serves other-set"):
            await limited.search_docs(SearchDocsArgs(query="backoff", docs_set="lib-2.0"))
        with pytest.raises(Exception, match="No indexed page"):
            await limited.fetch_doc(FetchDocArgs(url_or_id=TARGET.url))
        served = DocsTools(docs, ["lib-2.0"])
        found = await served.fetch_doc(FetchDocArgs(url_or_id=TARGET.url))
        assert found.structured_content["url"] == TARGET.url  # type: ignore[index]
    finally:
        docs.close()
