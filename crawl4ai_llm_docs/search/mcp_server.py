"""The MCP server over the docs index: read-only tools and a resource per page.

Tools (all marked read-only, idempotent, closed-world):

    search_docs(query, docs_set?, limit=5, max_tokens=2000)   ranked sections, one per page
    fetch_doc(url_or_id, max_tokens?, offset?)               a page, or the part that fits
    list_docs_sets()                                          the sets, their size and age
    search(query) / fetch(id)        the shapes OpenAI's deep research and ChatGPT call

Each answer cites the source URL and the crawl date (the tools' arguments, results and texts
are in ``mcp_tools.py``). Resources: ``docs://SET/PATH`` per page,
listed a page of ``RESOURCES_PER_PAGE`` at a time with an opaque cursor (memory flat in the
number of pages). The official SDK's low-level ``Server`` (``mcp`` 2.x; its high-level
``MCPServer`` cannot paginate resource lists). Arguments are checked with msgspec against the
same Structs their JSON schemas come from: a wrong argument, an unknown set or page is an
``isError`` result the model can act on; an unknown tool, resource or cursor is an MCP
protocol error (-32602); anything else becomes -32603 without a traceback leaking out.
Imported only by ``serve`` (the SDK takes about 0.6 s to import).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import msgspec
from mcp import MCPError
from mcp import types as mcp_types
from mcp.server import Server, ServerRequestContext

from crawl4ai_llm_docs.search.mcp_tools import (
    TOOLS,
    DeepDocument,
    DeepFetchArgs,
    DeepResult,
    DeepResults,
    DeepSearchArgs,
    DocsSets,
    FetchDocArgs,
    ListDocsSetsArgs,
    SearchDocsArgs,
    ToolArgs,
    render_hits,
    render_page,
)
from crawl4ai_llm_docs.search.names import RESOURCE_SCHEME
from crawl4ai_llm_docs.search.reader import (
    DocsIndex,
    DocsSet,
    Hit,
    PageText,
    SearchResult,
    UnknownDocsSet,
)

RESOURCES_PER_PAGE = 100
DEEP_RESEARCH_RESULTS = 10
INSTRUCTIONS = (
    "Read-only search over documentation crawled and cleaned by crawl4ai-llm-docs. "
    "Call search_docs with the question in plain words; each result is the best section of "
    "a page, with its heading path, source URL and crawl date. Call fetch_doc with a "
    "result's id (or URL) for the page from that section on; continue with next_offset. "
    "list_docs_sets names the libraries and versions the index holds. Cite the source URL."
)


class ToolFailure(Exception):
    """A failure the model can act on: an ``isError`` result, not a protocol error."""


Content = (
    mcp_types.TextContent
    | mcp_types.ImageContent
    | mcp_types.AudioContent
    | mcp_types.ResourceLink
    | mcp_types.EmbeddedResource
)


def _text(content: str) -> list[Content]:
    return [mcp_types.TextContent(type="text", text=content)]


def _result(payload: msgspec.Struct, text: str | None = None) -> mcp_types.CallToolResult:
    structured = msgspec.to_builtins(payload)
    return mcp_types.CallToolResult(
        content=_text(text if text is not None else json.dumps(structured, ensure_ascii=False)),
        structured_content=structured,
    )


def _encode_cursor(row: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": 1, "after": row}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        after = data["after"]
        if data.get("v") != 1 or not isinstance(after, int) or after < 0:
            raise ValueError(cursor)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise MCPError(
            code=mcp_types.INVALID_PARAMS, message="Invalid cursor", data={"cursor": cursor}
        ) from None
    return int(after)


class DocsTools:
    """The tools' logic over one index; ``sets`` limits every answer to those docs sets."""

    def __init__(self, index: DocsIndex, sets: Sequence[str] = ()) -> None:
        self.index = index
        self.sets = list(sets)
        self.limiter = anyio.CapacityLimiter(index.pool.size)

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self.limiter)

    def _sets_for(self, docs_set: str | None) -> list[str]:
        if docs_set is None:
            return self.sets
        if self.sets and docs_set not in self.sets:
            raise ToolFailure(
                f"Unknown docs set {docs_set!r}: this server serves {', '.join(self.sets)}."
            )
        return [docs_set]

    async def _search(self, query: str, sets: list[str], limit: int, budget: int) -> SearchResult:
        try:
            result: SearchResult = await self.run(
                self.index.search, query, docs_sets=sets, limit=limit, max_tokens=budget
            )
        except UnknownDocsSet as exc:
            known = ", ".join(exc.known) or "none yet"
            raise ToolFailure(f"Unknown docs set {exc.name!r}; the index holds: {known}.") from None
        return result

    async def search_docs(self, args: SearchDocsArgs) -> mcp_types.CallToolResult:
        sets = self._sets_for(args.docs_set)
        result = await self._search(args.query, sets, args.limit, args.max_tokens)
        return _result(result, render_hits(result))

    async def _page(self, ref: str, max_tokens: int | None, offset: int | None) -> PageText:
        page: PageText | None = await self.run(
            self.index.fetch, ref, max_tokens=max_tokens, offset=offset, docs_sets=self.sets
        )
        if page is None:
            raise ToolFailure(
                f"No indexed page matches {ref!r}. Give a URL or an id from search_docs."
            )
        return page

    async def fetch_doc(self, args: FetchDocArgs) -> mcp_types.CallToolResult:
        page = await self._page(args.url_or_id, args.max_tokens, args.offset)
        return _result(page, render_page(page))

    async def list_docs_sets(self, args: ListDocsSetsArgs) -> mcp_types.CallToolResult:
        found: list[DocsSet] = await self.run(self.index.docs_sets)
        if self.sets:
            found = [docs_set for docs_set in found if docs_set.name in self.sets]
        return _result(DocsSets(docs_sets=found))

    async def deep_search(self, args: DeepSearchArgs) -> mcp_types.CallToolResult:
        hits: list[Hit] = []
        if args.query.strip():
            hits = (await self._search(args.query, self.sets, DEEP_RESEARCH_RESULTS, 100)).results
        results = [DeepResult(id=hit.id, title=hit.heading_path, url=hit.url) for hit in hits]
        return _result(DeepResults(results=results))

    async def deep_fetch(self, args: DeepFetchArgs) -> mcp_types.CallToolResult:
        page = await self._page(args.id, None, None)
        document = DeepDocument(
            id=args.id,
            title=page.title,
            text=page.text,
            url=page.url,
            metadata={
                "docs_set": page.docs_set,
                "crawled_at": page.crawled_at,
                "page_id": page.id,
                "tokens": str(page.tokens),
            },
        )
        return _result(document)


