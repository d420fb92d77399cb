"""The site's own lists of its pages, read once the roots answered: llms.txt, then sitemaps.

Both are bounded by one deadline, ``discover.sources_timeout`` from the moment they start:
what arrived by then is used, with a warning. llms.txt comes first (its order comes before
the links of the root; both candidate files are fetched at once), then the sitemaps, several
files at a time. They are read before the root's links are followed, so every page knows its
sitemap ``lastmod`` (a re-run skips pages whose lastmod did not move) whichever way it is
reached, and the order of the pages is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import structlog
import trio

from crawl4ai_llm_docs.config_schema import CrawlConfig, DiscoverConfig
from crawl4ai_llm_docs.discover.hops import Hops
from crawl4ai_llm_docs.discover.intake import Intake
from crawl4ai_llm_docs.discover.llms_txt import candidates, read_llms_txt
from crawl4ai_llm_docs.discover.scope import normalise
from crawl4ai_llm_docs.discover.sitemaps import SitemapUrl, read_sitemaps

log = structlog.get_logger()


class SiteLists:
    def __init__(
        self,
        roots: list[str],
        config: DiscoverConfig,
        crawl: CrawlConfig,
        intake: Intake,
        hops: Hops,
        *,
        spill_dir: Path | None,
    ) -> None:
        self.roots = roots
        self.config = config
        self.crawl = crawl
        self.intake = intake
        self.hops = hops
        self.spill_dir = spill_dir
        self.used: list[str] = []  # what was found, for messages

    async def read(self, client: httpx.AsyncClient) -> None:
        """Queue the llms.txt pages, keep the sitemap pages as seeds, within the deadline."""
        deadline = trio.current_time() + self.config.sources_timeout
        if "llms-txt" in self.config.sources:
            with trio.move_on_at(deadline) as timed:
                await self._llms_txt(client)
            if timed.cancelled_caught:
                log.warning(
                    "warning",
                    message=f"No llms.txt was read within discover.sources_timeout "
                    f"({self.config.sources_timeout:g} s): discovery goes on without it.",
                )
        if "sitemap" in self.config.sources and self.config.max_sitemaps:
            await self._sitemaps(client, deadline)

    async def _llms_txt(self, client: httpx.AsyncClient) -> None:
        locations = list(dict.fromkeys(c for root in self.roots for c in candidates(root)))
        found: dict[str, list[tuple[str, str]] | None] = {}
        route = self.hops.resource_route()

        async def read(location: str) -> None:
            found[location] = await read_llms_txt(client, location, route=route)

        async with trio.open_nursery() as nursery:  # every candidate at once
            for location in locations:
                nursery.start_soon(read, location)
        for root in self.roots:
            for location in candidates(root):  # the root's own llms.txt wins over the host's
                if await self._use(location, found.get(location)):
                    break

    async def _use(self, location: str, links: list[tuple[str, str]] | None) -> bool:
        if not links:
            return False
        in_scope = [url for url, _ in links if self._in_scope(url)]
        if not in_scope:
            log.info("warning", message=f"{location} lists no page in scope: ignored.")
            return False
        added = 0
        for url in in_scope:
            added += await self.intake.offer(url, depth=1, via=f"listed in {location}")
        self.used.append(location)
        log.info("warning", message=f"{location}: {added} new pages in scope.")
        return True

    def _in_scope(self, url: str) -> bool:
        try:
            return self.intake.scope.in_area(normalise(url))
        except ValueError:
            return False

    async def _sitemaps(self, client: httpx.AsyncClient, deadline: float) -> None:
        robots = self.intake.robots
        areas = self.intake.scope.areas
        locations: list[str] = []
        for origin in sorted({area.origin for area in areas}):
            if robots is not None:
                # Sitemap: lines naming another host are not fetched (accept below).
                locations += (await robots.rules(origin)).sitemaps
            locations.append(origin + "/sitemap.xml")
        locations += [a.origin + a.prefix + "sitemap.xml" for a in areas if a.prefix != "/"]
        found = 0

        async def on_url(entry: SitemapUrl) -> None:
            nonlocal found
            found += 1
            via = f"sitemap {entry.sitemap}"
            await self.intake.offer_seed(entry.loc, lastmod=entry.lastmod, via=via)

        def accept(location: str) -> bool:
            return self.hops.on_scope_host(location)

        files = await read_sitemaps(
            client,
            locations,
            on_url,
            max_files=self.config.max_sitemaps,
            accept=accept,
            route=self.hops.resource_route(),
            concurrency=self.crawl.max_concurrent,
            file_timeout=min(self.crawl.page_timeout * 2, self.config.sources_timeout),
            deadline=deadline,
            spill_dir=self.spill_dir,
        )
        if found:
            self.used.append(f"{files} sitemap file(s)")
        log.info("warning", message=f"Sitemaps: {found} URLs in {files} file(s) read.")
