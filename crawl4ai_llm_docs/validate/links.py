"""``validate --links``: does every link of an llms.txt answer 200, and may an agent fetch it?

Bounded and polite: ``crawl.max_concurrent`` links at a time through the run's pooled client,
robots.txt read once per host and honoured for ``crawl.user_agent`` (a disallowed link is a
fault and is never requested), its ``Crawl-delay`` kept, every redirect hop decided by the
``route`` (its address guard: an llms.txt fetched from the Internet cannot make us probe a
private or link-local address), and a ``HEAD`` first: only a link
that refuses it (405, 403, 404...) is asked again with ``GET`` (some servers refuse HEAD),
and that body is never read. Transient answers (429, 503, timeouts) are tried again up to
``crawl.retries`` times, after the server's ``Retry-After`` when it sends one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import httpx
import trio
from msgspec import Struct

from crawl4ai_llm_docs.config_schema import CrawlConfig
from crawl4ai_llm_docs.discover.robots import Robots
from crawl4ai_llm_docs.fetch.http import (
    TRANSIENT_STATUSES,
    FetchFailure,
    check_status,
    parse_retry_after,
    transport_failure,
)
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, HopRefused, Route, follow
from crawl4ai_llm_docs.fetch.retry import RetryPolicy

OK = 200


class LinkResult(Struct, frozen=True, kw_only=True):
    url: str
    code: str = ""  # "" when the link answered 200; else link-status, link-robots, link-failed
    reason: str = ""


async def check_links(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    *,
    crawl: CrawlConfig,
    respect_robots: bool = True,
    on_result: Callable[[LinkResult], None] | None = None,
    rng: random.Random | None = None,
    route: Route = OPEN_ROUTE,
) -> dict[str, LinkResult]:
    """The result of every distinct URL in ``urls`` (fragments dropped), keyed by that URL."""
    distinct = list(dict.fromkeys(url.split("#", 1)[0] for url in urls))
    robots = Robots(client, user_agent=crawl.user_agent, enabled=respect_robots, route=route)
    checker = _Checker(client, robots, crawl, rng or random.Random(), route)
    results: dict[str, LinkResult] = {}
    send, receive = trio.open_memory_channel[str](0)

    async def work(receive: trio.MemoryReceiveChannel[str]) -> None:
        async with receive:
            async for url in receive:
                result = await checker.check(url)
                results[url] = result
                if on_result is not None:
                    on_result(result)

    async with trio.open_nursery() as nursery:
        for _ in range(min(crawl.max_concurrent, len(distinct))):
            nursery.start_soon(work, receive.clone())
        receive.close()
        async with send:
            for url in distinct:
                await send.send(url)
    return results


class _Checker:
    def __init__(
        self,
        client: httpx.AsyncClient,
        robots: Robots,
        crawl: CrawlConfig,
        rng: random.Random,
        route: Route,
    ) -> None:
        self._client = client
        self._route = route
        self._robots = robots
        self._crawl = crawl
        self._rng = rng
        self._policy = RetryPolicy()

    async def check(self, url: str) -> LinkResult:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        rules = await self._robots.rules(origin)
        if rules.unreachable:
            return LinkResult(url=url, code="link-failed", reason=rules.unreachable)
        if not rules.allowed(url, self._robots.user_agent):
            why = f" ({rules.note})" if rules.note else ""
            return LinkResult(
                url=url,
                code="link-robots",
                reason=f"disallowed by {origin}/robots.txt for user agent "
                f"{self._robots.user_agent!r}{why}: agents that honour robots.txt will not "
                "read it; allow it there or drop the link",
            )
        failures = 0
        while True:
            await self._robots.pace(origin)
            try:
                with trio.fail_after(self._crawl.page_timeout):
                    await self._probe(url)
                return LinkResult(url=url)
            except trio.TooSlowError:
                failure = FetchFailure(
                    f"timed out after {self._crawl.page_timeout:g} s", transient=True
                )
            except FetchFailure as caught:
                failure = caught
            failures += 1
            if not failure.transient or failures > self._crawl.retries:
                code = "link-status" if failure.status is not None else "link-failed"
                return LinkResult(url=url, code=code, reason=failure.reason)
            await trio.sleep(self._policy.delay(failures, failure.retry_after, self._rng))

    async def _probe(self, url: str) -> None:
        """Return when ``url`` answers 200 (after redirects); FetchFailure otherwise."""
        try:
            # Redirects followed hop by hop, each decided by the route: a moved link that lands
            # on a page is a good link.
            async with follow(self._client, url, route=self._route, method="HEAD") as head:
                if head.status_code == OK:
                    return
                if head.status_code in TRANSIENT_STATUSES:
                    check_status(head)  # "slow down" or "down": wait and ask again, not GET now
            async with follow(self._client, url, route=self._route) as response:
                check_status(response)
                if response.status_code != OK:  # another 2xx: say which
                    raise FetchFailure(
                        f"HTTP {response.status_code}, not 200",
                        status=response.status_code,
                        retry_after=parse_retry_after(response.headers.get("retry-after")),
                    )
        except HopRefused as exc:
            raise FetchFailure(exc.reason) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise FetchFailure(f"cannot be fetched: {exc}") from None
        except httpx.TransportError as exc:
            raise transport_failure(exc, url) from None
