"""Redirects discovery may follow: decided at every hop, before the hop is requested.

A page's redirect must stay in scope and be allowed by robots.txt (read first for an origin
not seen yet); a root's may go anywhere on the root's host (the scope then follows where it
lands). The site's own files (robots.txt, llms.txt, sitemaps) may only redirect within the
hosts of the scope. A refused hop is remembered for the page it belongs to, so the page is
left out with that reason (not reported as a failure).
"""

from __future__ import annotations

from msgspec import Struct

from crawl4ai_llm_docs.discover.intake import Intake
from crawl4ai_llm_docs.discover.ledger import LeftOutKind
from crawl4ai_llm_docs.discover.scope import host_of, normalise, origin_of
from crawl4ai_llm_docs.fetch.guard import AddressGuard, Resolver
from crawl4ai_llm_docs.fetch.redirects import Route, refused_message


class Refusal(Struct, frozen=True, kw_only=True):
    kind: LeftOutKind
    target: str
    why: str

    @property
    def reason(self) -> str:
        return refused_message(self.target, self.why, hop=1)


class Hops:
    def __init__(self, roots: list[str], intake: Intake, resolver: Resolver) -> None:
        self._root_hosts = [host_of(root) for root in roots]
        self._intake = intake
        self.guard = AddressGuard()  # replaced by the roots' own guard when discovery starts
        self.resolver = resolver
        self.refused: dict[int, Refusal] = {}  # emitted index -> its refused hop

    def page_route(self, index: int) -> Route:
        """How the page emitted as ``index`` is fetched: every redirect hop checked."""

        async def check(url: str) -> str | None:
            refusal = await self._check(index, url)
            if refusal is None:
                return None
            self.refused[index] = refusal
            return refusal.why

        return Route(self.guard, self.resolver, check)

    def resource_route(self) -> Route:
        """robots.txt, llms.txt and sitemaps: redirects only within the scope's hosts."""

        async def check(url: str) -> str | None:
            return None if self.on_scope_host(url) else "another host than the site's"

        return Route(self.guard, self.resolver, check)

    def on_scope_host(self, url: str) -> bool:
        hosts = {host_of(area.origin) for area in self._intake.scope.areas}
        return host_of(url) in hosts

    async def _check(self, index: int, url: str) -> Refusal | None:
        try:
            target = normalise(url)
        except ValueError as exc:
            return Refusal(
                kind="redirect", target=url, why=f"an address that cannot be used ({exc})"
            )
        scope = self._intake.scope
        if index < len(self._root_hosts):  # a root: anywhere on its host
            if host_of(target) != self._root_hosts[index]:
                return Refusal(kind="redirect", target=target, why="on another host than the root")
        elif not scope.in_area(target):
            return Refusal(kind="redirect", target=target, why="outside the scope")
        else:
            verdict, why = scope.classify(target)
            if verdict == "skip":
                return Refusal(kind="skip_rule", target=target, why=why)
        robots = self._intake.robots
        if robots is not None and robots.enabled:
            rules = await robots.rules(origin_of(target))
            if not rules.allowed(target, robots.user_agent):
                return Refusal(kind="robots", target=target, why="disallowed by robots.txt")
        return None
