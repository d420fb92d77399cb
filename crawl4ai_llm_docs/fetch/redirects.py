"""Redirects followed one hop at a time, each hop decided before it is requested.

httpx would follow a redirect wherever it points. Here every hop is a new decision, in one
place (``follow``): the scheme must be http(s), the caller's check (discovery: scope and
robots.txt of the target) must pass, and the target's addresses must be allowed by the
route's ``AddressGuard``. Each hop is a request of its own, so the site client's auth
(``credentials.OriginAuth``) gives it the credentials of its own origin: a hop to another
origin carries none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx

from crawl4ai_llm_docs.errors import CrawlError
from crawl4ai_llm_docs.fetch.guard import AddressGuard, AddressRefused, Resolver, guarding

MAX_REDIRECTS = 10
TOO_MANY_REDIRECTS = f"too many redirects (more than {MAX_REDIRECTS}; a redirect loop?)"
SCHEMES = ("http", "https")

# A redirect target -> why it may not be followed (None: it may). Discovery passes one.
HopCheck = Callable[[str], Awaitable[str | None]]


class HopRefused(CrawlError):
    """A redirect (or the URL itself) may not be followed: the reason and where it pointed."""

    def __init__(self, reason: str, *, target: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.target = target
        self.status = status  # the redirect's status (None: the first URL was refused)


class Route:
    """What one fetch may reach: the addresses (``guard``), and per hop the caller's check."""

    def __init__(
        self,
        guard: AddressGuard | None = None,
        resolver: Resolver | None = None,
        check_hop: HopCheck | None = None,
    ) -> None:
        self.guard = guard
        self.resolver = resolver or Resolver()
        self.check_hop = check_hop

    async def refusal(self, url: str, *, hop: int) -> str | None:
        """Why ``url`` may not be requested as hop ``hop`` (0: the URL asked for)."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in SCHEMES:
            return "unsupported URL scheme (only http and https are fetched)"
        if hop and self.check_hop is not None and (reason := await self.check_hop(url)):
            return reason
        if self.guard is None:
            return None
        host = parts.hostname or ""
        return self.guard.refusal(host, await self.resolver.addresses(host))


OPEN_ROUTE = Route()  # any http(s) address: for callers that chose the URLs themselves


def refused_message(url: str, reason: str, *, hop: int) -> str:
    return f"redirect to {url} refused: {reason}" if hop else f"{url} refused: {reason}"


@asynccontextmanager
async def follow(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    route: Route = OPEN_ROUTE,
    method: str = "GET",
) -> AsyncIterator[httpx.Response]:
    """GET (or ``method``) ``url`` following redirects hop by hop; yield the final response,
    body unread.

    Raises ``HopRefused`` for a hop that may not be followed (or a redirect loop), and
    httpx's errors for everything else.
    """
    current = url
    status: int | None = None
    for hop in range(MAX_REDIRECTS + 1):
        if (reason := await route.refusal(current, hop=hop)) is not None:
            message = refused_message(current, reason, hop=hop)
            raise HopRefused(message, target=current, status=status)
        # A request per hop: the client's auth adds this hop's own origin's credentials.
        request = client.build_request(method, current, headers=headers)
        try:
            with guarding(route.guard):
                response = await client.send(request, stream=True, follow_redirects=False)
        except AddressRefused as exc:
            message = refused_message(current, exc.reason, hop=hop)
            raise HopRefused(message, target=current, status=status) from None
        next_request = response.next_request
        if next_request is None:  # not a redirect (or one without a Location)
            try:
                yield response
            finally:
                await response.aclose()
            return
        status = response.status_code
        await response.aclose()
        current = str(next_request.url)
    raise HopRefused(TOO_MANY_REDIRECTS, target=current, status=status)
