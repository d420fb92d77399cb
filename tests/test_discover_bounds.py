"""Discovery's bounds, in virtual time (autojump_clock) on a mock site: the sources deadline,
sitemaps read at once but delivered in order, seeds de-duplicated before they are queued,
one robots.txt check per URL, and no end while a page is being handled (issue 25, item 9).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import msgspec
import protego
import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from crawl4ai_llm_docs.config_schema import AppConfig
from crawl4ai_llm_docs.crawl.links import page_links
from crawl4ai_llm_docs.discover.engine import Discovery
from crawl4ai_llm_docs.discover.sitemap_xml import MAX_URLS_PER_FILE
from crawl4ai_llm_docs.discover.sitemaps import SitemapUrl, read_sitemaps
from crawl4ai_llm_docs.fetch.guard import Resolver
from crawl4ai_llm_docs.models import PageReport, UrlEntry
from crawl4ai_llm_docs.testing.hostile.payloads import sitemap_index, urlset

ROOT = "https://docs.x.org/docs/"
Handler = Callable[[httpx.Request], httpx.Response]


class _Public(Resolver):
    """docs.x.org is a public address; nothing is looked up."""

    async def addresses(self, host: str) -> tuple[str, ...]:
        return ("93.184.216.34",)


class _Slow(httpx.AsyncByteStream):
    """A body: ``first`` after ``delay`` seconds, then (``drip``) a byte a second forever."""

    def __init__(self, first: bytes, *, delay: float = 0.0, drip: bool = False) -> None:
        self.first, self.delay, self.drip = first, delay, drip

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await trio.sleep(self.delay)
        yield self.first
        while self.drip:
            await trio.sleep(1)
            yield b" "


def _html(*links: str) -> httpx.Response:
    anchors = "".join(f'<a href="{link}">{link}</a>' for link in links)
    body = f"<html><body><main><p>text</p>{anchors}</main></body></html>"
    return httpx.Response(200, text=body, headers={"content-type": "text/html"})


def _config(**discover: object) -> AppConfig:
    return msgspec.convert(
        {"crawl": {"mode": "http", "retries": 0, "page_timeout": 30}, "discover": discover},
        AppConfig,
    )


async def _discover(
    handler: Handler, config: AppConfig, *, prepare: Callable[[Discovery], None] | None = None
) -> tuple[list[str], Discovery]:
    """Run discovery with a one-page-at-a-time crawler; the URLs emitted, in order."""
    emitted: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        discovery = Discovery(
            [ROOT], config.discover, config.crawl, client=client, resolver=_Public()
        )
        if prepare is not None:
            prepare(discovery)
        send, receive = trio.open_memory_channel[UrlEntry](0)

        async def crawl() -> None:
            async with receive:
                async for entry in receive:
                    emitted.append(entry.url)
                    response = await client.get(entry.url)
                    await discovery.submit(
                        PageReport(
                            index=entry.index,
                            url=entry.url,
                            final_url=entry.url,
                            status=response.status_code,
                            error=None if response.status_code == 200 else "HTTP 404",
                            links=page_links(response.text, entry.url),
                        )
                    )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(discovery.run, send)
            nursery.start_soon(crawl)
    return emitted, discovery


def _site(pages: dict[str, httpx.Response | Callable[[], httpx.Response]]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        found = pages.get(request.url.path)
        if found is None:
            return httpx.Response(404)
        return found() if callable(found) else found

    return handler


async def test_discovery_does_not_end_while_the_root_is_handled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The root's report is handled (its llms.txt and sitemaps read) while nothing else is
    queued or in flight; a wake-up then must not end discovery with one page."""
    handler = _site({"/docs/": _html(), "/docs/b.html": _html()})

    def slow_sources(discovery: Discovery) -> None:
        async def read(client: httpx.AsyncClient) -> None:
            discovery._changed.set()  # what any other page's report would do
            await trio.sleep(5)  # the sources take a while
            await discovery.offer("https://docs.x.org/docs/b.html", depth=1, via="llms.txt")

        discovery.lists.read = read  # type: ignore[method-assign]

    emitted, _ = await _discover(handler, _config(), prepare=slow_sources)
    assert emitted == [ROOT, "https://docs.x.org/docs/b.html"]


def _dripping_sitemaps(count: int) -> Handler:
    robots = "User-agent: *\n" + "".join(
        f"Sitemap: https://docs.x.org/s{n}.xml\n" for n in range(count)
    )
    pages: dict[str, httpx.Response | Callable[[], httpx.Response]] = {
        "/robots.txt": httpx.Response(200, text=robots),
        "/docs/": _html(),
    }
    for n in range(count):
        head = urlset([f"https://docs.x.org/docs/sm-{n}.html"]).removesuffix(b"</urlset>")
        pages[f"/s{n}.xml"] = lambda head=head: httpx.Response(200, stream=_Slow(head, drip=True))
        pages[f"/docs/sm-{n}.html"] = _html()
    return _site(pages)


