"""Refresh state for discovery runs and sitemap lastmod, without the CLI."""

from __future__ import annotations

import functools
from pathlib import Path

import httpx
import msgspec
import trio

from crawl4ai_llm_docs.cache.page_state import EXTRACTION_VERSION, PageState, PageStateStore
from crawl4ai_llm_docs.crawl.links import page_links
from crawl4ai_llm_docs.crawl.refresh import stored_page, unchanged_by_lastmod, validators_for
from crawl4ai_llm_docs.discover.engine import Discovery
from crawl4ai_llm_docs.fetch.http import Validators
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, Route
from crawl4ai_llm_docs.models import Page, PageLinks, PageReport, UrlEntry
from crawl4ai_llm_docs.testing.site.discovery import LASTMOD
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, page_path, serve_site

URL = "https://docs.example.com/a"
LINKS = PageLinks(links=("https://docs.example.com/b",), canonical="https://docs.example.com/a")


def _page(markdown: str = "# Title\n\nText.\n") -> Page:
    return Page(
        index=0,
        url=URL,
        final_url=URL,
        title="Title",
        markdown=markdown,
        status=200,
        error=None,
        elapsed=0.1,
        bytes=100,
    )


def _state(**fields: object) -> PageState:
    base: dict[str, object] = {
        "url": URL,
        "final_url": URL,
        "title": "Title",
        "markdown": "Text.",
        "content_hash": "h",
        "fetched_at": "2026-01-01T00:00:00Z",
        "changed_at": "2026-01-01T00:00:00Z",
        "etag": '"v1"',
        "extraction": EXTRACTION_VERSION,  # made by this version of the extraction
    }
    base.update(fields)
    return msgspec.convert(base, PageState)


