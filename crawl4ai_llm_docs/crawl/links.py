"""What a crawled HTML page says about discovery: its links, noindex/nofollow, rel=canonical.

Links come out absolute (``<base href>`` honoured), in document order, each once. CPU-bound:
the crawl stage calls it in the worker thread that converts the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin

import lxml.html  # type: ignore[import-untyped]
import structlog

from crawl4ai_llm_docs.models import Page, PageLinks, PageReport, UrlEntry

T = TypeVar("T")

MAX_LINKS_PER_PAGE = 5_000
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "ftp:", "#")


class LinkSink(Protocol):
    """Where the crawl stage of a run started from root URLs sends each page's links."""

    async def submit(self, report: PageReport) -> tuple[bool, str]: ...


async def report_page(sink: LinkSink, entry: UrlEntry, page: Page, links: PageLinks) -> bool:
    """Report a crawled page to discovery; False when it is not to be listed (and why, logged)."""
    report = PageReport(
        index=entry.index,
        url=entry.url,
        final_url=page.final_url,
        status=page.status,
        error=page.error,
        links=links,
    )
    listed, reason = await sink.submit(report)
    if not listed:
        structlog.get_logger().debug("warning", message=f"{entry.url} not listed: {reason}")
    return listed


def with_links(convert: Callable[[], T], html: str, url: str) -> tuple[T, PageLinks]:
    """``convert()`` and the page's links, in one worker-thread call."""
    return convert(), page_links(html, url)


def _robots_meta(doc: Any) -> set[str]:
    words: set[str] = set()
    for meta in doc.iter("meta"):
        name = (meta.get("name") or "").strip().lower()
        if name in ("robots", "crawl4ai-llm-docs"):
            content = (meta.get("content") or "").lower()
            words.update(part.strip() for part in content.split(","))
    return words


def page_links(html: str, url: str) -> PageLinks:
    """Links, robots meta and canonical of ``html`` fetched from ``url`` (its final URL)."""
    if not html.strip():
        return PageLinks()
    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return PageLinks()
    base = url
    for element in doc.iter("base"):
        if href := (element.get("href") or "").strip():
            base = urljoin(url, href)
            break
    words = _robots_meta(doc)
    canonical = ""
    for element in doc.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        if "canonical" in rel and (href := (element.get("href") or "").strip()):
            canonical = urljoin(base, href).split("#", 1)[0]
            break
    nofollow = "nofollow" in words or "none" in words
    links: dict[str, None] = {}
    if not nofollow:
        for element in doc.iter("a", "area"):
            href = (element.get("href") or "").strip()
            if not href or href.lower().startswith(_SKIP_SCHEMES):
                continue
            if "nofollow" in (element.get("rel") or "").lower().split():
                continue
            if element.get("download") is not None:
                continue
            absolute = urljoin(base, href).split("#", 1)[0]
            if absolute.startswith(("http://", "https://")):
                links[absolute] = None
                if len(links) >= MAX_LINKS_PER_PAGE:
                    break
    return PageLinks(
        links=tuple(links),
        noindex="noindex" in words or "none" in words,
        nofollow=nofollow,
        canonical=canonical,
    )
