"""``crawl4ai-llm-docs search QUERY``: the docs index searched from the terminal.

The same search ``serve`` gives agents (``search/reader.py``): the best section of each
matching page, best first, with its heading path, source URL, crawl date and the part of its
text that matched. ``--json`` prints the results as one JSON object for scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from cyclopts import Parameter
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.padding import Padding
from rich.text import Text

from crawl4ai_llm_docs.cli.flags import ConfigFile, flag_overrides
from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.search.reader import Hit, SearchResult, open_docs_index

IndexFile = Annotated[
    Path | None,
    Parameter(
        name="--index",
        help="The docs index file [default: output.index_path, else docs-index.sqlite in the "
        "user data directory: where runs write it].",
    ),
]


def index_location(index: Path | None, config: Path | None) -> Path:
    """The index a command reads: ``--index``, else the one runs write (``output.index_path``)."""
    overrides = flag_overrides(
        index=("output.index_path", "--index", str(index) if index else None)
    )
    return load_config(config_file=config, overrides=overrides).config.index_file()


def search(
    *words: Annotated[str, Parameter(name="QUERY", help="What to look for, in any words.")],
    docs_set: Annotated[
        str | None,
        Parameter(name="--docs-set", help="Search this docs set only [default: every set]."),
    ] = None,
    limit: Annotated[
        int, Parameter(name="--limit", help="Results to show, 1-50 [default: 5].")
    ] = 5,
    max_tokens: Annotated[
        int,
        Parameter(
            name="--max-tokens",
            help="Tokens of section text to show in all, shared by the results [default: 1200].",
        ),
    ] = 1200,
    json: Annotated[
        bool, Parameter(name="--json", negative="", help="Print the results as JSON.")
    ] = False,
    index: IndexFile = None,
    config: ConfigFile = None,
) -> int:
    """Search the docs index that runs keep (see `serve` for agents)."""
    text = " ".join(words).strip()
    if not text:
        raise InputError("search needs a QUERY: the words to look for, e.g. `search read csv`.")
    if not 1 <= limit <= 50:
        raise InputError(f"--limit {limit} is out of range: give 1 to 50.")
    if max_tokens < 1:
        raise InputError(f"--max-tokens {max_tokens} is out of range: give a positive number.")
    path = index_location(index, config)
    docs_index = open_docs_index(path, docs_sets=[docs_set] if docs_set else [], pool_size=1)
    try:
        result = docs_index.search(
            text, docs_sets=[docs_set] if docs_set else [], limit=limit, max_tokens=max_tokens
        )
    finally:
        docs_index.close()
    if json:
        print(msgspec.json.encode(result).decode())
    else:
        _show(Console(highlight=False), result)
    return 0


def _show(console: Console, result: SearchResult) -> None:
    if not result.results:
        console.print(f"No section matches {result.query!r}.")
        return
    if result.prefix_fallback:
        console.print("[dim]No word matched whole; these match words starting the same.[/dim]")
    for number, hit in enumerate(result.results, start=1):
        console.print(_render(number, hit))


def _render(number: int, hit: Hit) -> Group:
    heading = Text.assemble((f"{number}. ", "bold"), (hit.heading_path, "bold cyan"))
    source = Text(
        f"{hit.url} · crawled {hit.crawled_at[:10]} · {hit.tokens} tokens · {hit.docs_set}",
        style="dim",
    )
    body = Padding(Markdown(hit.text), (0, 0, 0, 3))
    also = Text(f"   id: {hit.id}", style="dim")
    return Group(heading, Padding(source, (0, 0, 0, 3)), body, also, Text(""))
