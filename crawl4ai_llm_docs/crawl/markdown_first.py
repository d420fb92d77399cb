"""Markdown first (``crawl.prefer_markdown``): a page's content from the Markdown it offers.

    the page, asked with "Accept: text/markdown, text/html;q=0.9"
      ├─ answered in Markdown ─► the HTML asked for again (unless the URL is a .md file)
      └─ answered in HTML ─────► the Markdown it names fetched (Link header, <link> in its head;
                                  with "always", the .md beside it when it names none)
    then, in the worker thread (``content``): the Markdown checked against the HTML's main
    content (``markdown_check``); it holds up: it is the page, no HTML is converted; else the
    HTML is converted and ``Content.problem`` says why.

The HTML still gives discovery its links, noindex and canonical, and the page its metadata:
such a page costs two requests. The Markdown is the same page, never one of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol
from urllib.parse import urlsplit

import lxml.html  # type: ignore[import-untyped]
import msgspec
from msgspec import Struct

from crawl4ai_llm_docs.crawl import alternate
from crawl4ai_llm_docs.crawl.markdown_check import lacks
from crawl4ai_llm_docs.fetch.http import (
    ACCEPT_HTML,
    HTML_TYPES,
    MARKDOWN_TYPES,
    Fetched,
    FetchFailure,
)
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.markdown.titles import split_site_name
from crawl4ai_llm_docs.models import PageLinks, SourceFormat

Prefer = Literal["auto", "never", "always"]
# (url, Accept, media types allowed, route) -> the answer, or why there was none
PageFetch = Callable[[str, str, Sequence[str], Route], Awaitable[Fetched | FetchFailure]]


class Converted(Protocol):
    """What converting the HTML gives (``extract.Extracted``)."""

    @property
    def title(self) -> str: ...
    @property
    def markdown(self) -> str: ...
    @property
    def words(self) -> int: ...
    @property
    def site_name(self) -> str: ...
    @property
    def problem(self) -> str: ...


class Offer(Struct, frozen=True, kw_only=True):
    """A page's answers: what stands for it, its HTML, and the Markdown it offered."""

    page: Fetched  # the HTML answer; the Markdown's when the URL has no HTML behind it
    html: str  # the page's HTML ("" when there is none)
    markdown: Fetched | None = None
    problem: str = ""  # why the Markdown it named could not be fetched

    @property
    def bytes(self) -> int:
        own = self.markdown is not None and self.markdown is not self.page
        return self.page.bytes + (self.markdown.bytes if own and self.markdown else 0)

    @classmethod
    def of(cls, page: Fetched) -> Offer:
        """A page that offered no Markdown (or was not asked)."""
        return cls(page=page, html=page.html)

    def without_own_markdown(self, links: PageLinks) -> PageLinks:
        """A page's link to its own Markdown is the same page, never one of its own."""
        if self.markdown is None or self.markdown is self.page:
            return links
        own = self.markdown.final_url
        return msgspec.structs.replace(links, links=tuple(u for u in links.links if u != own))


class Content(Struct, frozen=True, kw_only=True):
    title: str
    markdown: str
    words: int
    source_format: SourceFormat = "html"
    problem: str = ""  # why the page's Markdown was not used (or, with "always", its flaw)
    site_name: str = ""  # the site's name its <title> carried (extract's title rule)
    error: str = ""  # why a page with text gave no Markdown at all: the page fails


