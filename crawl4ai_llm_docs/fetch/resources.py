"""Site files that are not pages (robots.txt, sitemaps, llms.txt), read through the run's client.

Pages go through ``crawl.http.fetch``; these files use the same pooled client and the same
failure messages, but are read as a bounded stream of bytes: a sitemap is parsed while it
arrives and never held whole, and a body over the limit is cut off, not buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from msgspec import Struct

from crawl4ai_llm_docs.fetch.http import FetchFailure, check_status, transport_failure

ACCEPT = "text/plain, application/xml, text/xml, text/markdown, */*;q=0.5"


class Resource(Struct, frozen=True, kw_only=True):
    final_url: str
    status: int
    content_type: str  # lower-case media type without parameters, "" when not sent
    encoding: str  # e.g. "gzip" when the body itself is gzip (not transfer compression)


@asynccontextmanager
async def open_resource(
    client: httpx.AsyncClient, url: str
) -> AsyncIterator[tuple[Resource, httpx.Response]]:
    """GET ``url``; yield what it is and the response to stream; FetchFailure on failure."""
    try:
        async with client.stream("GET", url, headers={"accept": ACCEPT}) as response:
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
    except httpx.TooManyRedirects:
        raise FetchFailure("too many redirects") from None
    except httpx.InvalidURL as exc:
        raise FetchFailure(f"invalid URL: {exc}") from None
    except httpx.TransportError as exc:
        raise transport_failure(exc, url) from None


async def read_text(client: httpx.AsyncClient, url: str, *, max_bytes: int) -> tuple[str, str]:
    """(final URL, text) of a small text file; the part past ``max_bytes`` is ignored."""
    async with open_resource(client, url) as (resource, response):
        parts: list[bytes] = []
        size = 0
        async for part in response.aiter_bytes():
            parts.append(part)
            size += len(part)
            if size >= max_bytes:
                break
        body = b"".join(parts)[:max_bytes]
        return resource.final_url, body.decode(response.charset_encoding or "utf-8", "replace")
