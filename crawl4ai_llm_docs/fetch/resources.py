"""Site files that are not pages (robots.txt, sitemaps, llms.txt), read through the run's client.

Pages go through ``http.fetch``; these files use the same pooled client, the same hop-by-hop
redirects (``route``) and the same failure messages, and are read as bounded streams of
decoded bytes: a sitemap is parsed while it arrives and never held whole, a text file is cut
at its limit, and a compressed body never inflates past that limit.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import httpx
from msgspec import Struct

from crawl4ai_llm_docs.fetch.decode import BodyRefused, body_decoder, raw_body, size_text
from crawl4ai_llm_docs.fetch.http import FetchFailure, check_status, transport_failure
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, HopRefused, Route, follow

ACCEPT = "text/plain, application/xml, text/xml, text/markdown, */*;q=0.5"


class Resource(Struct, frozen=True, kw_only=True):
    final_url: str
    status: int
    content_type: str  # lower-case media type without parameters, "" when not sent
    encoding: str  # e.g. "gzip" when the body itself is gzip (not transfer compression)


@asynccontextmanager
async def open_resource(
    client: httpx.AsyncClient, url: str, *, route: Route = OPEN_ROUTE
) -> AsyncIterator[tuple[Resource, httpx.Response]]:
    """GET ``url``; yield what it is and the response to read (with ``pieces``)."""
    try:
        async with follow(client, url, headers={"accept": ACCEPT}, route=route) as response:
            check_status(response)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            resource = Resource(
                final_url=str(response.url),
                status=response.status_code,
                content_type=content_type,
                encoding="gzip"
                if content_type in ("application/gzip", "application/x-gzip")
                else "",
            )
            yield resource, response
    except HopRefused as exc:
        raise FetchFailure(exc.reason, status=exc.status, final_url=exc.target) from None
    except httpx.InvalidURL as exc:
        raise FetchFailure(f"invalid URL: {exc}") from None
    except httpx.TransportError as exc:
        raise transport_failure(exc, url) from None


async def pieces(response: httpx.Response, *, limit: int) -> AsyncGenerator[bytes, None]:
    """The decoded body in bounded pieces; ``FetchFailure`` once it passes ``limit``."""
    try:
        decoder = body_decoder(response, limit=limit)
        async for raw in raw_body(response):
            for piece in decoder.feed(raw):
                yield piece
        for piece in decoder.finish():
            yield piece
    except BodyRefused as exc:
        reason = f"larger than {size_text(limit)} uncompressed" if exc.too_large else exc.reason
        raise FetchFailure(
            reason, status=response.status_code, final_url=str(response.url)
        ) from None


async def read_text(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, route: Route = OPEN_ROUTE
) -> tuple[str, str]:
    """(final URL, text) of a small text file; the part past ``max_bytes`` is ignored."""
    async with open_resource(client, url, route=route) as (resource, response):
        parts: list[bytes] = []
        size = 0
        try:
            decoder = body_decoder(response, limit=max_bytes)
            async for raw in raw_body(response):  # closed with the response
                for piece in decoder.feed(raw):
                    parts.append(piece)
                    size += len(piece)
                if size >= max_bytes:
                    break
            parts.extend(decoder.finish())
        except BodyRefused as exc:
            if not exc.too_large:  # a refused or broken encoding: nothing usable
                raise FetchFailure(exc.reason, status=resource.status, final_url=url) from None
        return resource.final_url, text_of(b"".join(parts), response.charset_encoding)


def text_of(body: bytes, charset: str | None) -> str:
    """``body`` as text in its declared charset (UTF-8 when none, or an unknown one)."""
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, errors="replace")
