"""Sitemaps: robots.txt ``Sitemap:`` lines, ``/sitemap.xml``, sitemap indexes, ``.xml.gz``.

Files are read in parallel (``concurrency`` at once, each within ``file_timeout``, all
within ``deadline``) and delivered in a fixed order, breadth-first as listed: the seeds, and
so the output, are the same on every run however the files arrive. A file read ahead of its
turn waits in a small spill queue on disk, not in memory. Parsing, defusing and the caps of
one file are ``sitemap_xml``'s; the number of files is capped by ``max_files``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import aclosing
from pathlib import Path

import httpx
import structlog
import trio
from msgspec import Struct

from crawl4ai_llm_docs.discover.frontier import Queued, SpillQueue
from crawl4ai_llm_docs.discover.sitemap_xml import (
    MAX_URLS_PER_FILE,
    CapReached,
    Entry,
    Inflater,
    SitemapError,
    SitemapParser,
)
from crawl4ai_llm_docs.fetch.http import FetchFailure
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, Route
from crawl4ai_llm_docs.fetch.resources import open_resource, pieces

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the protocol's limit, uncompressed
MAX_INDEX_DEPTH = 3
SITEMAP_TIMEOUT_S = 60.0
_BUFFERED_ENTRIES = 500  # per file waiting for its turn; the rest spills to disk

log = structlog.get_logger()


class SitemapUrl(Struct, frozen=True, kw_only=True):
    loc: str
    lastmod: str
    sitemap: str  # the sitemap file that listed it


OnUrl = Callable[[SitemapUrl], Awaitable[None]]


class _File:
    """One sitemap file: read by its own task, delivered in its turn."""

    def __init__(self, location: str, depth: int, spill_dir: Path | None) -> None:
        self.location = location
        self.depth = depth
        self.urls = SpillQueue(spill_dir, memory_items=_BUFFERED_ENTRIES)
        self.children: list[str] = []
        self.done = trio.Event()


async def read_sitemaps(
    client: httpx.AsyncClient,
    locations: Iterable[str],
    on_url: OnUrl,
    *,
    max_files: int,
    accept: Callable[[str], bool],
    max_bytes: int = MAX_SITEMAP_BYTES,
    route: Route = OPEN_ROUTE,
    concurrency: int = 4,
    file_timeout: float = SITEMAP_TIMEOUT_S,
    deadline: float = math.inf,
    spill_dir: Path | None = None,
) -> int:
    """Read every sitemap (following indexes), ``on_url`` per page in order; return files read.

    ``accept(url)`` says whether a sitemap file may be read at all (its host is the site's).
    A sitemap that cannot be read or parsed is a warning, never an error: discovery goes on.
    At ``deadline`` (``trio.current_time()``) reading stops; what arrived is still delivered.
    """
    reader = _Reader(client, on_url, max_files, accept, max_bytes, route, file_timeout, spill_dir)
    limiter = trio.CapacityLimiter(concurrency)
    with trio.move_on_at(deadline) as timed:
        async with trio.open_nursery() as nursery:
            reader.start = lambda file: nursery.start_soon(reader.read, file, limiter)
            for location in dict.fromkeys(locations):
                reader.add(location, 0)
            await reader.deliver()
    if timed.cancelled_caught:
        cut = len(reader.files) - reader.delivered
        await reader.deliver_what_arrived()
        log.warning(
            "warning",
            message=f"Reading sitemaps stopped at the deadline (discover.sources_timeout): "
            f"{cut} of {len(reader.files)} file(s) were cut short; the URLs that arrived are used.",
        )
    if reader.not_read:
        log.warning(
            "warning",
            message=f"Read {len(reader.files)} sitemap files (discover.max_sitemaps); "
            f"{reader.not_read} more were not read.",
        )
    return len(reader.files)


class _Reader:
    def __init__(
        self,
        client: httpx.AsyncClient,
        on_url: OnUrl,
        max_files: int,
        accept: Callable[[str], bool],
        max_bytes: int,
        route: Route,
        file_timeout: float,
        spill_dir: Path | None,
    ) -> None:
        self.client = client
        self.on_url = on_url
        self.max_files = max_files
        self.accept = accept
        self.max_bytes = max_bytes
        self.route = route
        self.file_timeout = file_timeout
        self.spill_dir = spill_dir
        self.files: list[_File] = []
        self.delivered = 0
        self.not_read = 0
        self._known: set[str] = set()
        self.start: Callable[[_File], None] = lambda _: None

    def add(self, location: str, depth: int) -> None:
        if location in self._known or not self.accept(location):
            return
        self._known.add(location)
        if len(self.files) >= self.max_files:
            self.not_read += 1
            return
        file = _File(location, depth, self.spill_dir)
        self.files.append(file)
        self.start(file)

    async def deliver(self) -> None:
        """Each file's pages in turn; an index's children join the end of the line."""
        while self.delivered < len(self.files):
            file = self.files[self.delivered]
            await file.done.wait()
            await self._deliver(file)
            if file.depth + 1 <= MAX_INDEX_DEPTH:
                for child in file.children:
                    self.add(child, file.depth + 1)

    async def deliver_what_arrived(self) -> None:
        while self.delivered < len(self.files):
            await self._deliver(self.files[self.delivered])

    async def _deliver(self, file: _File) -> None:
        # Shielded: the deadline stops reading, never a file half handed over.
        with trio.CancelScope(shield=True):
            while (item := await file.urls.pop()) is not None:
                entry = SitemapUrl(loc=item.url, lastmod=item.lastmod, sitemap=file.location)
                await self.on_url(entry)
            file.urls.close()
            self.delivered += 1

    async def read(self, file: _File, limiter: trio.CapacityLimiter) -> None:
        try:
            async with limiter:
                with trio.move_on_after(self.file_timeout) as timed:
                    await self._read_one(file)
                if timed.cancelled_caught:
                    log.warning(
                        "warning",
                        message=f"Sitemap {file.location} cut short: timed out after "
                        f"{self.file_timeout:g} s.",
                    )
        except (FetchFailure, SitemapError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            # /sitemap.xml is only a guess: its absence is not worth a warning.
            level = "debug" if getattr(exc, "status", None) == 404 else "warning"
            getattr(log, level)("warning", message=f"Sitemap {file.location} skipped: {reason}.")
        except CapReached:
            log.warning(
                "warning",
                message=f"Sitemap {file.location} lists more than {MAX_URLS_PER_FILE} URLs (the "
                "protocol's limit per file): the rest of it was not read.",
            )
        finally:
            file.done.set()

    async def _read_one(self, file: _File) -> None:
        """Stream one sitemap: pages into its queue, an index's sitemaps into ``children``."""
        parser = SitemapParser()
        inflater = Inflater(self.max_bytes)
        try:
            async with open_resource(self.client, file.location, route=self.route) as (_, response):
                async with aclosing(pieces(response, limit=self.max_bytes)) as body:
                    async for piece in body:
                        for data in inflater.feed(piece):
                            await self._keep(file, parser.feed(data))
                for data in inflater.finish():
                    await self._keep(file, parser.feed(data))
            await self._keep(file, parser.feed(b"", final=True))
        except CapReached:
            await self._keep(file, parser.take())
            raise
        if parser.root not in ("urlset", "sitemapindex"):
            raise SitemapError(f"not a sitemap (root element <{parser.root or '?'}>)")

    async def _keep(self, file: _File, entries: list[Entry]) -> None:
        for kind, loc, lastmod in entries:
            if kind == "sitemap":
                if len(file.children) < self.max_files:
                    file.children.append(loc)
            else:
                await file.urls.push(Queued(url=loc, depth=0, via="", lastmod=lastmod))