def _handlers(
    tools: DocsTools,
) -> dict[str, tuple[type[ToolArgs], Callable[[Any], Awaitable[mcp_types.CallToolResult]]]]:
    return {
        "search_docs": (SearchDocsArgs, tools.search_docs),
        "fetch_doc": (FetchDocArgs, tools.fetch_doc),
        "list_docs_sets": (ListDocsSetsArgs, tools.list_docs_sets),
        "search": (DeepSearchArgs, tools.deep_search),
        "fetch": (DeepFetchArgs, tools.deep_fetch),
    }


def _failure(message: str) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=_text(message), is_error=True)


def build_server(index: DocsIndex, *, sets: Sequence[str] = (), version: str = "") -> Server[Any]:
    """The MCP server answering from ``index`` (only ``sets`` when given)."""
    tools = DocsTools(index, sets)
    handlers = _handlers(tools)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(tools=TOOLS)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        found = handlers.get(params.name)
        if found is None:
            raise MCPError(code=mcp_types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        kind, handler = found
        try:
            args = msgspec.convert(params.arguments or {}, kind)
        except msgspec.ValidationError as exc:
            return _failure(f"Invalid arguments for {params.name}: {exc}")
        try:
            return await handler(args)
        except ToolFailure as exc:
            return _failure(str(exc))

    async def list_resources(
        ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListResourcesResult:
        after = 0 if params is None or params.cursor is None else _decode_cursor(params.cursor)
        # One row more than a page says whether there is a next page.
        rows = await tools.run(index.pages_after, after, RESOURCES_PER_PAGE + 1, tools.sets)
        page, more = rows[:RESOURCES_PER_PAGE], len(rows) > RESOURCES_PER_PAGE
        return mcp_types.ListResourcesResult(
            resources=[
                mcp_types.Resource(
                    uri=entry.uri,
                    name=entry.id,
                    title=entry.title,
                    description=f"{entry.url} — {entry.description}"
                    if entry.description
                    else entry.url,
                    mime_type="text/markdown",
                )
                for entry in page
            ],
            next_cursor=_encode_cursor(page[-1].row) if more else None,
        )

    async def list_templates(
        ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListResourceTemplatesResult:
        return mcp_types.ListResourceTemplatesResult(
            resource_templates=[
                mcp_types.ResourceTemplate(
                    uri_template=RESOURCE_SCHEME + "{docs_set}/{+path}",
                    name="docs-page",
                    title="A documentation page",
                    description="A page of a docs set, as Markdown; PATH is its URL without "
                    "the scheme.",
                    mime_type="text/markdown",
                )
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any], params: mcp_types.ReadResourceRequestParams
    ) -> mcp_types.ReadResourceResult:
        uri = str(params.uri)
        page: PageText | None = None
        if uri.startswith(RESOURCE_SCHEME) and "#" not in uri:
            page = await tools.run(index.fetch, uri, docs_sets=tools.sets)
        if page is None:
            raise MCPError(
                code=mcp_types.INVALID_PARAMS,
                message=f"Resource not found: {uri}",
                data={"uri": uri},
            )
        return mcp_types.ReadResourceResult(
            contents=[
                mcp_types.TextResourceContents(
                    uri=uri, mime_type="text/markdown", text=render_page(page)
                )
            ]
        )

    return Server(
        "crawl4ai-llm-docs",
        version=version,
        title="Documentation search (crawl4ai-llm-docs)",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )
