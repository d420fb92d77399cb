"""Which URLs enter the frontier: each one new, in scope, not skipped, allowed by robots.txt.

Cheapest test first: the seen-set (a fingerprint lookup) before the scope's globs and before
robots.txt (whose verdicts cost milliseconds for a file of many wildcard rules), so a link
that every page repeats costs one lookup after its first time.

Sitemap entries (seeds) are judged when they are crawled, after the pages links reach, in
sitemap order: the same on every run, however the sitemaps arrived. Before they are queued
they are only de-duplicated (among themselves and against pages already seen) and kept in
scope, so a sitemap of a million copies of one URL queues one.
"""

from __future__ import annotations

from pathlib import Path

from crawl4ai_llm_docs.discover.frontier import Queued, SeenSet, SpillQueue, fingerprint
from crawl4ai_llm_docs.discover.ledger import Ledger
from crawl4ai_llm_docs.discover.robots import Robots
from crawl4ai_llm_docs.discover.scope import Scope, normalise, origin_of, url_key

# Sitemap lastmods kept for pages a link reaches before their sitemap entry does (the
# refresh state skips a page whose lastmod did not move); past this many, such pages are
# refreshed by conditional requests alone. About 100 bytes each.
MAX_LASTMODS = 50_000


class Intake:
    def __init__(self, scope: Scope, ledger: Ledger, spill_dir: Path | None) -> None:
        self.scope = scope  # replaced when a root's redirect widens it
        self.ledger = ledger
        self.robots: Robots | None = None  # set once discovery has a client
        self.frontier = SpillQueue(spill_dir)
        self.seeds = SpillQueue(spill_dir)  # sitemap pages, crawled once links run dry
        self.seen = SeenSet()
        self._seeded = SeenSet()
        self._lastmods: dict[int, str] = {}  # url_key fingerprint -> sitemap lastmod

    async def offer(self, raw: str, *, depth: int, via: str) -> bool:
        """Queue ``raw`` (a link, an llms.txt entry) if it is admitted; True when queued."""
        try:
            url = normalise(raw)
        except ValueError:
            return False
        queued = await self.admit(url, depth=depth, via=via)
        if queued is None:
            return False
        self.ledger.discovered += 1
        await self.frontier.push(queued)
        return True

    async def admit(self, url: str, *, depth: int, via: str, lastmod: str = "") -> Queued | None:
        """The queue entry of a fetch-form ``url``, or None (seen, or left out with a reason)."""
        key = url_key(url)
        if key in self.seen:
            return None
        self.seen.add(key)
        if not self.scope.in_area(url):
            self.ledger.outside()
            return None
        verdict, why = self.scope.classify(url)
        if verdict == "skip":
            await self.ledger.leave_out(url, "skip_rule", why)
            return None
        rules = self.robots.cached(origin_of(url)) if self.robots is not None else None
        if rules is not None and not rules.allowed(
            url, self.robots.user_agent if self.robots else ""
        ):
            await self.ledger.leave_out(url, "robots", "disallowed by robots.txt")
            return None
        return Queued(url=url, depth=depth, via=via, lastmod=lastmod, listed=verdict == "list")

    async def too_deep(self, raw: str, *, max_depth: int) -> None:
        """A link one hop past ``--max-depth``: left out, with that reason, if it is new."""
        try:
            url = normalise(raw)
        except ValueError:
            return
        if await self.admit(url, depth=max_depth + 1, via="") is not None:
            await self.ledger.leave_out(url, "limit", f"deeper than --max-depth {max_depth}")

    # ---------------------------------------------------------------- sitemap seeds

    async def offer_seed(self, raw: str, *, lastmod: str, via: str) -> None:
        try:
            url = normalise(raw)
        except ValueError:
            return
        key = url_key(url)
        if key in self.seen or not self._seeded.add(key):
            return  # reached by a link already, or listed twice in the sitemaps
        if not self.scope.in_area(url):
            self.ledger.outside()
            return
        if lastmod and len(self._lastmods) < MAX_LASTMODS:
            self._lastmods[fingerprint(key)] = lastmod
        await self.seeds.push(Queued(url=url, depth=1, via=via, lastmod=lastmod))

    async def next_seed(self) -> Queued | None:
        """The next sitemap page no link reached, judged now; None when none is left."""
        while (seed := await self.seeds.pop()) is not None:
            queued = await self.admit(seed.url, depth=1, via=seed.via, lastmod=seed.lastmod)
            if queued is None:
                continue
            if not queued.listed:  # a glob leaves it out: no reason to read it for links
                await self.ledger.leave_out(queued.url, "glob", _glob_reason(self.scope, queued))
                continue
            self.ledger.discovered += 1
            return queued
        return None

    def lastmod_for(self, url: str) -> str:
        return self._lastmods.pop(fingerprint(url_key(url)), "")

    # ---------------------------------------------------------------- the end

    async def leave_the_rest(self, reason: str) -> int:
        """Everything still queued is left out for ``reason`` (a limit); return how many."""
        left = 0
        while (item := await self.frontier.pop()) is not None:
            left += 1
            await self.ledger.leave_out(item.url, "limit", reason)
        while (seed := await self.seeds.pop()) is not None:
            if self.seen.add(url_key(seed.url)):
                left += 1
                await self.ledger.leave_out(seed.url, "limit", reason)
        return left

    def close(self) -> None:
        self.frontier.close()
        self.seeds.close()


def _glob_reason(scope: Scope, queued: Queued) -> str:
    return scope.classify(queued.url)[1] + " (a sitemap page: not read for its links)"
