"""Browser mode decides every request Chromium makes (crawl/intercept.py): redirect hops and
subresources go through the page's Route, so a refused address is never asked. "Another
address" is the server itself under the name localhost, which the route's resolver says is
link-local: the refusal is decided, and the hit counter proves nothing was sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.browser import find_chromium, open_browser
from crawl4ai_llm_docs.fetch.guard import AddressGuard, Resolver
from crawl4ai_llm_docs.fetch.http import FetchFailure
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.testing.hostile.payloads import Answer
from crawl4ai_llm_docs.testing.hostile.server import HostileServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None, reason="no Chromium"),
]
TEXT = "Documentation text. " * 40


class _LocalhostIsLinkLocal(Resolver):
    async def addresses(self, host: str) -> tuple[str, ...]:
        return ("169.254.169.254",) if host == "localhost" else (host,)


def _routes() -> dict[str, Answer]:
    return {
        "/page.html": Answer.html(
            f'<html><body><main><p>{TEXT}</p><img src="{{other}}/pixel.png"></main></body></html>'
        ),
        "/to-metadata.html": Answer.redirect("{other}/secret.html"),
        "/to-private.html": Answer.redirect("/private/secret.html"),
        "/private/secret.html": Answer.html("<p>secret</p>"),
        "/secret.html": Answer.html("<p>secret</p>"),
    }


async def test_the_browser_never_asks_what_the_route_refuses(tmp_path: Path) -> None:
    executable = find_chromium()
    assert executable is not None

    async def check(url: str) -> str | None:
        return "disallowed by robots.txt" if "/private/" in url else None

    route = Route(AddressGuard(["loopback"]), _LocalhostIsLinkLocal(), check)
    config = CrawlConfig(mode="browser", page_timeout=20.0)
    with HostileServer(_routes()).running() as site:
        with trio.fail_after(90):
            async with open_browser(executable, config=config, cache_dir=tmp_path) as browser:
                page = await browser.fetch(site.url("/page.html"), route=route)
                with pytest.raises(FetchFailure) as metadata:
                    await browser.fetch(site.url("/to-metadata.html"), route=route)
                with pytest.raises(FetchFailure) as private:
                    await browser.fetch(site.url("/to-private.html"), route=route)
        hits = dict(site.hits)
    assert "Documentation text." in page.html
    assert metadata.value.reason == (
        f"redirect to {site.other_url}/secret.html refused: localhost (169.254.169.254) is a "
        "link-local address (where cloud metadata services answer) and the root URL is not"
    )
    assert private.value.reason == (
        f"redirect to {site.url('/private/secret.html')} refused: disallowed by robots.txt"
    )
    assert hits.get("/pixel.png", 0) == 0  # a subresource at a refused address
    assert hits.get("/secret.html", 0) == 0
    assert hits.get("/private/secret.html", 0) == 0
    assert hits["/page.html"] == 1
