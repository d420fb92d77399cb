"""The crawl stage in HTTP mode against the local docs site: results, failures, retries, flow."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.stage import run
from crawl4ai_llm_docs.errors import BrowserNotFoundError, CrawlError
from crawl4ai_llm_docs.fetch.retry import RetryPolicy
from crawl4ai_llm_docs.models import Page, UrlEntry
from crawl4ai_llm_docs.testing.site.server import (
    NAV_MARKERS,
    SPECIAL_PATHS,
    SiteConfig,
    SiteHandle,
    serve_site,
)

FAST_RETRIES = RetryPolicy(base_delay=0.02, max_delay=0.1)


async def crawl(
    urls: Sequence[str],
    cache_dir: Path,
    *,
    policy: RetryPolicy = FAST_RETRIES,
    **settings: object,
) -> list[Page]:
    """Run the stage over ``urls`` and collect what it sends, with a hang guard."""
    config = CrawlConfig(**{"mode": "http", "page_timeout": 5.0, **settings})  # type: ignore[arg-type]
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    pages: list[Page] = []

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(urls):
                await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(
                partial(
                    run,
                    receive_urls,
                    send_pages,
                    config=config,
                    cache_dir=cache_dir,
                    retry_policy=policy,
                )
            )
            async with receive_pages:
                async for page in receive_pages:
                    pages.append(page)
    return pages


def by_path(site: SiteHandle, pages: list[Page]) -> dict[str, Page]:
    return {page.url.removeprefix(site.base_url): page for page in pages}


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_site(nursery: trio.Nursery, **settings: object) -> SiteHandle:
    site: SiteHandle = await nursery.start(serve_site, SiteConfig(**settings))  # type: ignore[arg-type]
    return site


async def test_http_mode_crawls_every_page_once_with_clean_markdown(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start_site(nursery, pages=28)
    with capture_logs() as logs:
        pages = await crawl(site.page_urls(), tmp_path, max_concurrent=4)
    assert sorted(page.index for page in pages) == list(range(28))
    for page in pages:
        assert page.ok, page.error
        assert page.mode == "http"
        assert page.status == 200
        assert page.bytes > 1000
        assert page.elapsed > 0
        assert " — " not in page.title  # the page's own name; the site's goes to site_name
        assert page.site_name == "Example Docs"
        assert f"`configure_{page.index}()`" in page.markdown
        assert "```python" in page.markdown
        assert not any(marker in page.markdown for marker in NAV_MARKERS)
    crawled = [entry for entry in logs if entry["event"] == "page_crawled"]
    assert len(crawled) == 28
    assert set(crawled[0]) >= {"url", "mode", "status", "elapsed_ms", "bytes", "title"}
    assert all(hits == 1 for path, hits in site.hits.items() if path.startswith("/docs/"))


async def test_failures_are_reported_per_page_and_do_not_stop_the_run(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start_site(nursery, pages=3, slow_delay=30, huge_bytes=3_000_000)
    refused = f"http://127.0.0.1:{unused_port()}/docs/"
    special = [
        site.url(SPECIAL_PATHS[name])
        for name in ("missing", "error", "slow", "pdf", "binary", "huge", "loop")
    ]
    urls = [site.url("/docs/page-000.html"), *special, "http://nonexistent.invalid/", refused]
    urls.append(site.url("/docs/page-001.html"))
    with capture_logs() as logs:
        pages = await crawl(urls, tmp_path, retries=1, page_timeout=0.5, max_page_bytes=1_000_000)
    got = {page.url: page for page in pages}
    assert len(got) == len(urls)
    assert got[urls[0]].ok
    assert got[urls[-1]].ok
    expected = {
        "missing": "HTTP 404 Not Found",
        "error": "HTTP 500 Internal Server Error",
        "slow": "timed out after 0.5 s",
        "pdf": "not HTML (application/pdf)",
        "binary": "not HTML (application/octet-stream)",
        "huge": "page larger than max_page_bytes (1000000 bytes)",
    }
    for name, reason in expected.items():
        assert got[site.url(SPECIAL_PATHS[name])].error == reason
    assert "redirect" in str(got[site.url(SPECIAL_PATHS["loop"])].error)
    assert (
        got["http://nonexistent.invalid/"].error == "DNS lookup failed for host nonexistent.invalid"
    )
    assert str(got[refused].error).startswith("connection refused by 127.0.0.1:")
    assert got[site.url(SPECIAL_PATHS["missing"])].status == 404
    for page in pages:
        assert page.ok or (page.markdown == "" and page.title == "")
    # Transient failures were retried once; permanent ones were not.
    assert site.hits[SPECIAL_PATHS["error"]] == 2
    assert site.hits[SPECIAL_PATHS["slow"]] == 2
    assert site.hits[SPECIAL_PATHS["missing"]] == 1
    assert site.hits[SPECIAL_PATHS["pdf"]] == 1
    failed = [entry for entry in logs if entry["event"] == "page_failed"]
    assert len(failed) == len(urls) - 2
    assert set(failed[0]) >= {"url", "mode", "status", "elapsed_ms", "reason"}


async def test_retry_after_is_honoured(nursery: trio.Nursery, tmp_path: Path) -> None:
    site = await start_site(nursery, pages=2, rate_limited_hits=2, flaky_hits=5, retry_after=0.3)
    urls = [site.url(SPECIAL_PATHS["rate_limited"]), site.url(SPECIAL_PATHS["flaky"])]
    # A huge base delay: only Retry-After can make these retries quick.
    with capture_logs() as logs:
        pages = await crawl(
            urls, tmp_path, retries=2, policy=RetryPolicy(base_delay=60, max_delay=60)
        )
    got = {page.url: page for page in pages}
    assert got[urls[0]].ok
    assert got[urls[0]].status == 200
    assert got[urls[0]].elapsed >= 0.6
    times = site.hit_times[SPECIAL_PATHS["rate_limited"]]
    assert len(times) == 3
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(times))
    assert got[urls[1]].error == "HTTP 503 Service Unavailable"
    assert site.hits[SPECIAL_PATHS["flaky"]] == 3  # one try and two retries
    retries = [entry for entry in logs if entry["event"] == "retry" and entry["url"] == urls[0]]
    assert [(entry["attempt"], entry["delay_s"]) for entry in retries] == [(1, 0.3), (2, 0.3)]
    assert retries[0]["reason"] == "HTTP 429 Too Many Requests"


async def test_pages_are_sent_as_soon_as_ready(nursery: trio.Nursery, tmp_path: Path) -> None:
    site = await start_site(nursery, pages=6, delays={"/docs/page-000.html": 1.0})
    pages = await crawl(site.page_urls(), tmp_path, max_concurrent=3)
    assert [page.index for page in pages][-1] == 0  # the slow first page finished last
    assert sorted(page.index for page in pages) == list(range(6))


async def test_a_slow_consumer_stops_the_crawl(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Bounded channels and the limiter: nothing piles up while downstream is not reading."""
    site = await start_site(nursery, pages=30)
    config = CrawlConfig(mode="http", max_concurrent=2)
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    fed = 0

    async def feed() -> None:
        nonlocal fed
        async with send_urls:
            for index, url in enumerate(site.page_urls()):
                await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))
                fed += 1

    with trio.fail_after(30):
        async with trio.open_nursery() as inner:
            inner.start_soon(feed)
            inner.start_soon(
                partial(run, receive_urls, send_pages, config=config, cache_dir=tmp_path)
            )
            await trio.sleep(1.5)  # plenty of time to crawl all 30 pages if nothing held back
            assert sum(site.hits.values()) == 2
            assert fed <= 3
            async with receive_pages:
                received = [page async for page in receive_pages]
    assert len(received) == 30


