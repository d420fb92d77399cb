"""What ``serve``'s tools take and give: their arguments and results as msgspec Structs
(the JSON schemas the tools publish are generated from them, and arguments are checked
against the same Structs), the tool list, and the Markdown the model reads.

Every answer names its source URL and crawl date: ``render_hits`` and ``render_page`` put
them in the text, and the structured results carry them as fields.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from mcp import types as mcp_types
from msgspec import Meta

from crawl4ai_llm_docs.search.reader import DocsSet, PageText, SearchResult

DEFAULT_SEARCH_TOKENS = 2000  # section text per search_docs answer, all results together


class ToolArgs(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class SearchDocsArgs(ToolArgs):
    query: Annotated[str, Meta(min_length=1, description="What to look for, in plain words.")]
    docs_set: Annotated[
        str | None, Meta(description="Search this docs set only (see list_docs_sets).")
    ] = None
    limit: Annotated[int, Meta(ge=1, le=50, description="Results, one per page.")] = 5
    max_tokens: Annotated[
        int,
        Meta(ge=100, le=100_000, description="Tokens of section text in all (cl100k)."),
    ] = DEFAULT_SEARCH_TOKENS


class FetchDocArgs(ToolArgs):
    url_or_id: Annotated[
        str,
        Meta(
            min_length=1,
            description="A page's URL, a result's id (SET/PATH#section: the page from that "
            "section on) or a docs:// URI.",
        ),
    ]
    max_tokens: (
        Annotated[int, Meta(ge=100, le=1_000_000, description="At most this many tokens.")] | None
    ) = None
    offset: (
        Annotated[int, Meta(ge=0, description="The line to start at: the last next_offset.")] | None
    ) = None


class ListDocsSetsArgs(ToolArgs):
    pass


class DeepSearchArgs(ToolArgs):
    query: Annotated[str, Meta(description="What to look for.")]


class DeepFetchArgs(ToolArgs):
    id: Annotated[str, Meta(min_length=1, description="An id that search returned.")]


class DocsSets(msgspec.Struct, kw_only=True):
    docs_sets: list[DocsSet]


class DeepResult(msgspec.Struct, kw_only=True):
    id: str
    title: str
    url: str


class DeepResults(msgspec.Struct, kw_only=True):
    results: list[DeepResult]


class DeepDocument(msgspec.Struct, kw_only=True):
    id: str
    title: str
    text: str
    url: str
    metadata: dict[str, str]


def _schema(kind: type) -> dict[str, Any]:
    """The JSON schema of a Struct as one self-contained object schema."""
    _, components = msgspec.json.schema_components([kind], ref_template="#/$defs/{name}")
    schema = dict(components.pop(kind.__name__))
    schema.pop("title", None)
    if components:
        schema["$defs"] = components
    return schema


READ_ONLY = mcp_types.ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def _tool(name: str, title: str, description: str, args: type, result: type) -> mcp_types.Tool:
    return mcp_types.Tool(
        name=name,
        title=title,
        description=description,
        input_schema=_schema(args),
        output_schema=_schema(result),
        annotations=READ_ONLY,
    )


TOOLS = [
    _tool(
        "search_docs",
        "Search the documentation",
        "Full-text search (BM25, stemmed, headings weighted) over the indexed documentation. "
        "Returns the best section of each matching page, best first: heading path, source "
        "URL, crawl date, token count and the section text (the part that matched, when the "
        "results together exceed max_tokens).",
        SearchDocsArgs,
        SearchResult,
    ),
    _tool(
        "fetch_doc",
        "Read a documentation page",
        "Return a page's Markdown, from the start or from the section an id names, as much "
        "as fits max_tokens; next_offset says where to continue (null: the end is included).",
        FetchDocArgs,
        PageText,
    ),
    _tool(
        "list_docs_sets",
        "List the docs sets",
        "The documentation sets (libraries, versions) in the index, with their page, section "
        "and token counts and when they were last crawled.",
        ListDocsSetsArgs,
        DocsSets,
    ),
    _tool(
        "search",
        "Search (deep research)",
        "Search the documentation; returns {results: [{id, title, url}]}. Pass an id to fetch.",
        DeepSearchArgs,
        DeepResults,
    ),
    _tool(
        "fetch",
        "Fetch (deep research)",
        "Fetch the section an id from search names: {id, title, text, url, metadata}.",
        DeepFetchArgs,
        DeepDocument,
    ),
]


def render_hits(result: SearchResult) -> str:
    """A search answer as Markdown for the model: each section under its heading path."""
    if not result.results:
        return f"No section matches {result.query!r}. Try other words, or list_docs_sets."
    parts = []
    for number, hit in enumerate(result.results, start=1):
        parts.append(
            f"## {number}. {hit.heading_path}\n"
            f"Source: {hit.url} (crawled {hit.crawled_at[:10]}; docs set {hit.docs_set}; "
            f"id {hit.id}; {hit.tokens} tokens{', excerpt' if hit.truncated else ''})\n\n"
            f"{hit.text}"
        )
    parts.append("fetch_doc(url_or_id=<id>) reads a page from that section on.")
    return "\n\n".join(parts)


def render_page(page: PageText) -> str:
    head = (
        f"# {page.title}\nSource: {page.url} (crawled {page.crawled_at[:10]}; docs set "
        f"{page.docs_set}; lines {page.start_line}-{page.end_line} of {page.total_lines}; "
        f"page {page.tokens} tokens)"
    )
    tail = (
        f"\n\n[Continues: fetch_doc(url_or_id={page.id!r}, offset={page.next_offset})]"
        if page.next_offset is not None
        else ""
    )
    return f"{head}\n\n{page.text}{tail}"
