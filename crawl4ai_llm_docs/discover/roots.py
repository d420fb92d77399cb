"""The roots: refused with one clear paragraph when unusable, then the site's own lists.

A root that robots.txt disallows, that does not answer, is not HTML or redirects to another
host is an ``InputError`` (exit 2) naming the problem and the fix; nothing is written. Once
the roots answered, the site's llms.txt (its pages queued in its order) and its sitemaps
(kept as seeds, crawled after the pages links reach) are read.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from crawl4ai_llm_docs.config_schema import DiscoverConfig
from crawl4ai_llm_docs.discover.frontier import Queued
from crawl4ai_llm_docs.discover.llms_txt import candidates, read_llms_txt
from crawl4ai_llm_docs.discover.robots import Robots
from crawl4ai_llm_docs.discover.scope import Scope, directory_of, normalise
from crawl4ai_llm_docs.discover.sitemaps import SitemapUrl, read_sitemaps
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.models import PageReport

log = structlog.get_logger()


class _Counts(Protocol):
    discovered: int


class Discovery(Protocol):
    """What the roots read and feed of ``engine.Discovery`` (which calls them: a protocol,
    so this module needs no import of the engine)."""

    roots: list[str]
    config: DiscoverConfig
    scope: Scope
    sources_used: list[str]

    @property
    def client(self) -> httpx.AsyncClient: ...

    @property
    def robots(self) -> Robots: ...

    @property
    def counts(self) -> _Counts: ...

    async def offer(
        self, raw: str, *, depth: int, via: str, lastmod: str = "", seed: bool = False
    ) -> None: ...


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def check_robots(discovery: Discovery) -> None:
    """Read each root host's robots.txt; a root it disallows is refused."""
    robots = discovery.robots
    for root in discovery.roots:
        rules = await robots.rules(_origin(root))
        if rules.unreachable:
            raise InputError(
                f"The root URL {root} did not answer ({rules.unreachable}), so there is nothing "
                "to discover and nothing was written. Check the address and your network, or "
                "pass a URL file instead."
            )
        if delay := rules.crawl_delay(robots.user_agent):
            log.warning(
                "warning",
                message=f"{_origin(root)}/robots.txt asks for a Crawl-delay of {delay:g} s: "
                f"one page every {delay:g} s from this host.",
            )
        if not rules.allowed(root, robots.user_agent):
            why = f" ({rules.note})" if rules.note else ""
            raise InputError(
                f"The root URL {root} is disallowed by {_origin(root)}/robots.txt for the user "
                f"agent {robots.user_agent!r}{why}, so nothing was crawled. Start from a page "
                "that robots.txt allows, give a URL file instead, or, only for a site you own, "
                "set discover.respect_robots = false."
            )


def check_root(discovery: Discovery, item: Queued, report: PageReport) -> None:
    """A root must answer with HTML on its own host."""
    root = item.url
    if report.error is not None:
        if report.error.startswith("not HTML"):
            problem = f"is {report.error}"
            fix = "Give the address of an HTML page of the documentation (its index page)"
        elif report.status is not None:
            problem = f"answered {report.error}"
            fix = "Check the address in a browser; give the documentation's index page"
        else:
            problem = f"did not answer ({report.error})"
            fix = (
                "Check the address and your network (and --insecure for a self-signed certificate)"
            )
        raise InputError(
            f"The root URL {root} {problem}, so there is nothing to discover and nothing was "
            f"written. {fix}, or pass a URL file instead."
        )
    final = report.final_url
    if urlsplit(final).hostname != urlsplit(root).hostname:
        raise InputError(
            f"The root URL {root} redirects to another host ({final}), so discovery (which "
            f"stays on the root's host) would find nothing and nothing was written. Start from "
            f"the page it redirects to, e.g. `{directory_of(final) if final.endswith('/') else final}`, "
            "if that is the documentation you want."
        )


async def add_sources(discovery: Discovery) -> None:
    """Queue the llms.txt pages, keep the sitemap pages as seeds (in that order of priority)."""
    sources = discovery.config.sources
    if "llms-txt" in sources:
        await _add_llms_txt(discovery)
    if "sitemap" in sources and discovery.config.max_sitemaps:
        await _add_sitemaps(discovery)


async def _add_llms_txt(discovery: Discovery) -> None:
    checked: set[str] = set()
    for root in discovery.roots:
        for location in candidates(root):
            if location in checked:
                continue
            checked.add(location)
            links = await read_llms_txt(discovery.client, location)
            if not links:
                continue
            in_scope = [url for url, _ in links if _in_scope(discovery, url)]
            if not in_scope:
                log.info("warning", message=f"{location} lists no page in scope: ignored.")
                continue
            before = discovery.counts.discovered
            for url in in_scope:
                await discovery.offer(url, depth=1, via=f"listed in {location}")
            discovery.sources_used.append(location)
            log.info(
                "warning",
                message=f"{location}: {discovery.counts.discovered - before} new pages in scope.",
            )
            break  # the root's own llms.txt wins over the host's


def _in_scope(discovery: Discovery, url: str) -> bool:
    try:
        return discovery.scope.classify(normalise(url))[0] != "skip"
    except ValueError:
        return False


async def _add_sitemaps(discovery: Discovery) -> None:
    locations: list[str] = []
    origins = {area.origin for area in discovery.scope.areas}
    for origin in sorted(origins):
        rules = await discovery.robots.rules(origin)
        locations += rules.sitemaps
        locations.append(origin + "/sitemap.xml")
    for area in discovery.scope.areas:
        if area.prefix != "/":
            locations.append(area.origin + area.prefix + "sitemap.xml")
    listed_in_robots = set(locations)
    found = 0

    async def on_url(entry: SitemapUrl) -> None:
        nonlocal found
        found += 1
        await discovery.offer(
            entry.loc,
            depth=1,
            via=f"sitemap {entry.sitemap}",
            lastmod=entry.lastmod,
            seed=True,
        )

    def accept(location: str) -> bool:
        return location in listed_in_robots or _origin(location) in origins

    files = await read_sitemaps(
        discovery.client,
        locations,
        on_url,
        max_files=discovery.config.max_sitemaps,
        accept=accept,
    )
    if found:
        discovery.sources_used.append(f"{files} sitemap file(s)")
    log.info("warning", message=f"Sitemaps: {found} URLs in {files} file(s) read.")
