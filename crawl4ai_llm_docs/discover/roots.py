"""The roots: refused with one clear paragraph when they cannot be used.

A root that robots.txt disallows, that does not answer, is not HTML, or redirects to another
host (or to a page robots.txt disallows) is an ``InputError`` (exit 2) naming the problem
and the fix; nothing is written.
"""

from __future__ import annotations

import structlog

from crawl4ai_llm_docs.discover.frontier import Queued
from crawl4ai_llm_docs.discover.hops import Refusal
from crawl4ai_llm_docs.discover.robots import Robots
from crawl4ai_llm_docs.discover.scope import directory_of, origin_of
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.models import PageReport

log = structlog.get_logger()


async def check_robots(roots: list[str], robots: Robots) -> None:
    """Read each root host's robots.txt; a root it disallows is refused."""
    for root in roots:
        rules = await robots.rules(origin_of(root))
        if rules.unreachable:
            raise InputError(
                f"The root URL {root} did not answer ({rules.unreachable}), so there is nothing "
                "to discover and nothing was written. Check the address and your network, or "
                "pass a URL file instead."
            )
        if delay := rules.crawl_delay(robots.user_agent):
            log.warning(
                "warning",
                message=f"{origin_of(root)}/robots.txt asks for a Crawl-delay of {delay:g} s: "
                f"one page every {delay:g} s from this host.",
            )
        if not rules.allowed(root, robots.user_agent):
            why = f" ({rules.note})" if rules.note else ""
            raise InputError(_disallowed(root, root, robots.user_agent, why))


def _disallowed(root: str, url: str, agent: str, why: str = "") -> str:
    where = "is" if url == root else f"redirects to {url}, which is"
    return (
        f"The root URL {root} {where} disallowed by {origin_of(url)}/robots.txt for the user "
        f"agent {agent!r}{why}, so nothing was crawled. Start from a page that robots.txt "
        "allows, give a URL file instead, or, only for a site you own, set "
        "discover.respect_robots = false."
    )


def check_root(item: Queued, report: PageReport, refusal: Refusal | None, agent: str) -> None:
    """A root must answer with HTML on its own host."""
    root = item.url
    if refusal is not None and refusal.kind == "robots":
        raise InputError(_disallowed(root, refusal.target, agent))
    if refusal is not None and refusal.why.startswith("on another host"):
        _another_host(root, refusal.target)
    if refusal is not None:
        raise InputError(
            f"The root URL {root} redirects to {refusal.target}, which cannot be followed "
            f"({refusal.why}), so nothing was written. Start from another page of the site, "
            "or pass a URL file instead."
        )
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


def _another_host(root: str, final: str) -> None:
    start = directory_of(final) if final.endswith("/") else final
    raise InputError(
        f"The root URL {root} redirects to another host ({final}), so discovery (which "
        f"stays on the root's host) would find nothing and nothing was written. Start from "
        f"the page it redirects to, e.g. `{start}`, if that is the documentation you want."
    )