async def test_downstream_closing_stops_the_stage_quietly(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start_site(nursery, pages=20)
    config = CrawlConfig(mode="http", max_concurrent=2)
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(site.page_urls()):
                try:
                    await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))
                except trio.BrokenResourceError:
                    return  # the stage stopped reading

    with trio.fail_after(30):
        async with trio.open_nursery() as inner:
            inner.start_soon(feed)
            inner.start_soon(
                partial(run, receive_urls, send_pages, config=config, cache_dir=tmp_path)
            )
            async with receive_pages:
                first = await receive_pages.receive()
    assert first.ok
    assert sum(site.hits.values()) < 20


async def test_redirects_encodings_and_js_shell_over_http(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start_site(nursery, pages=3)
    names = ("redirect", "latin1", "invalid_utf8", "js_only")
    pages = await crawl([site.url(SPECIAL_PATHS[name]) for name in names], tmp_path)
    got = {page.url.removeprefix(site.base_url): page for page in pages}
    redirected = got[SPECIAL_PATHS["redirect"]]
    assert redirected.final_url == site.url("/docs/page-001.html")
    assert "`configure_1()`" in redirected.markdown
    # Relative links resolve against the final URL, not the one asked for.
    assert f"[the next page]({site.url('/docs/page-002.html')})" in redirected.markdown
    assert "# Café crème" in got[SPECIAL_PATHS["latin1"]].markdown
    broken = got[SPECIAL_PATHS["invalid_utf8"]]
    assert broken.ok
    assert "\ufffd" in broken.markdown
    assert "café" in broken.markdown
    shell = got[SPECIAL_PATHS["js_only"]]
    # An empty JavaScript shell over HTTP has nothing to write: it fails with a hint.
    assert not shell.ok
    assert shell.mode == "http"
    assert shell.error is not None
    assert "may need JavaScript" in shell.error


async def test_browser_mode_without_a_browser_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))
    for browser_path, expected in (
        ("", "playwright install chromium"),
        ("/no/chrome", "browser_path"),
    ):
        config = CrawlConfig(mode="browser", browser_path=browser_path)
        send_urls, receive_urls = trio.open_memory_channel[UrlEntry](1)
        send_pages, receive_pages = trio.open_memory_channel[Page](1)
        with pytest.raises(BrowserNotFoundError) as caught:
            await run(receive_urls, send_pages, config=config, cache_dir=tmp_path)
        assert expected in str(caught.value)
        assert "apt-get install chromium" in str(caught.value)
        with pytest.raises(trio.EndOfChannel):
            await receive_pages.receive()  # the stage closed its channels anyway
        send_urls.close()


async def test_a_browser_that_cannot_start(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Browser mode stops with the reason; auto mode keeps the HTTP page and says why."""
    broken = "/bin/false"  # exits at once, like a Chromium that cannot run here
    config = CrawlConfig(mode="browser", browser_path=broken)
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](1)
    send_pages, receive_pages = trio.open_memory_channel[Page](1)
    send_urls.close()
    with pytest.RaisesGroup(pytest.RaisesExc(CrawlError, match="exited before opening")):
        await run(receive_urls, send_pages, config=config, cache_dir=tmp_path)
    receive_pages.close()
    assert not any((tmp_path / "chromium-profiles").iterdir())

    site = await start_site(nursery, pages=1)
    with capture_logs() as logs:
        pages = await crawl(
            [site.url(SPECIAL_PATHS["js_only"])], tmp_path, mode="auto", browser_path=broken
        )
    # The HTTP result stands (an empty shell: failed with a hint), and the broken browser is named.
    assert pages[0].mode == "http"
    assert "may need JavaScript" in (pages[0].error or "")
    (warning,) = [entry for entry in logs if entry["event"] == "warning"]
    assert "exited before opening its DevTools port" in warning["message"]
