"""Discovery as a source: URLs out in reading order, crawled pages' links back in.

    roots ─► [emit] ══UrlEntry══► crawl (the run's crawl stage, or ``map``'s fetcher)
       ▲                                   │ submit(PageReport) -> verdict
       └── frontier ◄── links, in index order ◄┘

The crawler fetches each page once and ``submit``\\s what it found; reports are handled in
the order the pages were emitted (a report waits for the ones before it), so the frontier,
the verdicts and therefore the output order are the same on every run: root first, then the
site's llms.txt pages, then breadth-first in link order, then sitemap pages no link reached.

``max_pages`` bounds the pages *listed*: a page that turns out to be a duplicate, noindex or
broken does not use up the limit, so ``--max-pages 40`` gives 40 documents when the site has
them. Memory stays flat: the frontier and the sitemap seeds spill to disk, the seen set holds
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
from crawl4ai_llm_docs.discover.frontier import Queued, SeenSet, SpillQueue, fingerprint
from crawl4ai_llm_docs.discover.robots import Robots
from crawl4ai_llm_docs.discover.scope import Area, Scope, directory_of, normalise, url_key
from crawl4ai_llm_docs.fetch.http import open_client
from crawl4ai_llm_docs.models import PageReport, UrlEntry
from crawl4ai_llm_docs.observe.snapshot import DiscoveryView

log = structlog.get_logger()

# Sitemap lastmods kept for pages a link reaches before their sitemap entry does (the
# refresh state skips a page whose lastmod did not move); past this many, such pages are
# refreshed by conditional requests alone. About 100 bytes each.
MAX_LASTMODS = 50_000


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
    ) -> None:
        by_key: dict[str, str] = {}
        for root in map(normalise, roots):
            by_key.setdefault(url_key(root), root)  # each page once, the first form wins
        self.roots = list(by_key.values())
        self.config = config
        self.crawl = crawl
        self._client = client
        self._robots: Robots | None = None
        self.on_outcome = on_outcome
        self.scope = Scope.for_roots(
            self.roots,
            whole_site=config.whole_site,
            include=config.include,
            exclude=config.exclude,
        )
        self.frontier = SpillQueue(spill_dir)
        self.seeds = SpillQueue(spill_dir)  # sitemap pages, crawled once links run dry
        self.seen = SeenSet()
        self.counts = _Counters()
        self.cut_short = 0  # listable URLs left when max_pages was reached
        self.sources_used: list[str] = []
        self._in_flight: dict[int, Queued] = {}
        self._listed_in_flight = 0
        self._followed = 0
        self._emitted = 0
        self._lastmods: dict[int, str] = {}  # url_key fingerprint -> sitemap lastmod
        self._reports: dict[int, PageReport] = {}
        self._verdicts: dict[int, tuple[bool, str]] = {}
        self._waiting: dict[int, trio.Event] = {}
        self._next = 0
        self._lock = trio.Lock()
        self._changed = trio.Event()

    # ------------------------------------------------------------ counts

    def snapshot(self) -> DiscoveryView:
        c = self.counts
        return DiscoveryView(
            discovered=c.discovered,
            queued=len(self.frontier) + len(self.seeds),
            crawled=c.crawled,
            excluded=c.excluded,
            blocked=c.blocked,
            listed=c.listed,
        )

    def expected_pages(self) -> int:
        """Pages the run will list, as far as is known now (for the progress view)."""
        waiting = self._listed_in_flight + len(self.frontier) + len(self.seeds)
        return min(self.config.max_pages, self.counts.listed + waiting)

    # ------------------------------------------------------------ emitting

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("discovery is not running")
        return self._client

    @property
    def robots(self) -> Robots:
        if self._robots is None:
            self._robots = Robots(
                self.client, user_agent=self.crawl.user_agent, enabled=self.config.respect_robots
            )
        return self._robots

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
            await roots_mod.check_robots(self)
            for root in self.roots:
                self.seen.add(url_key(root))
                self.counts.discovered += 1
                # A root an --include leaves out is still crawled: its links lead to the rest.
                listed = self.scope.classify(root)[0] == "list"
                await self.frontier.push(Queued(url=root, depth=0, via="root", listed=listed))
            while (item := await self._next_item()) is not None:
                index = self._emitted
                self._emitted += 1
                self._in_flight[index] = item
                if item.listed:
                    self._listed_in_flight += 1
                else:
                    self._followed += 1
                await self.robots.pace(_origin(item.url))
                stored = self._lastmods.pop(fingerprint(url_key(item.url)), "")
                lastmod = item.lastmod or stored
                await send.send(UrlEntry(index=index, url=item.url, line=0, lastmod=lastmod))
            self._finish()

    async def _next_item(self) -> Queued | None:
        limit = self.config.max_pages
        while True:
            if self.counts.listed >= limit:
                return None
            head = await self._peek()
            if head is not None:
                if head.listed and self.counts.listed + self._listed_in_flight >= limit:
                    pass  # wait: a page in flight may still be dropped
                elif not head.listed and self._followed >= limit:
                    await self._pop()  # follow-only pages are capped too
                    continue
                else:
                    return await self._pop()
            elif not self._in_flight:
                seed = await self.seeds.pop()
                if seed is None:
                    return None
                if self.seen.add(url_key(seed.url)):
                    self.counts.discovered += 1
                    await self.frontier.push(seed)
                continue
            self._changed = trio.Event()
            await self._changed.wait()

    async def _peek(self) -> Queued | None:
        if self._head is None:
            self._head = await self.frontier.pop()
        return self._head

    async def _pop(self) -> Queued | None:
        head, self._head = await self._peek(), None
        return head

    _head: Queued | None = None

    def _finish(self) -> None:
        left = len(self.frontier) + len(self.seeds) + (self._head is not None)
        if self.counts.listed >= self.config.max_pages and left:
            self.cut_short = left
            log.warning(
                "warning",
                message=f"Discovery stopped at --max-pages {self.config.max_pages}: {left} more "
                "URLs were queued or in sitemaps and not crawled. Raise --max-pages (or "
                "discover.max_pages) to include them.",
            )
        self.frontier.close()
        self.seeds.close()

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
        item = self._in_flight.pop(report.index)
        if item.listed:
            self._listed_in_flight -= 1
        self.counts.crawled += 1
        if item.via == "root":
            roots_mod.check_root(self, item, report)
            self._rescope(report)
            if report.index == len(self.roots) - 1:
                # The sources are read once the roots answered (their final URLs decide the
                # scope), and before the last root's links: llms.txt order comes first.
                await roots_mod.add_sources(self)
        listed, reason = self._judge(item, report)
        if report.error is None and not report.links.nofollow:
            await self._follow(item, report)
        if listed:
            self.counts.listed += 1
        elif reason and report.error is None:
            self.counts.excluded += 1
        self._verdicts[report.index] = (listed, reason)
        if self.on_outcome is not None:
            await self.on_outcome(
                Outcome(index=report.index, queued=item, listed=listed, reason=reason)
            )
        self._waiting.setdefault(report.index, trio.Event()).set()
        self._changed.set()

    def _rescope(self, report: PageReport) -> None:
        """A root that redirects within its host is scoped by where it lands."""
        final = normalise(report.final_url)
        if self.config.whole_site or url_key(final) == url_key(report.url):
            return
        area = Area(_origin(final), directory_of(final))
        self.scope = Scope(
            (*self.scope.areas, area),
            include=self.config.include,
            exclude=self.config.exclude,
        )

    def _judge(self, item: Queued, report: PageReport) -> tuple[bool, str]:
        """Listed or not, and why; judged in emission order, so it is the same every run."""
        if report.error is not None:
            status = report.status or 0
            if 400 <= status < 500 and status not in (408, 429):
                return False, f"broken link ({report.error})"
            if report.error.startswith("not HTML"):
                return False, report.error
            return item.listed, report.error  # a page that failed: listed, with its failure
        if not item.listed:
            return False, "followed for links only (--include/--exclude)"
        if report.links.noindex:
            return False, "noindex"
        final = normalise(report.final_url)
        if url_key(final) != url_key(item.url):
            verdict, why = self.scope.classify(final)
            if verdict == "skip":
                return False, f"redirects to {final} ({why})"
            if not self.seen.add(url_key(final)):
                return False, f"redirects to {final}, a page already listed"
        canonical = report.links.canonical
        if canonical:
            try:
                target = normalise(canonical)
            except ValueError:
                return True, ""
            elsewhere = url_key(target) not in (url_key(item.url), url_key(final))
            if (
                elsewhere
                and self.scope.classify(target)[0] != "skip"
                and not self.seen.add(url_key(target))
            ):
                return False, f"duplicate of {target} (rel=canonical)"
        return True, ""

    async def _follow(self, item: Queued, report: PageReport) -> None:
        max_depth = self.config.max_depth
        if "links" not in self.config.sources or (max_depth and item.depth + 1 > max_depth):
            return
        via = f"linked from {item.url}"
        for link in report.links.links:
            await self.offer(link, depth=item.depth + 1, via=via)

    async def offer(
        self, raw: str, *, depth: int, via: str, lastmod: str = "", seed: bool = False
    ) -> None:
        """Queue ``raw`` if it is in scope, allowed and new (``seed``: only if no link finds it)."""
        try:
            url = normalise(raw)
        except ValueError:
            return
        verdict, _ = self.scope.classify(url)
        if verdict == "skip":
            if self.seen.add(url_key(url)):
                self.counts.excluded += 1
            return
        rules = self.robots.cached(_origin(url))
        if rules is not None and not rules.allowed(url, self.robots.user_agent):
            if self.seen.add(url_key(url)):
                self.counts.blocked += 1
            return
        queued = Queued(url=url, depth=depth, via=via, lastmod=lastmod, listed=verdict == "list")
        if seed and not queued.listed:
            return  # a sitemap entry a glob leaves out: no reason to read it for links
        if seed:
            if lastmod and len(self._lastmods) < MAX_LASTMODS:
                self._lastmods[fingerprint(url_key(url))] = lastmod
            await self.seeds.push(queued)
            return
        if self.seen.add(url_key(url)):
            self.counts.discovered += 1
            await self.frontier.push(queued)
            self._changed.set()


class _Counters:
    __slots__ = ("blocked", "crawled", "discovered", "excluded", "listed")

    def __init__(self) -> None:
        self.discovered = 0
        self.crawled = 0
        self.excluded = 0
        self.blocked = 0
        self.listed = 0


def _origin(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"