async def test_links_and_lastmod_are_kept_and_replayed(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    await store.record(
        _page(), None, etag='"v1"', last_modified=None, lastmod="2024-05-01", links=LINKS
    )
    stored = await store.get(URL)
    assert stored is not None
    assert stored.links == LINKS
    assert stored.lastmod == "2024-05-01"
    reused = await store.reuse(_page(markdown=""), stored, lastmod="2024-06-01")
    assert reused.markdown == stored.markdown
    after = await store.get(URL)
    assert after is not None
    assert after.links == LINKS  # a 304 keeps what discovery read last time
    assert after.lastmod == "2024-06-01"
    kept = await store.reuse(_page(markdown=""), after)  # no lastmod known this run
    assert kept.freshness == "unchanged"
    assert (await store.get(URL)) is not None
    assert (await store.get(URL)).lastmod == "2024-06-01"  # type: ignore[union-attr]
    # Fetched again without a sitemap lastmod: an old one must not vouch for the new text.
    await store.record(_page("# Title\n\nNew.\n"), after, etag='"v2"', last_modified=None)
    fresh = await store.get(URL)
    assert fresh is not None
    assert fresh.lastmod is None
    assert fresh.links is None


def test_an_entry_written_before_links_were_kept_still_reads(tmp_path: Path) -> None:
    old = (
        b'{"url":"https://docs.example.com/a","final_url":"https://docs.example.com/a",'
        b'"title":"T","markdown":"Text.","content_hash":"h","fetched_at":"x","changed_at":"x",'
        b'"etag":"\\"v1\\"","last_modified":null,"lastmod":null}'
    )
    state = msgspec.json.decode(old, type=PageState)
    assert state.links is None
    assert state.complete(discovering=False)
    assert not state.complete(discovering=True)


def test_which_stored_states_may_stand_for_a_page(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    full = PageStateStore(tmp_path, conditional=False)
    plain = _state()
    with_links = _state(links=LINKS)
    assert validators_for(store, None, discovering=False) is None
    assert validators_for(store, plain, discovering=False) == Validators(etag='"v1"')
    assert validators_for(full, plain, discovering=False) is None
    # A discovery run needs the links a 304 cannot carry: only a state that has them.
    assert validators_for(store, plain, discovering=True) is None
    assert validators_for(store, with_links, discovering=True) == Validators(etag='"v1"')
    assert validators_for(store, _state(etag=None), discovering=False) is None
    assert validators_for(store, _state(markdown=" "), discovering=False) is None

    entry = UrlEntry(index=0, url=URL, line=0, lastmod="2024-05-01")
    same = _state(lastmod="2024-05-01", links=LINKS)
    assert unchanged_by_lastmod(store, entry, same, discovering=True)
    assert not unchanged_by_lastmod(full, entry, same, discovering=True)
    assert not unchanged_by_lastmod(store, entry, _state(lastmod="2024-04-01"), discovering=False)
    assert not unchanged_by_lastmod(store, entry, _state(lastmod="2024-05-01"), discovering=True)
    assert unchanged_by_lastmod(store, entry, _state(lastmod="2024-05-01"), discovering=False)
    unknown = UrlEntry(index=0, url=URL, line=0)
    assert not unchanged_by_lastmod(store, unknown, _state(lastmod=None), discovering=False)
    assert not unchanged_by_lastmod(store, entry, None, discovering=False)

    page = stored_page(entry, same, final_url=URL, status=None, elapsed=0.0, mode="http")
    assert (page.title, page.markdown, page.status, page.ok) == ("Title", "", None, True)


async def test_pages_links_reach_first_still_carry_their_sitemap_lastmod(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    from crawl4ai_llm_docs.config_schema import AppConfig

    site: SiteHandle = await nursery.start(serve_site, SiteConfig(pages=5, sitemap=True))
    app = msgspec.convert(
        {"crawl": {"mode": "http", "retries": 0}, "output": {"cache_dir": str(tmp_path)}},
        AppConfig,
    )
    discovery = Discovery([site.url("/docs/")], app.discover, app.crawl, spill_dir=tmp_path)
    emitted: list[UrlEntry] = []
    send, receive = trio.open_memory_channel[UrlEntry](0)

    async def crawl() -> None:
        async with receive, httpx.AsyncClient() as client:
            async for entry in receive:
                emitted.append(entry)
                response = await client.get(entry.url)
                report = PageReport(
                    index=entry.index,
                    url=entry.url,
                    final_url=entry.url,
                    status=200,
                    error=None,
                    links=page_links(response.text, entry.url),
                )
                await discovery.submit(report)

    with trio.fail_after(60):
        async with trio.open_nursery() as inner:
            inner.start_soon(functools.partial(discovery.run, send))
            inner.start_soon(crawl)
    assert [entry.url for entry in emitted] == [site.url("/docs/")] + [
        site.url(page_path(i)) for i in range(5)
    ]
    # The root is emitted before the sitemap is read; every page after it has its lastmod.
    assert [entry.lastmod for entry in emitted] == ["", *[LASTMOD] * 5]
    assert not discovery.intake._lastmods  # handed out, not kept


class _Sink:
    """A stand-in for discovery: keeps every report, lists every page."""

    def __init__(self) -> None:
        self.reports: list[PageReport] = []

    async def submit(self, report: PageReport) -> tuple[bool, str]:
        self.reports.append(report)
        return True, ""

    def route(self, index: int) -> Route:
        return OPEN_ROUTE


async def _crawl(
    site: SiteHandle, store: PageStateStore, cache: Path, lastmod: str
) -> tuple[list[Page], _Sink]:
    from crawl4ai_llm_docs.config import CrawlConfig
    from crawl4ai_llm_docs.crawl.stage import run

    sink = _Sink()
    urls = [site.url(page_path(i)) for i in range(3)]
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    pages: list[Page] = []

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(urls):
                await send_urls.send(UrlEntry(index=index, url=url, line=0, lastmod=lastmod))

    stage = functools.partial(
        run,
        receive_urls,
        send_pages,
        config=CrawlConfig(mode="http", page_timeout=10.0),
        cache_dir=cache,
        page_states=store,
        discovery=sink,
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(stage)
            async with receive_pages:
                pages.extend([page async for page in receive_pages])
    return sorted(pages, key=lambda page: page.index), sink


async def test_the_crawl_stage_replays_stored_links_on_a_304_and_a_lastmod_match(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site: SiteHandle = await nursery.start(
        serve_site, SiteConfig(pages=3, sections=1, validators="both")
    )
    store = PageStateStore(tmp_path / "state")
    first, read = await _crawl(site, store, tmp_path, "2024-05-01")
    assert [page.freshness for page in first] == ["new"] * 3
    links = {report.url: report.links for report in read.reports}
    assert all(links.values())  # each generated page links to the others

    long_ago = "2000-01-01T00:00:00Z"
    for page in first:
        state = await store.get(page.url)
        assert state is not None
        await store.put(msgspec.structs.replace(state, fetched_at=long_ago))
    site.statuses.clear()
    same, by_lastmod = await _crawl(site, store, tmp_path, "2024-05-01")
    assert sum(site.statuses.values()) == 0  # not a single request
    assert [page.freshness for page in same] == ["unchanged"] * 3
    assert [page.markdown for page in same] == [page.markdown for page in first]
    # Nothing was fetched: the page keeps the time it was last fetched.
    assert [page.fetched_at for page in same] == [long_ago] * 3
    assert {report.url: report.links for report in by_lastmod.reports} == links

    moved, by_304 = await _crawl(site, store, tmp_path, "2024-06-01")
    assert site.statuses[304] == 3
    assert [page.freshness for page in moved] == ["unchanged"] * 3
    assert {report.url: report.links for report in by_304.reports} == links
    stored = await store.get(site.url(page_path(0)))
    assert stored is not None
    assert stored.lastmod == "2024-06-01"
