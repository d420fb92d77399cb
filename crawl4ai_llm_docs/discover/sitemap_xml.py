"""One sitemap file, parsed while it streams in: defused, inflated in bounded steps, capped.

expat is fed piece by piece, so a 50 MB file is never held whole. A document type declaration
(the vehicle of "billion laughs" and external entities) stops the parse; a ``.xml.gz`` body
is inflated ``decode.STEP`` bytes at a time up to ``max_bytes``; and a file stops being read
after ``MAX_URLS_PER_FILE`` entries, the protocol's own limit (a file of a million copies of
one URL would otherwise be read to the end).
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.parsers import expat

from crawl4ai_llm_docs.fetch.decode import BodyDecoder, BodyRefused, size_text

MAX_URLS_PER_FILE = 50_000  # sitemaps.org: "no more than 50,000 URLs"
_GZIP_MAGIC = b"\x1f\x8b"

Entry = tuple[str, str, str]  # ("url" | "sitemap", loc, lastmod)


class SitemapError(ValueError):
    pass


class CapReached(Exception):
    """The file listed more entries than a sitemap may: what came before is kept."""


class SitemapParser:
    """Collects (kind, loc, lastmod) for every <url> and <sitemap> entry fed to it."""

    def __init__(self, *, max_entries: int = MAX_URLS_PER_FILE) -> None:
        self.found: list[Entry] = []
        self.entries = 0
        self._max_entries = max_entries
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
                self.entries += 1
                if self.entries >= self._max_entries:
                    raise CapReached
            self._entry = None
        elif local == self._field:
            self._field = None

    def _text(self, data: str) -> None:
        if self._field == "loc":
            self._loc.append(data)
        elif self._field == "lastmod":
            self._lastmod.append(data)

    def feed(self, data: bytes, *, final: bool = False) -> list[Entry]:
        """Parse ``data``; return the entries completed so far (``CapReached`` at the cap)."""
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise SitemapError(f"not well-formed XML ({exc})") from None
        found, self.found = self.found, []
        return found

    def take(self) -> list[Entry]:
        """Entries completed before a ``CapReached``."""
        found, self.found = self.found, []
        return found


class Inflater:
    """A ``.xml.gz`` body inflated in bounded steps; a plain one passes through. Both capped."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._decoder: BodyDecoder | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._decoder is None:
            coding = "gzip" if data.startswith(_GZIP_MAGIC) else None
            self._decoder = BodyDecoder(coding, limit=self._max)
        try:
            yield from self._decoder.feed(data)
        except BodyRefused as exc:
            raise SitemapError(self._why(exc)) from None

    def finish(self) -> Iterator[bytes]:
        if self._decoder is None:
            return
        try:
            yield from self._decoder.finish()
        except BodyRefused as exc:
            raise SitemapError(self._why(exc)) from None

    def _why(self, exc: BodyRefused) -> str:
        if exc.too_large:
            return f"larger than {size_text(self._max)} uncompressed"
        return exc.reason
