"""Bounded decoding of what a site sends: Content-Encoding undone in small steps, sizes capped.

A body is read as raw bytes and inflated here, at most ``STEP`` bytes of output at a time,
and the running total is checked after every step: a few kilobytes that inflate to
gigabytes (a "decompression bomb") stop at the limit, having cost ``STEP`` bytes more than
it. httpx's own decoders inflate each network chunk whole before anyone can count, which is
why a 3 KB page sent with ``Content-Encoding: br`` once took a run to 4.2 GB.

Only one coding is accepted: ``gzip, gzip`` (a coding applied twice, which no server needs)
and codings we cannot bound (``compress``, ``zstd``, anything unknown) are refused with a
reason, never passed through undecoded.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import brotli
import httpx

STEP = 64 * 1024  # bytes of output per decoding step
ACCEPT_ENCODING = "gzip, deflate, br"  # what we ask for: exactly what we can bound
_GZIP = ("gzip", "x-gzip")


def size_text(size: int) -> str:
    """``52428800`` -> "50 MiB"; sizes that are not whole MiB in bytes."""
    mib = 1024 * 1024
    return f"{size // mib} MiB" if size >= mib and size % mib == 0 else f"{size} bytes"


def body_decoder(response: httpx.Response, *, limit: int) -> BodyDecoder:
    """The decoder for ``response``'s raw body (``raw_body``)."""
    if response.is_stream_consumed:
        return BodyDecoder(None, limit=limit)  # in memory already, decoded by httpx
    return BodyDecoder(response.headers.get("content-encoding"), limit=limit)


async def raw_body(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it came off the wire. A response built in memory (a mock transport in
    tests) was read, and decoded, when it was made: its content is all there is."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for raw in response.aiter_raw():
        yield raw


class BodyRefused(Exception):
    """The body cannot be used: its encoding is refused, it is broken, or it is too large."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def content_codings(header: str | None) -> list[str]:
    """The codings a Content-Encoding header lists, in the order they were applied."""
    if not header:
        return []
    names = (name.strip().lower() for name in header.split(","))
    return [name for name in names if name and name != "identity"]


class BodyDecoder:
    """Undoes one Content-Encoding in bounded steps and keeps the decoded total under ``limit``.

    ``feed`` raw bytes as they arrive and ``finish`` at the end; both yield decoded pieces.
    Past ``limit`` it yields what still fits, then raises ``BodyRefused(too_large=True)``, so
    a caller that wants a truncated text (robots.txt) has exactly ``limit`` bytes.
    """

    def __init__(self, content_encoding: str | None, *, limit: int) -> None:
        codings = content_codings(content_encoding)
        if len(codings) > 1:
            raise BodyRefused(
                f"Content-Encoding {content_encoding!r} refused: more than one coding "
                "(a decompression bomb?)"
            )
        self.coding = codings[0] if codings else ""
        if self.coding and self.coding not in (*_GZIP, "deflate", "br"):
            raise BodyRefused(
                f"Content-Encoding {self.coding!r} is not supported (gzip, deflate and br are)"
            )
        self.limit = limit
        self.total = 0  # decoded bytes so far
        self._zlib: zlib._Decompress | None = None
        self._brotli: brotli.Decompressor | None = None
        self._deflate_started = False
        self._head = b""  # deflate: the first byte, until the second arrives
        if self.coding in _GZIP:
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._zlib = zlib.decompressobj()  # RFC 9110's zlib wrapper; raw deflate below
        elif self.coding == "br":
            self._brotli = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._zlib is not None:
            pieces = self._inflate(data)
        elif self._brotli is not None:
            pieces = self._unbrotli(data)
        else:
            pieces = (data[at : at + STEP] for at in range(0, len(data), STEP))
        for piece in pieces:
            yield from self._count(piece)

    def finish(self) -> Iterator[bytes]:
        """What the decoder still holds once the raw body has ended."""
        if self._brotli is not None:
            while not self._brotli.is_finished():
                piece = self._call_brotli(b"")
                if not piece:
                    break  # a truncated stream: keep what was decoded
                yield from self._count(piece)
        elif self._zlib is not None:
            # Output still held after the input ended comes out in steps too.
            for piece in self._drain(b""):
                yield from self._count(piece)

    # ---------------------------------------------------------------- codings

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        if self.coding == "deflate" and not self._deflate_started:
            # zlib's wrapper or raw deflate (many servers send raw, as browsers accept)?
            # Its first two bytes say; they may arrive one at a time.
            self._head += data
            if len(self._head) < 2:
                return
            self._deflate_started = True
            data, self._head = self._head, b""
            cmf, flg = data[0], data[1]
            if not (cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf * 256 + flg) % 31 == 0):
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        yield from self._drain(data)

    def _drain(self, data: bytes) -> Iterator[bytes]:
        assert self._zlib is not None
        pending = data
        while True:
            try:
                piece = self._zlib.decompress(pending, STEP)
            except zlib.error as exc:
                raise BodyRefused(f"broken {self.coding} data ({exc})") from None
            if piece:
                yield piece
            pending = self._zlib.unconsumed_tail
            # A full step may leave output inside zlib even when all input was taken.
            if not pending and len(piece) < STEP:
                return

    def _unbrotli(self, data: bytes) -> Iterator[bytes]:
        assert self._brotli is not None
        yield self._call_brotli(data)
        while not self._brotli.can_accept_more_data():
            yield self._call_brotli(b"")

    def _call_brotli(self, data: bytes) -> bytes:
        assert self._brotli is not None
        try:
            return bytes(self._brotli.process(data, output_buffer_limit=STEP))
        except brotli.error as exc:
            raise BodyRefused(f"broken br data ({exc})") from None

    def _count(self, piece: bytes) -> Iterator[bytes]:
        room = self.limit - self.total
        if len(piece) > room:
            self.total = self.limit
            if room > 0:
                yield piece[:room]
            raise BodyRefused(f"larger than {self.limit} bytes decoded", too_large=True)
        self.total += len(piece)
        if piece:
            yield piece
