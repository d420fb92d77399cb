"""Data passed between stages: URL -> Page -> Chunk -> ChunkResult -> Document.

Every item carries ``index``, the URL's position in the input, so the write stage can restore
input order whatever order the work finishes in.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

CrawlMode = Literal["http", "browser"]
ResultSource = Literal["llm", "cache", "fallback", "raw"]
# A crawled page against the previous run's copy of the same URL (``page_state.py``).
Freshness = Literal["new", "changed", "unchanged"]
# Where a page's Markdown came from: its HTML converted, or the Markdown the site offers.
SourceFormat = Literal["html", "markdown"]


class UrlEntry(Struct, frozen=True, kw_only=True):
    index: int  # position among the valid URLs, 0-based
    url: str
    line: int  # line number in the URL file, for messages
    lastmod: str = ""  # the page's sitemap lastmod, when discovery found one


class Page(Struct, frozen=True, kw_only=True):
    """One crawled URL: either Markdown or an error saying why not."""

    index: int
    url: str
    final_url: str
    title: str
    markdown: str
    status: int | None  # HTTP status of the final response, None when no response
    error: str | None  # reason the page failed; None when it was crawled
    elapsed: float  # seconds spent on this page, retries included
    bytes: int  # size of the HTML received (0 when a 304 said the stored copy is current)
    mode: CrawlMode = "http"
    freshness: Freshness | None = None  # None when no refresh state is kept (--no-cache)
    fetched_at: str = ""  # ISO 8601 UTC, when this run fetched it
    changed_at: str = ""  # when its extracted text last changed
    # From the page's <head> (crawl/metadata.py), for titles, sections and descriptions.
    site_name: str = ""  # og:site_name / application-name
    meta_description: str = ""  # <meta name=description> or og:description
    source_format: SourceFormat = "html"
    markdown_problem: str = ""  # why the site's Markdown was not used (crawl.prefer_markdown)

    @property
    def ok(self) -> bool:
        return self.error is None


class Chunk(Struct, frozen=True, kw_only=True):
    """A piece of a page small enough for one LLM request."""

    page_index: int
    chunk_index: int
    chunk_count: int
    url: str
    title: str
    text: str
    tokens: int


class ChunkResult(Struct, frozen=True, kw_only=True):
    """The cleaned Markdown for one chunk, and where it came from."""

    page_index: int
    chunk_index: int
    chunk_count: int
    markdown: str
    description: str = ""
    source: ResultSource = "llm"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    warning: str | None = None  # e.g. why the crawled text was kept instead of the answer
    llm_failed: bool = False  # no usable answer (retries exhausted, too large): counts as failed


class Document(Struct, frozen=True, kw_only=True):
    """A finished page: its cleaned Markdown, or the reason it failed."""

    index: int
    url: str
    title: str
    markdown: str
    description: str = ""  # the LLM's one-line summary, if it gave one
    error: str | None = None
    fetched_at: str = ""  # from the Page: when fetched, and when its text last changed
    changed_at: str = ""
    site_name: str = ""  # the page's metadata, carried from Page
    meta_description: str = ""
    source_format: SourceFormat = "html"  # from Page: for the pages directory's front matter

    @property
    def ok(self) -> bool:
        return self.error is None


class PageLinks(Struct, frozen=True, kw_only=True):
    links: tuple[str, ...] = ()
    noindex: bool = False
    nofollow: bool = False
    canonical: str = ""  # absolute URL of <link rel=canonical>, "" when none
    # What the page is when it is not documentation, read from its HTML: "a search page",
    # "a generated index" ... ("" for a documentation page).
    generated: str = ""
    # The page has more links than are read (``crawl.links.MAX_LINKS_PER_PAGE``): the rest
    # are not followed, and discovery says so.
    capped: bool = False


class PageReport(Struct, frozen=True, kw_only=True):
    """What the crawler learnt about one emitted URL."""

    index: int
    url: str
    final_url: str
    status: int | None
    error: str | None  # None when the page was fetched
    links: PageLinks = PageLinks()