class MarkdownFirst:
    """The crawl stage's hook: what to ask a page for, and its Markdown when it offers one."""

    def __init__(self, prefer: Prefer, fetch: PageFetch, *, css_selector: str = "") -> None:
        self.prefer = prefer
        self._fetch = fetch
        self._css_selector = css_selector

    @property
    def on(self) -> bool:
        return self.prefer != "never"

    @property
    def accept(self) -> str:
        """The page request's Accept header ("" keeps the client's, HTML only)."""
        return alternate.ACCEPT_MARKDOWN_FIRST if self.on else ""

    @property
    def page_types(self) -> tuple[str, ...]:
        return (*HTML_TYPES, *MARKDOWN_TYPES) if self.on else HTML_TYPES

    async def offer(self, first: Fetched, route: Route) -> Offer | None:
        """The page's HTML and Markdown, given its first answer; None when not looking."""
        if not self.on:
            return None
        if first.is_markdown:  # negotiated, or a Markdown file
            if alternate.is_markdown_file(first.final_url):
                return Offer(page=first, html="", markdown=first)  # no HTML behind it
            again = await self._fetch(first.final_url, ACCEPT_HTML, HTML_TYPES, route)
            if isinstance(again, Fetched) and not again.is_markdown:
                return Offer(page=again, html=again.html, markdown=first)
            why = again.reason if isinstance(again, FetchFailure) else "it answered Markdown again"
            problem = f"the HTML could not be fetched to check the Markdown against ({why})"
            return Offer(page=first, html="", markdown=first, problem=problem)
        named = alternate.advertised(first.final_url, first.html, first.link_header)
        guessing = not named and self.prefer == "always"
        urls = alternate.beside(first.final_url) if guessing else named
        problem = ""
        same_origin = _same_origin_route(route, first.final_url)
        for url in urls:
            got = await self._fetch(
                url, alternate.ACCEPT_ALTERNATE, alternate.ALTERNATE_TYPES, same_origin
            )
            if isinstance(got, Fetched) and "\x00" not in got.html:
                return Offer(page=first, html=first.html, markdown=got)
            if not guessing and not problem:  # a guess that is not there is no problem
                reason = got.reason if isinstance(got, FetchFailure) else "not text"
                problem = f"the Markdown at {url} could not be fetched: {reason}"
        return Offer(page=first, html=first.html, problem=problem)

    def content(self, offer: Offer, convert: Callable[[], Converted]) -> Content:
        """The page's Markdown when it holds up, else the HTML converted (``convert``)."""
        problem = offer.problem
        if offer.markdown is not None:
            url = offer.markdown.final_url
            own = alternate.normalise(offer.markdown.html, url)
            missing = lacks(own.markdown, offer.html, css_selector=self._css_selector)
            if not missing or self.prefer == "always":
                # The HTML's title, without the site's name when the Markdown's own heading
                # confirms what is left: the rule the HTML's conversion uses.
                title, site_name = split_site_name(_head_title(offer.html) or own.title, own.title)
                return Content(
                    title=title,
                    site_name=site_name,
                    markdown=own.markdown,
                    words=len(own.markdown.split()),
                    source_format="markdown",
                    problem=f"the Markdown at {url} was used though {missing}"
                    if missing
                    else offer.problem,
                )
            problem = f"the Markdown at {url} was not used: {missing}"
        extracted = convert()
        return Content(
            title=extracted.title,
            markdown=extracted.markdown,
            words=extracted.words,
            problem=problem,
            site_name=extracted.site_name,
            error=extracted.problem,
        )


def _same_origin_route(route: Route, page_url: str) -> Route:
    """The page's addresses, and redirects of its Markdown only within the page's origin
    (not the page's own hop check: discovery would count a refusal against the page)."""
    origin = urlsplit(page_url)[:2]

    async def check(url: str) -> str | None:
        return None if urlsplit(url)[:2] == origin else "another origin than the page's"

    return Route(route.guard, route.resolver, check)


def _head_title(html: str) -> str:
    """The HTML's <title>, as the HTML's conversion names the page (titles stay alike)."""
    head = alternate.head_of(html)
    if "<title" not in head.lower():
        return ""
    try:
        doc = lxml.html.document_fromstring(head + "</head></html>")
    except (ValueError, lxml.etree.ParserError):
        return ""
    for element in doc.iter("title"):
        if text := " ".join(element.text_content().split()):
            return text
    return ""
