"""Discovery as a source: URLs out in reading order, crawled pages' links back in.

    roots ─► [emit] ══UrlEntry══► crawl (the run's crawl stage, or ``map``'s fetcher)
       ▲                                   │ submit(PageReport) -> verdict
       └── frontier ◄── links, in index order ◄┘

The crawler fetches each page once (``route(index)`` decides each of its redirect hops) and
``submit``\\s what it found; reports are handled in the order the pages were emitted (a report
waits for the ones before it), so the frontier, the verdicts and therefore the output order
are the same on every run: root first, then the site's llms.txt pages, then breadth-first in
link order, then sitemap pages no link reached.

``max_pages`` bounds the pages *listed*: a page that turns out to be a duplicate, noindex or
broken does not use up the limit, so ``--max-pages 40`` gives 40 documents when the site has
them. Discovery ends only when nothing is queued, no page is in flight (a page counts as in
flight until its report is fully handled: its links may still add pages) and no seed is left.
Memory stays flat: the frontier and the sitemap seeds spill to disk, the seen set holds
fingerprints, and pages in flight are bounded by the crawler's concurrency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import structlog
import trio
from msgspec import Struct

from crawl4ai_llm_docs.config_schema import CrawlConfig, DiscoverConfig
from crawl4ai_llm_docs.discover import roots as roots_mod
from crawl4ai_llm_docs.discover.frontier import Queued
from crawl4ai_llm_docs.discover.hops import Hops
from crawl4ai_llm_docs.discover.intake import Intake
from crawl4ai_llm_docs.discover.judge import judge
from crawl4ai_llm_docs.discover.ledger import Ledger, OnLeftOut
from crawl4ai_llm_docs.discover.robots import Robots
from crawl4ai_llm_docs.discover.scope import (
    Area,
    Scope,
    directory_of,
    normalise,
    origin_of,
    url_key,
)
from crawl4ai_llm_docs.discover.sources import SiteLists
from crawl4ai_llm_docs.fetch.guard import Resolver, guard_for
from crawl4ai_llm_docs.fetch.http import open_client
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.models import PageReport, UrlEntry
from crawl4ai_llm_docs.observe.snapshot import DiscoveryView

log = structlog.get_logger()


class Outcome(Struct, frozen=True, kw_only=True):
    """The verdict on one emitted page, passed to ``on_outcome`` in index order."""

    index: int
    queued: Queued
    listed: bool
    reason: str = ""  # why it is not listed, or the failure of a listed page


class Discovery:
    def __init__(
        self,
        roots: list[str],
        config: DiscoverConfig,
        crawl: CrawlConfig,
        *,
        client: httpx.AsyncClient | None = None,
        spill_dir: Path | None = None,
        on_outcome: Callable[[Outcome], Awaitable[None]] | None = None,
        on_left_out: OnLeftOut | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        by_key: dict[str, str] = {}
        for root in map(normalise, roots):
            by_key.setdefault(url_key(root), root)  # each page once, the first form wins
        self.roots = list(by_key.values())
        self.config = config
        self.crawl = crawl
        self._client = client
        self.on_outcome = on_outcome
        self.ledger = Ledger(on_left_out)
        scope = Scope.for_roots(
            self.roots, whole_site=config.whole_site, include=config.include, exclude=config.exclude
        )
        self.intake = Intake(scope, self.ledger, spill_dir)
        self.hops = Hops(self.roots, self.intake, resolver or Resolver())
        self.lists = SiteLists(
            self.roots, config, crawl, self.intake, self.hops, spill_dir=spill_dir
        )
        self.cut_short = 0  # listable URLs left when max_pages was reached
        self._in_flight: dict[int, Queued] = {}
        self._listed_in_flight = 0
        self._followed = 0
        self._emitted = 0
        self._head: Queued | None = None  # the frontier's next item, peeked
        self._reports: dict[int, PageReport] = {}
        self._verdicts: dict[int, tuple[bool, str]] = {}
        self._waiting: dict[int, trio.Event] = {}
        self._next = 0
        self._lock = trio.Lock()
        self._changed = trio.Event()

    # ------------------------------------------------------------ counts

    @property
    def scope(self) -> Scope:
        return self.intake.scope

    @property
    def sources_used(self) -> list[str]:
        return self.lists.used

    def snapshot(self) -> DiscoveryView:
        return self.ledger.view(queued=len(self.intake.frontier) + len(self.intake.seeds))

    def expected_pages(self) -> int:
        """Pages the run will list, as far as is known now (for the progress view)."""
        intake = self.intake
        waiting = self._listed_in_flight + len(intake.frontier) + len(intake.seeds)
        return min(self.config.max_pages, self.ledger.listed + waiting)

    # ------------------------------------------------------------ emitting

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("discovery is not running")
        return self._client

    def route(self, index: int) -> Route:
        """How the crawler fetches the page emitted as ``index``: each redirect hop checked."""
        return self.hops.page_route(index)

    async def run(self, send: trio.MemorySendChannel[UrlEntry]) -> None:
        """The source stage: emit URLs until discovery is complete (or the limit is reached).

        Without a client of its own (the run's crawl stage has one for pages), robots.txt,
        llms.txt and sitemaps are read through a pooled client opened here.
        """
        if self._client is not None:
            await self._run(send)
            return
        async with open_client(self.crawl) as client:
            self._client = client
            try:
                await self._run(send)
            finally:
                self._client = None

    async def _run(self, send: trio.MemorySendChannel[UrlEntry]) -> None:
        async with send:
            self.hops.guard = await guard_for(self.roots, self.hops.resolver)
            robots = Robots(
                self.client,
                user_agent=self.crawl.user_agent,
                enabled=self.config.respect_robots,
                route=self.hops.resource_route(),
            )
            self.intake.robots = robots
            await roots_mod.check_robots(self.roots, robots)
            for root in self.roots:
                self.intake.seen.add(url_key(root))
                self.ledger.discovered += 1
                # A root an --include leaves out is still crawled: its links lead to the rest.
                listed = self.scope.classify(root)[0] == "list"
                await self.intake.frontier.push(
                    Queued(url=root, depth=0, via="root", listed=listed)
                )
            while (item := await self._next_item()) is not None:
                index = self._emitted
                self._emitted += 1
                self._in_flight[index] = item
                if item.listed:
                    self._listed_in_flight += 1
                else:
                    self._followed += 1
                await robots.pace(origin_of(item.url))
                lastmod = item.lastmod or self.intake.lastmod_for(item.url)
                await send.send(UrlEntry(index=index, url=item.url, line=0, lastmod=lastmod))
            await self._finish()

    async def _next_item(self) -> Queued | None:
        limit = self.config.max_pages
        while True:
            if self.ledger.listed >= limit:
                return None
            head = await self._peek()
            if head is not None:
                if head.listed and self.ledger.listed + self._listed_in_flight >= limit:
                    pass  # wait: a page in flight may still be dropped
                elif not head.listed and self._followed >= limit:
                    await self._pop()  # follow-only pages are capped too
                    await self.ledger.leave_out(head.url, "limit", _limit(limit))
                    continue
                else:
                    return await self._pop()
            elif not self._in_flight:
                # Nothing queued and no page whose links may still come: the sitemap pages
                # no link reached, one at a time (each one's links come first).
                seed = await self.intake.next_seed()
                if seed is None:
                    return None
                await self.intake.frontier.push(seed)
                continue
            self._changed = trio.Event()
            await self._changed.wait()

    async def _peek(self) -> Queued | None:
        if self._head is None:
            self._head = await self.intake.frontier.pop()
        return self._head

    async def _pop(self) -> Queued | None:
        head, self._head = await self._peek(), None
        return head

    async def _finish(self) -> None:
        if self.ledger.listed >= self.config.max_pages:
            reason = _limit(self.config.max_pages)
            left = 0
            if self._head is not None:
                left += 1
                await self.ledger.leave_out(self._head.url, "limit", reason)
                self._head = None
            left += await self.intake.leave_the_rest(reason)
            if left:
                self.cut_short = left
                log.warning(
                    "warning",
                    message=f"Discovery stopped at --max-pages {self.config.max_pages}: {left} "
                    "more URLs were queued or in sitemaps and not crawled. Raise --max-pages "
                    "(or discover.max_pages) to include them.",
                )
        self.intake.close()

    # ------------------------------------------------------------ reports

    async def submit(self, report: PageReport) -> tuple[bool, str]:
        """Hand in a crawled page; return (listed, reason) once every earlier page is judged.

        Raises ``InputError`` when a root turns out unusable.
        """
        event = self._waiting.setdefault(report.index, trio.Event())
        self._reports[report.index] = report
        async with self._lock:
            while (ready := self._reports.pop(self._next, None)) is not None:
                await self._handle(ready)
                self._next += 1
        await event.wait()
        del self._waiting[report.index]
        return self._verdicts.pop(report.index)

    async def _handle(self, report: PageReport) -> None:
        # The page stays in flight until it is fully handled: while the sources are read or
        # its links queued, discovery must not conclude that nothing is left.
        item = self._in_flight[report.index]
        try:
            await self._handle_in_flight(item, report)
        finally:
            del self._in_flight[report.index]
            if report.index in self._verdicts:  # else an error ends the run
                self._waiting.setdefault(report.index, trio.Event()).set()
            self._changed.set()

    async def _handle_in_flight(self, item: Queued, report: PageReport) -> None:
        self.ledger.crawled += 1
        refusal = self.hops.refused.pop(report.index, None)
        if item.via == "root":
            roots_mod.check_root(item, report, refusal, self.crawl.user_agent)
            self._rescope(report)
            if report.index == len(self.roots) - 1:
                # The sources are read once the roots answered (their final URLs decide the
                # scope), and before the last root's links: llms.txt order comes first.
                await self.lists.read(self.client)
        verdict = judge(item, report, refusal, self.scope, self.intake.seen)
        if report.error is None and not report.links.nofollow:
            await self._follow(item, report)
        if item.listed:
            self._listed_in_flight -= 1  # its verdict is in: counted below, or not at all
        if verdict.listed:
            self.ledger.listed += 1
        elif verdict.kind is not None:
            self.ledger.count(verdict.kind)
        self._verdicts[report.index] = (verdict.listed, verdict.reason)
        if self.on_outcome is not None:
            await self.on_outcome(
                Outcome(
                    index=report.index, queued=item, listed=verdict.listed, reason=verdict.reason
                )
            )

    def _rescope(self, report: PageReport) -> None:
        """A root that redirects within its host is scoped by where it lands."""
        final = normalise(report.final_url)
        if self.config.whole_site or url_key(final) == url_key(report.url):
            return
        area = Area(origin_of(final), directory_of(final))
        self.intake.scope = Scope(
            (*self.scope.areas, area), include=self.config.include, exclude=self.config.exclude
        )

    async def _follow(self, item: Queued, report: PageReport) -> None:
        if "links" not in self.config.sources:
            return
        if report.links.capped:
            log.warning(
                "warning",
                message=f"{item.url} has more than {len(report.links.links):,} links: only "
                "the first ones were followed. Pages linked only after them are missed; list "
                "them in a URL file, or let a sitemap or llms.txt name them.",
            )
        max_depth = self.config.max_depth
        if max_depth and item.depth + 1 > max_depth:
            for link in report.links.links:
                await self.intake.too_deep(link, max_depth=max_depth)
            return
        via = f"linked from {item.url}"
        for link in report.links.links:
            if await self.intake.offer(link, depth=item.depth + 1, via=via):
                self._changed.set()

    async def offer(self, raw: str, *, depth: int, via: str) -> None:
        """Queue ``raw`` if it is in scope, allowed and new."""
        if await self.intake.offer(raw, depth=depth, via=via):
            self._changed.set()


def _limit(max_pages: int) -> str:
    return f"--max-pages {max_pages} reached"
