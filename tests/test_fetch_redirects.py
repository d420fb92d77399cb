"""Redirects followed hop by hop (fetch/redirects.py), on a mock transport that records what
was asked: each hop is decided before it is sent, the caller's check sees every hop but the
first, and loops, other schemes and refusals end the fetch with a reason."""

from __future__ import annotations

import httpx
import pytest

from crawl4ai_llm_docs.fetch.http import FetchFailure, Validators, fetch
from crawl4ai_llm_docs.fetch.redirects import TOO_MANY_REDIRECTS, HopRefused, Route, follow

Chain = dict[str, httpx.Response]


def _client(chain: Chain, asked: list[httpx.Request]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return chain.get(request.url.path, httpx.Response(404))

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _to(location: str, status: int = 302) -> httpx.Response:
    return httpx.Response(status, headers={"location": location})


def _page(text: str = "<p>page</p>") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/html"}, text=text)


async def test_every_hop_but_the_first_goes_through_the_callers_check() -> None:
    chain = {"/a": _to("b"), "/b": _to("https://x.org/c", 301), "/c": _page()}
    asked: list[httpx.Request] = []
    checked: list[str] = []

    async def check(url: str) -> str | None:
        checked.append(url)
        return None

    route = Route(check_hop=check)
    async with (
        _client(chain, asked) as client,
        follow(client, "http://x.org/a", route=route) as got,
    ):
        assert str(got.url) == "https://x.org/c"
    assert checked == ["http://x.org/b", "https://x.org/c"]
    assert [str(r.url) for r in asked] == ["http://x.org/a", *checked]


async def test_a_refused_hop_is_never_requested() -> None:
    chain = {"/a": _to("/private/b"), "/private/b": _page()}
    asked: list[httpx.Request] = []

    async def check(url: str) -> str | None:
        return "disallowed by robots.txt" if "/private/" in url else None

    async with _client(chain, asked) as client:
        with pytest.raises(FetchFailure) as failure:
            await fetch(client, "http://x.org/a", max_bytes=1000, route=Route(check_hop=check))
    assert [r.url.path for r in asked] == ["/a"]
    assert failure.value.reason == (
        "redirect to http://x.org/private/b refused: disallowed by robots.txt"
    )
    assert failure.value.status == 302
    assert failure.value.final_url == "http://x.org/private/b"


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://x.org/f", "gopher://x.org/"])
async def test_only_http_and_https_are_followed(location: str) -> None:
    asked: list[httpx.Request] = []
    async with _client({"/a": _to(location)}, asked) as client:
        with pytest.raises(FetchFailure, match="unsupported URL scheme"):
            await fetch(client, "http://x.org/a", max_bytes=1000)
    assert len(asked) == 1


async def test_a_loop_stops_after_ten_hops() -> None:
    asked: list[httpx.Request] = []
    chain = {"/a": _to("/b"), "/b": _to("/a")}
    async with _client(chain, asked) as client:
        with pytest.raises(
            HopRefused,
            match=TOO_MANY_REDIRECTS.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?"),
        ):
            async with follow(client, "http://x.org/a"):
                pass
    assert len(asked) == 11  # the first request and ten hops


async def test_headers_go_with_every_hop_and_a_redirect_without_location_is_an_answer() -> None:
    asked: list[httpx.Request] = []
    chain = {"/a": _to("/b", 307), "/b": httpx.Response(302)}  # no Location: nowhere to go
    async with _client(chain, asked) as client:
        with pytest.raises(FetchFailure, match="HTTP 302 Found"):
            await fetch(client, "http://x.org/a", max_bytes=1000, validators=Validators(etag='"v"'))
    assert [r.headers.get("if-none-match") for r in asked] == ['"v"', '"v"']
