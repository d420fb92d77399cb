"""``crawl4ai-llm-docs serve``: the docs index as an MCP server for coding agents.

stdio by default (an agent starts ``crawl4ai-llm-docs serve`` itself), streamable HTTP with
``--http HOST:PORT``. Everything the server does is in ``search/mcp_server.py`` and
``search/mcp_transports.py``, imported here only when the command runs (the MCP SDK takes
about 0.6 s to import, which no other command should pay).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated

import trio
from cyclopts import Parameter
from rich.console import Console

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.cli.flags import ConfigFile
from crawl4ai_llm_docs.cli.search import IndexFile, index_location
from crawl4ai_llm_docs.config_schema import SERVE_TOKEN_ENV
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.search.endpoints import is_loopback, parse_bind
from crawl4ai_llm_docs.search.reader import DocsIndex, open_docs_index


async def serve(
    *,
    http: Annotated[
        str | None,
        Parameter(
            name="--http",
            help="Serve streamable HTTP on HOST:PORT (e.g. 127.0.0.1:8765) instead of stdio; "
            f"off loopback a bearer token from ${SERVE_TOKEN_ENV} is required.",
        ),
    ] = None,
    docs_set: Annotated[
        list[str] | None,
        Parameter(
            name="--docs-set",
            negative="",
            help="Serve only this docs set (repeat for several) [default: every set].",
        ),
    ] = None,
    index: IndexFile = None,
    config: ConfigFile = None,
) -> int:
    """Serve the docs index to coding agents over MCP: search_docs, fetch_doc,
    list_docs_sets, search/fetch (deep research) and a docs://SET/PATH resource per page."""
    bind = None
    if http is not None:
        bind = parse_bind(http)
        if bind is None:
            raise InputError(
                f"--http {http!r} is not HOST:PORT. Give e.g. --http 127.0.0.1:8765 "
                "(or [::1]:8765)."
            )
    token = os.environ.get(SERVE_TOKEN_ENV) or None
    if bind is not None and not is_loopback(bind[0]) and token is None:
        raise InputError(
            f"--http {http} listens beyond this machine (not a loopback address), so it needs "
            f"a bearer token: set {SERVE_TOKEN_ENV} (e.g. to the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) and give clients "
            "the header 'Authorization: Bearer <token>'. Or serve on 127.0.0.1."
        )
    sets = docs_set or []
    path = index_location(index, config)
    docs_index = await trio.to_thread.run_sync(lambda: open_docs_index(path, docs_sets=sets))
    try:
        if bind is None:
            await _stdio(docs_index, sets, path)
        else:
            await _http(docs_index, sets, path, bind, token)
    finally:
        docs_index.close()
    return 0


def _announce(path: Path, sets: list[str], where: str) -> None:
    scope = f"docs sets {', '.join(sets)}" if sets else "every docs set"
    Console(stderr=True, highlight=False).print(
        f"crawl4ai-llm-docs serve: {path} ({scope}) over MCP {where}"
    )


async def _stdio(docs_index: DocsIndex, sets: list[str], path: Path) -> None:
    from crawl4ai_llm_docs.search.mcp_server import build_server
    from crawl4ai_llm_docs.search.mcp_transports import serve_stdio

    _announce(path, sets, "on stdio")
    await serve_stdio(build_server(docs_index, sets=sets, version=__version__))


async def _http(
    docs_index: DocsIndex, sets: list[str], path: Path, bind: tuple[str, int], token: str | None
) -> None:
    from crawl4ai_llm_docs.search.mcp_server import build_server
    from crawl4ai_llm_docs.search.mcp_transports import serve_http

    host, port = bind
    server = build_server(docs_index, sets=sets, version=__version__)
    try:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_http, server, host, port, token)
            auth = " (bearer token required)" if token else ""
            _announce(path, sets, f"at {url}{auth}; Ctrl-C stops it")
    except* OSError as group:
        first = _first_os_error(group)
        if first.errno == errno.EADDRINUSE:
            raise InputError(
                f"--http {host}:{port}: the port is in use by another program. Give another "
                "port (or 0 for any free one)."
            ) from None
        raise InputError(f"--http {host}:{port}: cannot listen there ({first}).") from None


def _first_os_error(group: BaseExceptionGroup[OSError]) -> OSError:
    first = group.exceptions[0]
    return _first_os_error(first) if isinstance(first, BaseExceptionGroup) else first
