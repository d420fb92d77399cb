"""What the local docs site is asked to serve (``SiteConfig``) and what it saw (``SiteHandle``)."""

from __future__ import annotations

import collections
import time
from typing import Literal

import msgspec
import trio

from crawl4ai_llm_docs.testing.site.private import LoggedRequest

MarkdownMode = Literal["none", "link", "header", "negotiate", "beside"]


class SiteConfig(msgspec.Struct, frozen=True, kw_only=True):
    pages: int = 28  # generated pages /docs/page-000.html ...
    sections: int = 3  # h2 sections per generated page (size knob)
    paragraphs: int = 3  # paragraphs per section (size knob)
    directory: str = ""  # serve this directory's files instead of generated pages
    slow_delay: float = 5.0  # seconds before /special/slow.html answers
    huge_bytes: int = 30_000_000  # body size of /special/huge.html, sent without Content-Length
    rate_limited_hits: int = 1  # 429 answers before /special/rate-limited.html works
    flaky_hits: int = 1  # 503 answers before /special/flaky.html works
    retry_after: float = 1.0  # Retry-After seconds sent with those answers
    delays: dict[str, float] = msgspec.field(default_factory=dict)  # path -> seconds
    statuses: dict[str, int] = msgspec.field(default_factory=dict)  # path -> forced status
    files: dict[str, str] = msgspec.field(default_factory=dict)  # path -> text (robots.txt ...)
    sitemap: bool = False  # publish every page in /sitemap.xml (an index of .xml.gz when large)
    sitemap_size: int = 50_000  # URLs per generated sitemap file
    redirects: dict[str, str] = msgspec.field(default_factory=dict)  # path -> Location (301)
    # Validators sent with pages, honoured in conditional requests (If-None-Match /
    # If-Modified-Since -> 304): "etag", "last-modified", "both", or "none".
    validators: Literal["none", "etag", "last-modified", "both"] = "none"
    # Markdown first (markdown.py): how generated pages offer their own Markdown, and the
    # pages whose Markdown lacks their last code block.
    markdown: MarkdownMode = "none"
    markdown_without_code: list[int] = msgspec.field(default_factory=list)
    # A private site (private.py): header -> value, cookie -> value every request must carry.
    require_header: dict[str, str] = msgspec.field(default_factory=dict)
    require_cookies: dict[str, str] = msgspec.field(default_factory=dict)


class SiteHandle:
    """A running site: its address and what it was asked for."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.base_url = ""
        self.hits: collections.Counter[str] = collections.Counter()
        self.hit_times: dict[str, list[float]] = collections.defaultdict(list)  # monotonic
        self.page_paths: list[str] = []
        self.requests: list[str] = []  # every path asked for, in order (query included)
        self.request_log: list[LoggedRequest] = []  # and the headers each one carried
        self._hit_events: dict[str, trio.Event] = {}
        self.revisions: collections.Counter[str] = collections.Counter()  # path -> edits
        self.statuses: collections.Counter[int] = collections.Counter()  # of page answers

    def change(self, path: str) -> None:
        """Edit a page: its main text gains a line, so its validators and content change."""
        self.revisions[path] += 1

    async def wait_for_hit(self, path: str) -> None:
        """Return once ``path`` was requested (call from the trio run that serves the site)."""
        if not self.hits[path]:
            await self._hit_events.setdefault(path, trio.Event()).wait()

    def _record_hit(self, path: str) -> int:
        self.hits[path] += 1
        self.hit_times[path].append(time.monotonic())
        if (event := self._hit_events.get(path)) is not None:
            event.set()
        return self.hits[path]

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def page_urls(self) -> list[str]:
        """URLs of the generated pages, or of every HTML file of the served directory."""
        return [self.url(path) for path in self.page_paths]
