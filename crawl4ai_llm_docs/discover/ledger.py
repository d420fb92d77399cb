"""What discovery found and what it left out, and why: nothing in scope is dropped silently.

Every in-scope URL that is not listed gets a kind (the report's counts) and a reason (a
comment line of ``map``'s file, through ``on_left_out``). Links out of scope are only counted:
a documentation site links to thousands of pages elsewhere.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import Literal

from crawl4ai_llm_docs.observe.snapshot import DiscoveryView

LeftOutKind = Literal[
    "skip_rule",  # a generated index, a search page, a source view, not an HTML file
    "robots",  # disallowed by robots.txt
    "noindex",
    "duplicate",  # rel=canonical or a redirect to a page already listed
    "broken",  # 4xx
    "not_html",  # answered with another content type
    "glob",  # --include / --exclude: read for its links only
    "redirect",  # redirects somewhere discovery may not follow
    "limit",  # --max-pages, --max-depth, a cap on a sitemap or llms.txt
]
OnLeftOut = Callable[[str, str], Awaitable[None]]  # (url, reason)
_SAID: dict[str, str] = {
    "skip_rule": "by a skip rule",
    "robots": "by robots.txt",
    "noindex": "noindex",
    "duplicate": "duplicates",
    "broken": "broken links",
    "not_html": "not HTML",
    "glob": "by --include/--exclude",
    "redirect": "redirecting elsewhere",
    "limit": "by a limit",
}


def describe(view: DiscoveryView) -> str:
    """ "left out in scope: 3 by robots.txt, 1 noindex; 120 links out of scope" or similar."""
    kinds = ", ".join(f"{n} {_SAID.get(kind, kind)}" for kind, n in view.left_out.items() if n)
    text = f"left out in scope: {kinds}" if kinds else "nothing in scope left out"
    return text + f"; {view.out_of_scope} links out of scope"


class Ledger:
    """Discovery's running counts (the live view, ``metrics`` events and the run report)."""

    def __init__(self, on_left_out: OnLeftOut | None = None) -> None:
        self.on_left_out = on_left_out
        self.discovered = 0  # distinct URLs in scope found
        self.crawled = 0
        self.excluded = 0  # not listed, robots.txt aside (out of scope included)
        self.blocked = 0  # disallowed by robots.txt
        self.listed = 0
        self.out_of_scope = 0
        self.left_out: collections.Counter[LeftOutKind] = collections.Counter()

    def count(self, kind: LeftOutKind) -> None:
        """A URL left out for ``kind`` whose line someone else writes (an emitted page's)."""
        self.left_out[kind] += 1
        if kind == "robots":
            self.blocked += 1
        else:
            self.excluded += 1

    async def leave_out(self, url: str, kind: LeftOutKind, reason: str) -> None:
        """A URL left out before it was crawled: counted, and its line written."""
        self.count(kind)
        if self.on_left_out is not None:
            await self.on_left_out(url, reason)

    def outside(self) -> None:
        self.out_of_scope += 1
        self.excluded += 1

    def view(self, *, queued: int) -> DiscoveryView:
        return DiscoveryView(
            discovered=self.discovered,
            queued=queued,
            crawled=self.crawled,
            excluded=self.excluded,
            blocked=self.blocked,
            listed=self.listed,
            out_of_scope=self.out_of_scope,
            left_out=dict(sorted(self.left_out.items())),
        )
