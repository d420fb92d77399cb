"""Sitemaps: robots.txt ``Sitemap:`` lines, ``/sitemap.xml``, sitemap indexes, ``.xml.gz``.

Each sitemap is parsed while it streams in (expat, fed piece by piece), so a 50,000-URL file
is never held whole. Defused: a document type declaration (the vehicle of "billion laughs"
and external entities) stops the parse, a gzip body is inflated in bounded steps (a gzip bomb
stops at ``max_bytes``), and the number of sitemap files and their nesting are capped.
``lastmod`` is kept with every URL.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable
from xml.parsers import expat

import httpx
import structlog
import trio
from msgspec import Struct

from crawl4ai_llm_docs.fetch.http import FetchFailure
from crawl4ai_llm_docs.fetch.resources import open_resource

MAX_SITEMAP_BYTES = 64 * 1024 * 1024  # the protocol allows 50 MB uncompressed
MAX_INDEX_DEPTH = 3
SITEMAP_TIMEOUT_S = 60.0
_INFLATE_STEP = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class SitemapUrl(Struct, frozen=True, kw_only=True):
    loc: str
    lastmod: str
    sitemap: str  # the sitemap file that listed it


class SitemapError(ValueError):
    pass


class _Parser:
    """Collects (kind, loc, lastmod) for every <url> and <sitemap> entry fed to it."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str, str]] = []
        self._parser = expat.ParserCreate()
        self._parser.StartDoctypeDeclHandler = self._forbid
        self._parser.EntityDeclHandler = self._forbid
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._entry: str | None = None
        self._field: str | None = None
        self._loc: list[str] = []
        self._lastmod: list[str] = []
        self.root = ""

    @staticmethod
    def _forbid(*_: object) -> None:
        raise SitemapError("it declares a DTD or entities (refused: XML bomb protection)")

    @staticmethod
    def _local(name: str) -> str:
        return name.rsplit(":", 1)[-1].rsplit("}", 1)[-1]

    def _start(self, name: str, _attrs: dict[str, str]) -> None:
        local = self._local(name)
        if not self.root:
            self.root = local
        if local in ("url", "sitemap"):
            self._entry, self._loc, self._lastmod = local, [], []
        elif self._entry is not None and local in ("loc", "lastmod"):
            self._field = local

    def _end(self, name: str) -> None:
        local = self._local(name)
        if local == self._entry:
            loc = "".join(self._loc).strip()
            if loc:
                self.found.append((self._entry, loc, "".join(self._lastmod).strip()))
            self._entry = None
        elif local == self._field:
            self._field = None

    def _text(self, data: str) -> None:
        if self._field == "loc":
            self._loc.append(data)
        elif self._field == "lastmod":
            self._lastmod.append(data)

    def feed(self, data: bytes, *, final: bool = False) -> list[tuple[str, str, str]]:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise SitemapError(f"not well-formed XML ({exc})") from None
        found, self.found = self.found, []
        return found


class _Inflater:
    """gzip bodies are inflated in bounded steps; plain bodies pass through. Both are capped."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._total = 0
        self._zlib: zlib._Decompress | None = None
        self._decided = False

    def feed(self, data: bytes) -> Iterable[bytes]:
        if not self._decided:
            self._decided = True
            if data.startswith(_GZIP_MAGIC):
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._zlib is None:
            yield self._count(data)
            return
        pending = data
        while pending:
            try:
                out = self._zlib.decompress(pending, _INFLATE_STEP)
            except zlib.error as exc:
                raise SitemapError(f"broken gzip data ({exc})") from None
            yield self._count(out)
            pending = self._zlib.unconsumed_tail

    def _count(self, data: bytes) -> bytes:
        self._total += len(data)
        if self._total > self._max:
            raise SitemapError(f"larger than {self._max // (1024 * 1024)} MiB uncompressed")
        return data


OnUrl = Callable[[SitemapUrl], Awaitable[None]]


async def read_sitemaps(
    client: httpx.AsyncClient,
    locations: Iterable[str],
    on_url: OnUrl,
    *,
    max_files: int,
    accept: Callable[[str], bool],
    max_bytes: int = MAX_SITEMAP_BYTES,
) -> int:
    """Read every sitemap (following indexes) and call ``on_url`` per page; return files read.

    ``accept(url)`` says whether a sitemap file may be read at all (its host is the site's).
    A sitemap that cannot be read or parsed is a warning, never an error: discovery goes on.
    """
    queue: list[tuple[str, int]] = [(loc, 0) for loc in dict.fromkeys(locations)]
    done: set[str] = set()
    files = 0
    while queue and files < max_files:
        location, depth = queue.pop(0)
        if location in done or not accept(location):
            continue
        done.add(location)
        files += 1
        children: list[str] = []
        try:
            with trio.fail_after(SITEMAP_TIMEOUT_S):
                await _read_one(client, location, on_url, children, max_bytes)
        except (FetchFailure, SitemapError, trio.TooSlowError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or "timed out"
            # /sitemap.xml is only a guess: its absence is not worth a warning.
            level = "debug" if getattr(exc, "status", None) == 404 else "warning"
            getattr(structlog.get_logger(), level)(
                "warning", message=f"Sitemap {location} skipped: {reason}."
            )
        if depth + 1 <= MAX_INDEX_DEPTH:
            queue.extend((child, depth + 1) for child in children[:max_files])
    if queue:
        structlog.get_logger().warning(
            "warning",
            message=f"Read {files} sitemap files (discover.max_sitemaps); {len(queue)} more "
            "were not read.",
        )
    return files


async def _read_one(
    client: httpx.AsyncClient,
    location: str,
    on_url: OnUrl,
    children: list[str],
    max_bytes: int,
) -> None:
    """Stream one sitemap: pages go to ``on_url``, an index's sitemaps into ``children``."""
    parser = _Parser()
    inflater = _Inflater(max_bytes)

    async def deliver(entries: list[tuple[str, str, str]]) -> None:
        for kind, loc, lastmod in entries:
            if kind == "sitemap":
                children.append(loc)
            else:
                await on_url(SitemapUrl(loc=loc, lastmod=lastmod, sitemap=location))

    async with open_resource(client, location) as (_, response):
        async for part in response.aiter_bytes():
            for data in inflater.feed(part):
                await deliver(parser.feed(data))
        await deliver(parser.feed(b"", final=True))
    if parser.root not in ("urlset", "sitemapindex"):
        raise SitemapError(f"not a sitemap (root element <{parser.root or '?'}>)")
