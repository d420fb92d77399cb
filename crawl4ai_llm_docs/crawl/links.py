"""What a crawled HTML page says about discovery: its links, noindex/nofollow, rel=canonical,
and whether it is a generated page rather than documentation (``generated_kind``).

Links come out absolute (``<base href>`` honoured), in document order, each once. CPU-bound:
the crawl stage calls it in the worker thread that converts the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin

import lxml.html  # type: ignore[import-untyped]
import structlog

from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.models import Page, PageLinks, PageReport, UrlEntry

T = TypeVar("T")

MAX_LINKS_PER_PAGE = 5_000
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "ftp:", "#")
# A search page's parts: a results container (Sphinx "search-results", MkDocs
# "mkdocs-search-results", mdBook "searchresults") and the script that loads the index.
_RESULTS = re.compile(r"(^|[-_])search[-_]?results?$")
_INDEX_SCRIPT = re.compile(r"search[-_]?index|searchtools|lunr|search/main\.js|Search\.loadIndex")
_SEARCH_PAGE_MAX_WORDS = 60  # the main text of a search page: a heading and a hint or two
_MAIN = ("main", "article")
_VISIBLE_TEXT = (
    ".//text()[not(ancestor::script or ancestor::style or ancestor::noscript"
    " or ancestor::form or ancestor::template)]"
)


class LinkSink(Protocol):
    """Where the crawl stage of a run started from root URLs sends each page's links."""

    async def submit(self, report: PageReport) -> tuple[bool, str]: ...

    def route(self, index: int) -> Route:
        """How the page emitted as ``index`` is fetched: which redirect hops may be followed."""
        ...


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
    capped = False
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
            if absolute.startswith(("http://", "https://")) and absolute not in links:
                if len(links) >= MAX_LINKS_PER_PAGE:
                    capped = True  # a link past the cap: said, not silently dropped
                    break
                links[absolute] = None
    return PageLinks(
        links=tuple(links),
        noindex="noindex" in words or "none" in words,
        nofollow=nofollow,
        canonical=canonical,
        generated=generated_kind(doc),
        capped=capped,
    )


def generated_kind(doc: Any) -> str:
    """ "a search page", "a generated index" ...: what the page is if not documentation; "".

    Decided by what the page contains, not its name (``search.html`` is also the name of
    real pages). A search page loads a search index, has an (empty) results container, and
    its main text around that container is a heading and a hint: mdBook puts the first two on
    every page, beside real content.
    """
    for table in doc.iter("table"):
        classes = (table.get("class") or "").split()
        if "genindextable" in classes or classes == ["indextable"]:  # Sphinx, whole or by letter
            return "a generated index"
        if "modindextable" in classes:
            return "a module index"
    if not any(_loads_search_index(script) for script in doc.iter("script")):
        return ""
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        names = [element.get("id") or "", *(element.get("class") or "").split()]
        if not any(_RESULTS.search(name.lower()) for name in names):
            continue
        if len(_text(element).split()) > 3:  # "Searching..." at most
            continue
        region = _main_region(element)
        if region is None:
            continue  # outside the page's main content: a search box of a real page
        if len(_text(region).split()) <= _SEARCH_PAGE_MAX_WORDS:
            return "a search page"
    return ""


def _loads_search_index(script: Any) -> bool:
    what = " ".join((script.get("src") or "", script.get("id") or "", script.text or ""))
    return bool(_INDEX_SCRIPT.search(what))


def _main_region(element: Any) -> Any:
    """The main content holding ``element`` (<main>, <article>, role=main); <body> on a page
    without one; None when the page has one elsewhere."""
    for ancestor in element.iterancestors():
        if ancestor.tag in _MAIN or (ancestor.get("role") or "").lower() == "main":
            return ancestor
    root = element.getroottree().getroot()
    if root.xpath("//main | //article | //*[@role='main']"):
        return None
    body = root.find("body")
    return body if body is not None else root


def _text(element: Any) -> str:
    """The visible text of ``element``: scripts, styles, forms and <noscript> left out."""
    return " ".join(element.xpath(_VISIBLE_TEXT))
