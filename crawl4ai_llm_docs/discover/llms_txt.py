"""A site's own ``llms.txt``: the pages it lists (Markdown links), in the order it lists them.

Looked for at the root's directory first (``/en/stable/llms.txt``), then at the host's root.
Only links in scope count (links to other hosts are never fetched); an llms.txt that lists
none of the scope's pages is ignored. At most ``MAX_LINKS`` links of one file are read.

An llms.txt (v2) may link each page's Markdown, ``page.html.md``, instead of the page: that is
the page itself (its Markdown is taken by the crawl when ``crawl.prefer_markdown`` allows),
never a page of its own. A bare ``page.md`` cannot be told apart from a page named so without
asking the site, and is kept as it is.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx
import trio

from crawl4ai_llm_docs.fetch.http import FetchFailure
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, Route
from crawl4ai_llm_docs.fetch.resources import read_text

MAX_LLMS_TXT_BYTES = 4 * 1024 * 1024
LLMS_TXT_TIMEOUT_S = 30.0
MAX_LINKS = 50_000
# [title](url) or [title](url "title"), as the llms.txt proposal writes its file lists.
_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def parse_llms_txt(text: str, base_url: str) -> list[tuple[str, str]]:
    """(absolute URL, title) of every Markdown link, in order, fragments dropped."""
    links: list[tuple[str, str]] = []
    for match in _LINK.finditer(text):
        title, href = match.group(1).strip(), match.group(2)
        url = page_of(urljoin(base_url, href).split("#", 1)[0])
        if url.startswith(("http://", "https://")):
            links.append((url, title))
            if len(links) >= MAX_LINKS:
                break
    return links


_MARKDOWN_OF_PAGE = re.compile(r"(\.html?)\.md$", re.IGNORECASE)


def page_of(url: str) -> str:
    """The page a ``page.html.md`` link stands for (``page.html``); any other URL as it is."""
    path, mark, query = url.partition("?")
    page = _MARKDOWN_OF_PAGE.sub(r"\1", path)
    return page + mark + query


def candidates(root: str) -> list[str]:
    """Where a root's llms.txt may be: its directory, then the host's root."""
    here = urljoin(root, "llms.txt")
    top = urljoin(root, "/llms.txt")
    return list(dict.fromkeys((here, top)))


async def read_llms_txt(
    client: httpx.AsyncClient, url: str, *, route: Route = OPEN_ROUTE
) -> list[tuple[str, str]] | None:
    """The links of the llms.txt at ``url``; None when there is none (or it is not text)."""
    try:
        with trio.fail_after(LLMS_TXT_TIMEOUT_S):
            final_url, text = await read_text(
                client, url, max_bytes=MAX_LLMS_TXT_BYTES, route=route
            )
    except (FetchFailure, trio.TooSlowError):
        return None
    if text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return None  # a soft 404: the site answers every path with an HTML page
    return parse_llms_txt(text, final_url)
