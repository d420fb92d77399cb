"""robots.txt, per host, parsed with protego (it understands ``*`` and ``$`` wildcards).

What a robots.txt answer means follows RFC 9309: a 4xx answer (no file) allows everything;
a 5xx answer or no answer at all disallows everything until a later run can read it. The
``Crawl-delay`` for our user agent is kept per host, and ``Sitemap:`` lines are collected.
A redirect robots.txt may not follow (another host, a loop) counts as "no file".

Verdicts are cached per URL: protego matches every rule on every call, and a robots.txt of
thousands of wildcard rules costs milliseconds per check (discovery also asks only after its
seen-set, so each URL is checked once, not once per link to it).
"""

from __future__ import annotations

import httpx
import structlog
import trio
from protego import Protego

from crawl4ai_llm_docs.fetch.http import FetchFailure
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, Route
from crawl4ai_llm_docs.fetch.resources import read_text

MAX_ROBOTS_BYTES = 512 * 1024  # Google reads the first 500 KiB
ROBOTS_TIMEOUT_S = 30.0
MAX_CRAWL_DELAY_S = 60.0
MAX_CACHED_VERDICTS = 8192  # per host


class HostRules:
    """What one host's robots.txt says for our user agent."""

    def __init__(
        self,
        origin: str,
        parser: Protego | None,
        *,
        allow_all: bool,
        note: str = "",
        unreachable: str = "",
    ) -> None:
        self.origin = origin
        self.unreachable = unreachable  # the host gave no answer at all: why
        self._parser = parser
        self._allow_all = allow_all
        self.note = note  # why everything is allowed or disallowed, for messages
        self._verdicts: dict[tuple[str, str], bool] = {}

    def allowed(self, url: str, user_agent: str) -> bool:
        if self._parser is None:
            return self._allow_all
        key = (url, user_agent)
        if (verdict := self._verdicts.get(key)) is None:
            verdict = bool(self._parser.can_fetch(url, user_agent))
            if len(self._verdicts) >= MAX_CACHED_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def crawl_delay(self, user_agent: str) -> float:
        if self._parser is None:
            return 0.0
        delay = self._parser.crawl_delay(user_agent)
        return min(float(delay), MAX_CRAWL_DELAY_S) if delay else 0.0

    @property
    def sitemaps(self) -> list[str]:
        return list(self._parser.sitemaps) if self._parser is not None else []


def parse_rules(origin: str, text: str) -> HostRules:
    return HostRules(origin, Protego.parse(text), allow_all=True)


class Robots:
    """robots.txt of every host seen, fetched once each (concurrent askers wait for it)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        user_agent: str,
        enabled: bool = True,
        route: Route = OPEN_ROUTE,
    ) -> None:
        self._client = client
        self._route = route
        self.user_agent = user_agent
        self.enabled = enabled
        self._hosts: dict[str, HostRules] = {}
        self._locks: dict[str, trio.Lock] = {}
        self._next_slot: dict[str, float] = {}

    async def rules(self, origin: str) -> HostRules:
        if not self.enabled:
            return HostRules(origin, None, allow_all=True, note="robots.txt ignored")
        if (found := self._hosts.get(origin)) is not None:
            return found
        lock = self._locks.setdefault(origin, trio.Lock())
        async with lock:
            if (found := self._hosts.get(origin)) is None:
                found = await self._fetch(origin)
                self._hosts[origin] = found
        return found

    def cached(self, origin: str) -> HostRules | None:
        return self._hosts.get(origin) if self.enabled else None

    async def _fetch(self, origin: str) -> HostRules:
        url = origin + "/robots.txt"
        try:
            with trio.fail_after(ROBOTS_TIMEOUT_S):
                _, text = await read_text(
                    self._client, url, max_bytes=MAX_ROBOTS_BYTES, route=self._route
                )
        except trio.TooSlowError:
            reason = f"timed out after {ROBOTS_TIMEOUT_S:g} s"
            return self._unreadable(origin, url, reason, unreachable=reason)
        except FetchFailure as failure:
            if failure.status is not None and 300 <= failure.status < 500:
                return HostRules(origin, None, allow_all=True, note=f"{url}: {failure.reason}")
            no_answer = failure.reason if failure.status is None else ""
            return self._unreadable(origin, url, failure.reason, unreachable=no_answer)
        # A large file of wildcard rules takes a while to parse: not on the trio thread.
        return await trio.to_thread.run_sync(parse_rules, origin, text)

    @staticmethod
    def _unreadable(origin: str, url: str, reason: str, *, unreachable: str) -> HostRules:
        note = f"{url} could not be read ({reason}), which means everything is disallowed"
        if not unreachable:
            structlog.get_logger().warning("warning", message=note + " (RFC 9309).")
        return HostRules(origin, None, allow_all=False, note=note, unreachable=unreachable)

    async def pace(self, origin: str) -> None:
        """Wait until the host's Crawl-delay since the previous request has passed."""
        rules = self.cached(origin)
        delay = rules.crawl_delay(self.user_agent) if rules is not None else 0.0
        if delay <= 0:
            return
        now = trio.current_time()
        slot = max(now, self._next_slot.get(origin, now))
        self._next_slot[origin] = slot + delay
        await trio.sleep_until(slot)
