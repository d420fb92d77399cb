"""What a hostile site sends: answers (``Answer``, ``Drip``), decompression bombs, huge
robots.txt files, sitemap floods.

A bomb is a few kilobytes (brotli) or a few megabytes (gzip, whose ratio tops out near
1000:1) that inflate to ``BOMB_BYTES`` of one repeated HTML paragraph. They are built in
well under a second and kept for the process: a gzip bomb is one compressed block repeated
(each block ends in a full flush, so every copy is the same bytes) inside a gzip frame.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from dataclasses import dataclass

import brotli


@dataclass(frozen=True)
class Drip:
    """A body that starts with ``first``, then sends ``piece`` every ``every`` s, forever."""

    first: bytes = b""
    piece: bytes = b" "
    every: float = 1.0


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes | Drip = b""
    headers: tuple[tuple[str, str], ...] = ()
    templated: bool = False  # "{base}" / "{other}" in the body become addresses

    @classmethod
    def html(cls, text: str, *headers: tuple[str, str]) -> Answer:
        content_type = ("content-type", "text/html; charset=utf-8")
        return cls(200, text.encode(), (content_type, *headers), templated=True)

    @classmethod
    def text(cls, text: str, content_type: str = "text/plain") -> Answer:
        return cls(200, text.encode(), (("content-type", content_type),), templated=True)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Answer:
        return cls(status, b"", (("location", location),))


Routes = dict[str, Answer]
NOT_FOUND = Answer(404, b"not found", (("content-type", "text/plain"),))


BOMB_BYTES = 1 << 30  # what a bomb inflates to: 1 GiB
_BLOCK = (b"<p>" + b"a" * 1016 + b"</p>\n") * 1024  # 1 MiB of HTML


@functools.cache
def bomb(coding: str, size: int = BOMB_BYTES) -> bytes:
    """``size`` bytes of HTML compressed with ``coding``: br, gzip, deflate or "gzip, gzip"."""
    if coding == "br":
        compressor = brotli.Compressor(quality=5)
        parts = [compressor.process(_BLOCK) for _ in range(size // len(_BLOCK))]
        return b"".join([*parts, compressor.finish()])
    if coding == "gzip, gzip":  # gzip applied twice: the outer layer shrinks the inner a lot
        return gzip.compress(bomb("gzip", size), compresslevel=9)
    if coding == "deflate":
        header = b"\x78\x9c"  # zlib's wrapper, as RFC 9110 means by deflate
        trailer = struct.pack(">I", _adler32_of_blocks(size // len(_BLOCK)))
        return header + _raw_deflate(size // len(_BLOCK)) + trailer
    if coding == "gzip":
        count = size // len(_BLOCK)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        crc = 0
        for _ in range(count):
            crc = zlib.crc32(_BLOCK, crc)
        trailer = struct.pack("<II", crc, (count * len(_BLOCK)) & 0xFFFFFFFF)
        return header + _raw_deflate(count) + trailer
    raise ValueError(f"no bomb for {coding!r}")


@functools.cache
def sitemap_bomb_br(size: int = BOMB_BYTES) -> bytes:
    """A sitemap that is well-formed as far as it goes, inflating (br) to ``size`` bytes."""
    compressor = brotli.Compressor(quality=5)
    parts = [compressor.process(b'<?xml version="1.0"?><urlset><url><loc>')]
    spaces = b" " * len(_BLOCK)
    parts += [compressor.process(spaces) for _ in range(size // len(spaces))]
    return b"".join([*parts, compressor.finish()])


def _raw_deflate(count: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    compressor.compress(_BLOCK)
    compressor.flush(zlib.Z_FULL_FLUSH)  # from here on, every block compresses the same
    compressor.compress(_BLOCK)
    block = compressor.flush(zlib.Z_FULL_FLUSH)
    return block * count + compressor.flush()


def _adler32_of_blocks(count: int) -> int:
    value = 1
    for _ in range(count):
        value = zlib.adler32(_BLOCK, value)
    return value


def wildcard_robots(size: int, *, disallow_prefix: str = "/docs/private") -> str:
    """A robots.txt of ``size`` bytes of wildcard rules (each costs protego a regex match)."""
    lines = ["User-agent: *", f"Disallow: {disallow_prefix}"]
    total = 0
    n = 0
    while total < size:
        line = f"Disallow: /*/nothing-{n}/*.html$"
        lines.append(line)
        total += len(line) + 1
        n += 1
    return "\n".join(lines) + "\n"


def urlset(locs: list[str]) -> bytes:
    entries = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    ).encode()


def sitemap_index(locs: list[str]) -> bytes:
    entries = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}'
        "</sitemapindex>"
    ).encode()


@functools.cache
def duplicate_sitemap_gz(loc: str, copies: int) -> bytes:
    """A ``.xml.gz`` sitemap listing ``loc`` ``copies`` times (a flood of one URL)."""
    entry = f"<url><loc>{loc}</loc></url>".encode()
    head = b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(head)]
    batch = entry * 10_000
    parts += [compressor.compress(batch) for _ in range(copies // 10_000)]
    parts += [compressor.compress(b"</urlset>"), compressor.flush()]
    return b"".join(parts)
