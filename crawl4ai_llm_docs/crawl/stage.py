"""The crawl stage: URLs in, crawled (or failed) pages out, as soon as each one is ready.

Each page runs in its own task under a ``CapacityLimiter(crawl.max_concurrent)``; a slot is
taken before the task starts and held until its page is handed downstream, so a slow
consumer stops the crawling and memory stays flat however many URLs there are.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import msgspec
import structlog
import trio

from crawl4ai_llm_docs.cache.page_state import PageState, PageStateStore
from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl import extract as extract_mod
from crawl4ai_llm_docs.crawl import refresh
from crawl4ai_llm_docs.crawl.browser import find_chromium, require_chromium
from crawl4ai_llm_docs.crawl.lazy_browser import LazyBrowser
from crawl4ai_llm_docs.crawl.links import LinkSink, report_page, with_links
from crawl4ai_llm_docs.crawl.markdown_first import MarkdownFirst, Offer
from crawl4ai_llm_docs.crawl.metadata import with_metadata
from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai
from crawl4ai_llm_docs.fetch.credentials import credentials_of
from crawl4ai_llm_docs.fetch.guard import Resolver, guard_for
from crawl4ai_llm_docs.fetch.http import Fetched, FetchFailure, Validators, fetch, open_client
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.fetch.retry import RetryPolicy
from crawl4ai_llm_docs.models import CrawlMode, Page, PageLinks, UrlEntry


async def run(
    receive: trio.MemoryReceiveChannel[UrlEntry],
    send: trio.MemorySendChannel[Page],
    *,
    config: CrawlConfig,
    cache_dir: Path,
    retry_policy: RetryPolicy | None = None,
    page_states: PageStateStore | None = None,
    discovery: LinkSink | None = None,
) -> None:
    """Crawl every URL from ``receive`` and send one ``Page`` per URL, in completion order.

    Failed pages are sent too (``Page.error`` says why). Raises ``BrowserNotFoundError`` in
    browser mode when no Chromium exists. If downstream closes its channel, crawling stops.
    With ``page_states``, HTTP fetches are conditional on what the last run stored, a page
    whose sitemap lastmod did not move is not fetched at all, and every page is marked new,
    changed or unchanged.
    With ``discovery`` (a run started from root URLs), each page's links go back to it from
    the same fetch (or, for a page the refresh state stands for, from that state), and a page
    it does not list (duplicate, noindex, broken link) is not sent.
    """
    async with receive, send:
        executable: str | None = None
        if config.mode == "browser":
            executable = await trio.to_thread.run_sync(require_chromium, config.browser_path)
        elif config.mode == "auto":
            executable = await trio.to_thread.run_sync(find_chromium, config.browser_path)
        prepare_crawl4ai(cache_dir)
        crawler = _Crawler(
            config,
            cache_dir,
            executable,
            retry_policy or RetryPolicy(),
            page_states or PageStateStore.disabled(),
        )
        crawler.discovery = discovery
        async with crawler.open():
            limiter = trio.CapacityLimiter(config.max_concurrent)
            async with trio.open_nursery() as nursery:
                crawler.stop = nursery.cancel_scope
                async for entry in receive:
                    slot = object()
                    await limiter.acquire_on_behalf_of(slot)
                    nursery.start_soon(crawler.crawl_and_send, entry, send.clone(), limiter, slot)


class _Crawler:
    def __init__(
        self,
        config: CrawlConfig,
        cache_dir: Path,
        executable: str | None,
        policy: RetryPolicy,
        page_states: PageStateStore,
    ) -> None:
        self.config = config
        self.page_states = page_states
        self.cache_dir = cache_dir
        self.executable = executable
        self.policy = policy
        self.rng = random.Random()
        self.stop: trio.CancelScope | None = None
        self._client: httpx.AsyncClient | None = None
        self._browser: LazyBrowser | None = None
        self.discovery: LinkSink | None = None
        self._links: dict[int, PageLinks] = {}  # pages in flight only
        self._resolver = Resolver()  # host names' addresses, for every page's route
        # Markdown first: what a page is asked for, and the Markdown it offers.
        self._markdown = MarkdownFirst(
            config.prefer_markdown, self._fetch_for_markdown, css_selector=config.css_selector
        )

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        # Importing crawl4ai takes seconds: do it once, off the trio thread, before page one.
        await trio.to_thread.run_sync(extract_mod.preload, abandon_on_cancel=True)
        async with open_client(self.config) as client, trio.open_nursery() as services:
            self._client = client
            self._browser = LazyBrowser(
                services, self.executable, self.config, self.cache_dir, credentials_of(client)
            )
            try:
                if self.config.mode == "browser":
                    await self._browser.get(required=True)
                yield
            finally:
                self._browser.close()

    async def crawl_and_send(
        self,
        entry: UrlEntry,
        send: trio.MemorySendChannel[Page],
        limiter: trio.CapacityLimiter,
        slot: object,
    ) -> None:
        try:
            async with send:
                page = await self._crawl(entry)
                if self.discovery is not None and not await self._report(entry, page):
                    return
                try:
                    await send.send(page)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    # Downstream stopped reading (e.g. the LLM stage was shut down): no one
                    # wants more pages, so stop crawling.
                    if self.stop is not None:
                        self.stop.cancel()
        finally:
            limiter.release_on_behalf_of(slot)

    async def _report(self, entry: UrlEntry, page: Page) -> bool:
        """Hand the page's links to discovery; False when it is not to be listed."""
        assert self.discovery is not None
        links = self._links.pop(entry.index, PageLinks())
        return await report_page(self.discovery, entry, page, links)

    async def _crawl(self, entry: UrlEntry) -> Page:
        started = trio.current_time()
        mode: CrawlMode = "browser" if self.config.mode == "browser" else "http"
        discovering = self.discovery is not None
        try:
            previous = await self.page_states.get(entry.url)
            prefer = self.config.prefer_markdown
            if previous is not None and refresh.unchanged_by_lastmod(
                self.page_states, entry, previous, discovering=discovering, prefer_markdown=prefer
            ):
                page = refresh.stored_page(
                    entry,
                    previous,
                    final_url=previous.final_url,
                    status=None,  # no request was sent
                    elapsed=trio.current_time() - started,
                    mode=mode,
                )
                return self._crawled(await self._reuse(entry, page, previous, fetched=False))
            route = await self._route(entry)
            if mode == "browser":
                page = await self._browser_page(entry, started, route)
                if not page.ok:
                    return page
                return self._crawled(await self._record(entry, page, previous, None))
            validators = refresh.validators_for(
                self.page_states, previous, discovering=discovering, prefer_markdown=prefer
            )
            result = await self._attempts(
                entry.url, partial(self._http_fetch, validators=validators, route=route), "http"
            )
            if isinstance(result, FetchFailure):
                return self._failed(entry, result, "http", started)
            if result.not_modified and previous is not None:
                page = refresh.stored_page(
                    entry,
                    previous,
                    final_url=result.final_url,
                    status=result.status,
                    elapsed=trio.current_time() - started,
                    mode="http",
                )
                return self._crawled(await self._reuse(entry, page, previous))
            offer = await self._markdown.offer(result, route)
            page, words = await self._page(entry, result, "http", started, offer)
            if self.config.mode == "auto" and words < self.config.js_shell_min_words:
                page = await self._render(entry, page, started, route)
            return self._crawled(await self._record(entry, page, previous, result))
        except Exception as exc:  # a bug or an odd page must not stop the run
            failure = FetchFailure(f"unexpected error: {type(exc).__name__}: {exc}")
            return self._failed(entry, failure, mode, started)

    async def _route(self, entry: UrlEntry) -> Route:
        """Which redirect hops and addresses this page's fetch may reach."""
        if self.discovery is not None:  # discovery's: scope and robots.txt at every hop
            return self.discovery.route(entry.index)
        # A URL from the file: its own address range, and public addresses.
        return Route(await guard_for([entry.url], self._resolver), self._resolver)

    async def _browser_page(self, entry: UrlEntry, started: float, route: Route) -> Page:
        assert self._browser is not None
        browser = await self._browser.get(required=True)
        assert browser is not None
        result = await self._attempts(entry.url, partial(browser.fetch, route=route), "browser")
        if isinstance(result, FetchFailure):
            return self._failed(entry, result, "browser", started)
        offer = await self._markdown.offer(result, route)
        page, _ = await self._page(entry, result, "browser", started, offer)
        return page

    async def _render(self, entry: UrlEntry, http_page: Page, started: float, route: Route) -> Page:
        """An (almost) empty page over HTTP is likely a JavaScript shell: ask the browser."""
        assert self._browser is not None
        browser = await self._browser.get()
        if browser is None:
            return http_page
        result = await self._attempts(entry.url, partial(browser.fetch, route=route), "browser")
        if isinstance(result, FetchFailure):
            structlog.get_logger().warning(
                "warning",
                message=f"{entry.url}: rendering in the browser failed ({result.reason}); "
                "kept the HTTP content.",
            )
            return http_page
        page, _ = await self._page(entry, result, "browser", started)
        return page

    async def _record(
        self, entry: UrlEntry, page: Page, previous: PageState | None, fetched: Fetched | None
    ) -> Page:
        if not page.ok or not page.markdown.strip():
            return page  # nothing worth keeping; the next run fetches it again
        return await self.page_states.record(
            page,
            previous,
            etag=fetched.etag if fetched else None,
            last_modified=fetched.last_modified if fetched else None,
            lastmod=entry.lastmod or None,
            links=self._links.get(entry.index),  # read by _report, after this
            prefer_markdown=self.config.prefer_markdown,
        )

    async def _reuse(
        self, entry: UrlEntry, page: Page, previous: PageState, *, fetched: bool = True
    ) -> Page:
        """The stored state stands for the page; discovery gets the links it recorded."""
        if self.discovery is not None and previous.links is not None:
            self._links[entry.index] = previous.links
        lastmod = entry.lastmod or None
        return await self.page_states.reuse(page, previous, lastmod=lastmod, fetched=fetched)

    async def _http_fetch(
        self,
        url: str,
        *,
        validators: Validators | None = None,
        route: Route,
        accept: str | None = None,
        types: Sequence[str] | None = None,
    ) -> Fetched:
        """A page (asked for as Markdown first allows), or what ``accept`` and ``types`` say."""
        assert self._client is not None
        return await fetch(
            self._client,
            url,
            max_bytes=self.config.max_page_bytes,
            validators=validators,
            route=route,
            accept=self._markdown.accept if accept is None else accept,
            types=self._markdown.page_types if types is None else types,
        )

    async def _fetch_for_markdown(
        self, url: str, accept: str, types: Sequence[str], route: Route
    ) -> Fetched | FetchFailure:
        fetcher = partial(self._http_fetch, route=route, accept=accept, types=types)
        return await self._attempts(url, fetcher, "http")

    async def _attempts(
        self, url: str, fetcher: Callable[[str], Awaitable[Fetched]], mode: CrawlMode
    ) -> Fetched | FetchFailure:
        """Fetch with retries of transient failures; the last failure is returned, not raised."""
        timeout = self.config.page_timeout
        failures = 0
        while True:
            try:
                with trio.fail_after(timeout):
                    return await fetcher(url)
            except trio.TooSlowError:
                failure = FetchFailure(f"timed out after {timeout:g} s", transient=True)
            except FetchFailure as exc:
                failure = exc
            failures += 1
            if not failure.transient or failures > self.config.retries:
                return failure
            delay = self.policy.delay(failures, failure.retry_after, self.rng)
            structlog.get_logger().warning(
                "retry",
                url=url,
                reason=failure.reason,
                delay_s=round(delay, 3),
                attempt=failures,
            )
            await trio.sleep(delay)

    async def _page(
        self,
        entry: UrlEntry,
        fetched: Fetched,
        mode: CrawlMode,
        started: float,
        offer: Offer | None = None,
    ) -> tuple[Page, int]:
        offer = offer or Offer.of(fetched)
        fetched, html = offer.page, offer.html  # Markdown first: the page may be its Markdown
        extract = partial(
            extract_mod.extract, html, fetched.final_url, css_selector=self.config.css_selector
        )
        convert = partial(self._markdown.content, offer, extract)
        if self.discovery is not None:  # links from the same fetch, in the same thread
            both = partial(with_links, convert, html, fetched.final_url)
            extracted, links = await trio.to_thread.run_sync(both, abandon_on_cancel=True)
            self._links[entry.index] = offer.without_own_markdown(links)
        else:
            # abandon_on_cancel: Ctrl-C need not wait for a big page's conversion to finish.
            extracted = await trio.to_thread.run_sync(convert, abandon_on_cancel=True)
        page = Page(
            index=entry.index,
            url=entry.url,
            final_url=fetched.final_url,
            title=extracted.title,
            markdown=extracted.markdown,
            status=fetched.status,
            error=extracted.error or None,  # a page with text that gave no Markdown
            elapsed=trio.current_time() - started,
            bytes=offer.bytes,
            mode=mode,
            source_format=extracted.source_format,
            markdown_problem=extracted.problem,
        )
        page = await trio.to_thread.run_sync(
            with_metadata, page, html, extracted.site_name, abandon_on_cancel=True
        )
        return page, extracted.words

    @staticmethod
    def _crawled(page: Page) -> Page:
        if not page.markdown.strip():
            # Nothing to clean or write: one verdict for the page, in the log and the output.
            reason = page.error or "no text content found on the page"
            if page.mode == "http" and page.error is None:
                reason += " (it may need JavaScript: try --crawler auto or browser)"
            page = msgspec.structs.replace(page, error=reason)
            structlog.get_logger().warning(
                "page_failed",
                url=page.url,
                mode=page.mode,
                status=page.status,
                elapsed_ms=round(page.elapsed * 1000),
                bytes=page.bytes,
                reason=page.error,
            )
            return page
        structlog.get_logger().info(
            "page_crawled",
            url=page.url,
            mode=page.mode,
            status=page.status,
            elapsed_ms=round(page.elapsed * 1000),
            bytes=page.bytes,
            title=page.title,
            freshness=page.freshness,
            source_format=page.source_format,
            markdown_problem=page.markdown_problem or None,
        )
        return page

    @staticmethod
    def _failed(entry: UrlEntry, failure: FetchFailure, mode: CrawlMode, started: float) -> Page:
        elapsed = trio.current_time() - started
        structlog.get_logger().warning(
            "page_failed",
            url=entry.url,
            mode=mode,
            status=failure.status,
            elapsed_ms=round(elapsed * 1000),
            bytes=0,  # the JSON contract's PageFailed requires it; nothing usable was received
            reason=failure.reason,
        )
        return Page(
            index=entry.index,
            url=entry.url,
            final_url=failure.final_url or entry.url,
            title="",
            markdown="",
            status=failure.status,
            error=failure.reason,
            elapsed=elapsed,
            bytes=0,
            mode=mode,
        )
