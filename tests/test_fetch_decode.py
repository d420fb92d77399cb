"""Bounded decoding (fetch/decode.py): the real compressors (zlib, gzip, brotli) are the
oracle for what comes out; the limit holds however the input is cut; codings we cannot
bound are refused with a reason; and fetch() refuses a bomb without inflating it."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import brotli
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.fetch.decode import STEP, BodyDecoder, BodyRefused, content_codings
from crawl4ai_llm_docs.fetch.http import FetchFailure, fetch
from crawl4ai_llm_docs.testing.hostile.payloads import bomb

COMPRESS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # the zlib wrapper RFC 9110 means
    "br": brotli.compress,
    "identity": lambda data: data,
}
# Brotli grows its output buffer in steps past the limit it is given; never by much.
MAX_PIECE = 2 * STEP


def decode_all(coding: str | None, data: bytes, cuts: list[int], *, limit: int) -> list[bytes]:
    decoder = BodyDecoder(coding, limit=limit)
    pieces: list[bytes] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        pieces += decoder.feed(data[start:cut])
        start = max(start, cut)
    return pieces + list(decoder.finish())


@settings(max_examples=120, deadline=None)
@given(
    coding=st.sampled_from(sorted(COMPRESS)),
    data=st.one_of(
        st.binary(max_size=5000),
        st.builds(
            lambda unit, n: unit * n, st.binary(min_size=1, max_size=20), st.integers(0, 40_000)
        ),
    ),
    cuts=st.lists(st.integers(0, 300_000), max_size=8),
)
def test_what_comes_out_is_what_went_in_in_bounded_pieces(
    coding: str, data: bytes, cuts: list[int]
) -> None:
    encoded = COMPRESS[coding](data)
    pieces = decode_all(coding, encoded, [c % (len(encoded) + 1) for c in cuts], limit=10**9)
    assert b"".join(pieces) == data
    assert all(len(piece) <= MAX_PIECE for piece in pieces)


def test_raw_deflate_without_the_zlib_header_is_accepted_too() -> None:
    data = b"raw deflate, as some servers send it " * 1000
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    encoded = raw.compress(data) + raw.flush()
    assert b"".join(decode_all("deflate", encoded, [1, 7], limit=10**9)) == data


@pytest.mark.parametrize("coding", ["br", "gzip", "deflate"])
def test_a_bomb_stops_at_the_limit_having_inflated_one_step_past_it(coding: str) -> None:
    payload = bomb(coding, 64 << 20)  # 64 MiB inflated; a few KB to 150 KB sent
    decoder = BodyDecoder(coding, limit=1_000_000)
    pieces: list[bytes] = []

    def feed_all() -> None:
        for start in range(0, len(payload), 16_384):
            pieces.extend(decoder.feed(payload[start : start + 16_384]))

    with pytest.raises(BodyRefused) as refused:
        feed_all()
    assert refused.value.too_large
    assert all(len(piece) <= MAX_PIECE for piece in pieces)
    kept = sum(map(len, pieces))
    assert kept == decoder.total == 1_000_000  # what fits is handed out, nothing more


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("gzip, gzip", "Content-Encoding 'gzip, gzip' refused: more than one coding"),
        ("br,gzip", "Content-Encoding 'br,gzip' refused: more than one coding"),
        ("compress", "Content-Encoding 'compress' is not supported (gzip, deflate and br are)"),
        ("zstd", "Content-Encoding 'zstd' is not supported"),
        ("x-unknown", "Content-Encoding 'x-unknown' is not supported"),
    ],
)
def test_stacked_and_unknown_codings_are_refused_with_a_reason(header: str, reason: str) -> None:
    with pytest.raises(BodyRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        BodyDecoder(header, limit=1000)


def test_identity_and_case_are_no_coding() -> None:
    assert content_codings("identity") == []
    assert content_codings(" GZIP ") == ["gzip"]
    assert content_codings("gzip, identity") == ["gzip"]
    assert BodyDecoder("Identity", limit=10).coding == ""


def test_broken_compressed_data_is_refused_not_passed_through() -> None:
    with pytest.raises(BodyRefused, match="broken gzip data") as refused:
        decode_all("gzip", b"\x1f\x8b\x08\x00garbage-garbage-garbage", [], limit=1000)
    assert not refused.value.too_large
    with pytest.raises(BodyRefused, match="broken br data"):
        decode_all("br", b"\xff" * 64, [], limit=1000)


# ---------------------------------------------------------------- through fetch()


class _Stream(httpx.AsyncByteStream):
    """A response body arriving in pieces, as from the network (not read into memory)."""

    def __init__(self, data: bytes, piece: int = 8192) -> None:
        self._data = data
        self._piece = piece
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), self._piece):
            self.sent = start + self._piece
            yield self._data[start : start + self._piece]


async def _fetch(coding: str, body: bytes, max_bytes: int) -> tuple[object, _Stream]:
    stream = _Stream(body)

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/html", "content-encoding": coding}
        return httpx.Response(200, headers=headers, stream=stream)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        try:
            return await fetch(client, "http://127.0.0.1/x.html", max_bytes=max_bytes), stream
        except FetchFailure as failure:
            return failure, stream


async def test_fetch_refuses_a_bomb_while_it_arrives() -> None:
    result, stream = await _fetch("gzip", bomb("gzip", 256 << 20), max_bytes=2_000_000)
    assert isinstance(result, FetchFailure)
    assert result.reason == "page larger than max_page_bytes (2000000 bytes)"
    assert stream.sent < 64 * 1024  # stopped a few pieces in, not at the end


async def test_fetch_decodes_an_ordinary_compressed_page() -> None:
    html = "<html><body><p>Bonjour, café</p></body></html>".encode()
    for coding in ("gzip", "deflate", "br"):
        result, _ = await _fetch(coding, COMPRESS[coding](html), max_bytes=10_000)
        assert not isinstance(result, FetchFailure)
        assert "Bonjour, café" in result.html  # type: ignore[attr-defined]


async def test_fetch_names_a_stacked_coding() -> None:
    result, stream = await _fetch("gzip, gzip", bomb("gzip, gzip", 64 << 20), max_bytes=10_000)
    assert isinstance(result, FetchFailure)
    assert "Content-Encoding 'gzip, gzip' refused" in result.reason
    assert stream.sent == 0  # refused on its headers: not a byte read