async def test_sitemaps_that_never_end_are_read_together_until_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture_logs() as logs:
        started = trio.current_time()
        emitted, _ = await _discover(_dripping_sitemaps(3), _config(sources_timeout=10))
        took = trio.current_time() - started
    # All three at once, cut at the deadline (one after another, 60 s each, it was 180 s).
    assert 10 <= took < 11
    assert emitted == [ROOT] + [f"https://docs.x.org/docs/sm-{n}.html" for n in range(3)]
    messages = " ".join(str(event.get("message")) for event in logs)
    assert "discover.sources_timeout" in messages or "timed out after 10 s" in messages


async def test_the_default_deadline_is_thirty_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = trio.current_time()
    await _discover(_dripping_sitemaps(2), _config())
    assert 30 <= trio.current_time() - started < 31


async def test_sitemaps_arrive_in_any_order_and_are_delivered_in_theirs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    children = [f"https://docs.x.org/c{n}.xml" for n in range(4)]
    pages: dict[str, httpx.Response | Callable[[], httpx.Response]] = {
        "/sitemap.xml": httpx.Response(200, content=sitemap_index(children)),
        "/docs/": _html(),
    }
    for n in range(4):
        body = urlset([f"https://docs.x.org/docs/c{n}-{i}.html" for i in range(3)])
        delay = 4 - n  # the first child arrives last
        pages[f"/c{n}.xml"] = lambda body=body, delay=delay: httpx.Response(
            200, stream=_Slow(body, delay=delay)
        )
        for i in range(3):
            pages[f"/docs/c{n}-{i}.html"] = _html()
    started = trio.current_time()
    emitted, _ = await _discover(_site(pages), _config())
    sitemap_time = trio.current_time() - started
    expected = [f"https://docs.x.org/docs/c{n}-{i}.html" for n in range(4) for i in range(3)]
    assert emitted == [ROOT, *expected]
    assert sitemap_time < 5  # at once (4 s, the slowest), not one after another (10 s)


async def test_a_sitemap_flood_of_one_url_queues_it_once() -> None:
    flood = urlset(["https://docs.x.org/docs/p.html"] * 20_000 + ["https://docs.x.org/docs/q.html"])
    handler = _site(
        {
            "/sitemap.xml": httpx.Response(200, content=flood),
            "/docs/": _html(),
            "/docs/p.html": _html(),
            "/docs/q.html": _html(),
        }
    )
    emitted, discovery = await _discover(handler, _config())
    assert emitted == [ROOT, "https://docs.x.org/docs/p.html", "https://docs.x.org/docs/q.html"]
    assert discovery.intake.seeds.total == 2


async def test_a_sitemap_stops_at_the_protocols_50000_urls() -> None:
    body = urlset([f"https://x.org/{n}" for n in range(MAX_URLS_PER_FILE + 10)])
    found: list[SitemapUrl] = []

    async def on_url(entry: SitemapUrl) -> None:
        found.append(entry)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with capture_logs() as logs:
            await read_sitemaps(
                client, ["https://x.org/sitemap.xml"], on_url, max_files=5, accept=lambda _: True
            )
    assert len(found) == MAX_URLS_PER_FILE
    assert found[-1].loc == f"https://x.org/{MAX_URLS_PER_FILE - 1}"
    assert any("more than 50000 URLs" in str(event.get("message")) for event in logs)


async def test_robots_txt_is_asked_once_per_url_not_once_per_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = [f"p{n}.html" for n in range(20)]
    pages: dict[str, httpx.Response | Callable[[], httpx.Response]] = {
        "/robots.txt": httpx.Response(200, text="User-agent: *\nDisallow: /*/secret-*\n"),
        "/docs/": _html(*names),
    }
    pages |= {f"/docs/{name}": _html(*names, "secret-1.html") for name in names}
    calls: list[str] = []
    can_fetch = protego.Protego.can_fetch

    def counted(self: protego.Protego, url: str, user_agent: str) -> bool:
        calls.append(url)
        return bool(can_fetch(self, url, user_agent))

    monkeypatch.setattr(protego.Protego, "can_fetch", counted)
    emitted, discovery = await _discover(_site(pages), _config(sources=["links"]))
    assert len(emitted) == 21
    assert discovery.ledger.left_out == {"robots": 1}
    # Every page links to all 21 URLs (441 links): each URL is checked once.
    assert len(calls) == len(set(calls)) <= 22
