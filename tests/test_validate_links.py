"""``validate``'s fetching, on mock transports with trio's virtual clock (exact, instant):
link checks are bounded, honour robots.txt and its Crawl-delay, wait out Retry-After, try
GET when HEAD is refused; a fetched llms.txt is judged on its content type and charset."""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trio

from crawl4ai_llm_docs.config_schema import CrawlConfig
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.validate.links import LinkResult, check_links
from crawl4ai_llm_docs.validate.source import expand, fetch_source, read_file

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
SITE = "https://docs.example.org"


class Recorder:
    """A mock site: robots.txt, then whatever ``answer`` says; every request kept in order."""

    def __init__(self, answer: Handler, robots: str | int = "") -> None:
        self.answer = answer
        self.robots = robots
        self.requests: list[tuple[float, str, str]] = []  # (time, method, path)
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            if isinstance(self.robots, int):
                return httpx.Response(self.robots)
            return httpx.Response(200, text=self.robots)
        self.requests.append((trio.current_time(), request.method, request.url.path))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.answer(request)
        finally:
            self.in_flight -= 1

    def client(self) -> httpx.AsyncClient:
        # As the run's client: redirects are not followed unless a request asks.
        return httpx.AsyncClient(transport=httpx.MockTransport(self), follow_redirects=False)


async def _ok(request: httpx.Request) -> httpx.Response:
    await trio.sleep(1)
    return httpx.Response(200)


async def _check(site: Recorder, paths: list[str], **crawl: object) -> dict[str, LinkResult]:
    config = CrawlConfig(**{"max_concurrent": 4, "retries": 2, "page_timeout": 30, **crawl})  # type: ignore[arg-type]
    async with site.client() as client:
        results = await check_links(
            client, [SITE + path for path in paths], crawl=config, rng=random.Random(1)
        )
    return {url.removeprefix(SITE): result for url, result in results.items()}


async def test_links_are_checked_a_bounded_number_at_a_time(autojump_clock: object) -> None:
    site = Recorder(_ok)
    results = await _check(site, [f"/p{n}.html" for n in range(20)], max_concurrent=3)
    assert all(result.code == "" for result in results.values())
    assert site.most_in_flight == 3
    assert len(site.requests) == 20  # one HEAD each, no GET after a 200
    assert trio.current_time() == pytest.approx(7, abs=0.01)  # ceil(20 / 3) seconds of answers


async def test_each_link_is_asked_once_whatever_the_fragment(autojump_clock: object) -> None:
    site = Recorder(_ok)
    results = await _check(site, ["/a.html", "/a.html#x", "/a.html#y", "/b.html"])
    assert sorted(results) == ["/a.html", "/b.html"]
    assert sorted(path for _, _, path in site.requests) == ["/a.html", "/b.html"]


async def test_crawl_delay_spaces_the_requests_to_a_host(autojump_clock: object) -> None:
    site = Recorder(_ok, robots="User-agent: *\nCrawl-delay: 5\n")
    await _check(site, [f"/p{n}.html" for n in range(4)])
    times = [when for when, _, _ in site.requests]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([5, 5, 5])


async def test_a_disallowed_link_is_a_fault_and_never_requested(autojump_clock: object) -> None:
    site = Recorder(_ok, robots="User-agent: *\nDisallow: /private/\n")
    results = await _check(site, ["/private/a.html", "/public.html"])
    assert results["/private/a.html"].code == "link-robots"
    assert "robots.txt" in results["/private/a.html"].reason
    assert results["/public.html"].code == ""
    assert [path for _, _, path in site.requests] == ["/public.html"]


async def test_robots_ignored_when_asked(autojump_clock: object) -> None:
    site = Recorder(_ok, robots="User-agent: *\nDisallow: /\n")
    config = CrawlConfig(max_concurrent=2)
    async with site.client() as client:
        results = await check_links(client, [SITE + "/a.html"], crawl=config, respect_robots=False)
    assert results[SITE + "/a.html"].code == ""


async def test_an_unreadable_robots_txt_disallows_everything(autojump_clock: object) -> None:
    site = Recorder(_ok, robots=503)
    results = await _check(site, ["/a.html"])
    assert results["/a.html"].code == "link-robots"
    assert "everything is disallowed" in results["/a.html"].reason
    assert site.requests == []


async def test_retry_after_is_waited_out_then_the_link_answers(autojump_clock: object) -> None:
    hits: list[float] = []

    async def limited(request: httpx.Request) -> httpx.Response:
        hits.append(trio.current_time())
        if len(hits) == 1:
            return httpx.Response(429, headers={"retry-after": "7"})
        return httpx.Response(200)

    results = await _check(Recorder(limited), ["/a.html"])
    assert results["/a.html"].code == ""
    # HEAD answered 429: no GET at once, the same HEAD again 7 s later.
    assert hits == pytest.approx([0, 7])


async def test_a_link_still_failing_after_the_retries(autojump_clock: object) -> None:
    async def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    site = Recorder(busy)
    results = await _check(site, ["/a.html"], retries=1)
    assert results["/a.html"] == LinkResult(
        url=SITE + "/a.html", code="link-status", reason="HTTP 503 Service Unavailable"
    )
    assert [method for _, method, _ in site.requests] == ["HEAD", "HEAD"]


async def test_get_when_head_is_refused_and_other_answers(autojump_clock: object) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/no-head.html":
            return httpx.Response(405 if request.method == "HEAD" else 200)
        if path == "/gone.html":
            return httpx.Response(404)
        if path == "/empty.html":
            return httpx.Response(204)
        if path == "/moved.html":
            return httpx.Response(301, headers={"location": "/no-head.html"})
        if path == "/down.html":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        await trio.sleep(60)
        return httpx.Response(200)

    site = Recorder(answer)
    paths = [
        "/no-head.html",
        "/gone.html",
        "/empty.html",
        "/moved.html",
        "/down.html",
        "/slow.html",
    ]
    results = await _check(site, paths, retries=0, page_timeout=10)
    codes = {path: (result.code, result.reason) for path, result in results.items()}
    assert codes == {
        "/no-head.html": ("", ""),
        "/moved.html": ("", ""),
        "/gone.html": ("link-status", "HTTP 404 Not Found"),
        "/empty.html": ("link-status", "HTTP 204, not 200"),
        "/down.html": ("link-failed", "connection failed: [Errno 111] Connection refused"),
        "/slow.html": ("link-failed", "timed out after 10 s"),
    }


# ---------------------------------------------------------------- a fetched llms.txt

GOOD = "# Example\n\n> Summary.\n\nDetails.\n\n## Docs\n\n- [A](https://x.org/a): a\n"


@pytest.mark.parametrize(
    ("content_type", "body", "codes"),
    [
        ("text/plain; charset=utf-8", GOOD, []),
        ("text/markdown; charset=utf-8", GOOD, []),
        ("text/plain", GOOD, []),  # plain ASCII needs no charset
        ("text/plain", GOOD.replace("Summary", "Résumé"), ["charset"]),
        ("text/plain; charset=iso-8859-1", GOOD, ["charset"]),
        ("text/html; charset=utf-8", GOOD, ["content-type"]),
        ("application/octet-stream", GOOD, ["content-type"]),
        (None, GOOD, ["content-type"]),
    ],
)
async def test_how_the_file_is_served(
    content_type: str | None, body: str, codes: list[str]
) -> None:
    async def serve(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": content_type} if content_type else {}
        return httpx.Response(200, content=body.encode(), headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        source = await fetch_source(client, SITE + "/llms.txt")
    assert [fault.code for fault in source.faults] == codes
    assert source.text == body
    assert source.url == SITE + "/llms.txt"


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        (404, b"", {}, "HTTP 404 Not Found"),
        (200, b"\x00\x01binary", {"content-type": "text/plain"}, "not a text file"),
        (200, b"", {"content-length": str(64 * 2**20)}, "larger than 16 MB"),
    ],
)
async def test_a_url_that_cannot_be_validated(
    status: int, body: bytes, headers: dict[str, str], message: str
) -> None:
    async def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        with pytest.raises(InputError, match=message) as caught:
            await fetch_source(client, SITE + "/llms.txt")
    assert SITE + "/llms.txt" in caught.value.message


def test_files_directories_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "docs" / "guide").mkdir(parents=True)
    for path in ("docs/guide/llms.txt", "llms.txt", "docs/llms.txt"):
        (tmp_path / path).write_text(GOOD)
    found = expand([str(tmp_path), "https://x.org/llms.txt"])
    assert [Path(name).relative_to(tmp_path).as_posix() for name in found[:3]] == [
        "llms.txt",
        "docs/llms.txt",
        "docs/guide/llms.txt",
    ]
    assert found[3] == "https://x.org/llms.txt"

    latin = tmp_path / "latin.txt"
    latin.write_bytes(GOOD.replace("Details", "D\xe9tails").encode("latin-1"))
    source = read_file(str(latin))
    assert [(fault.code, fault.line) for fault in source.faults] == [("not-utf8", 5)]
    assert "D\ufffdtails" in source.text

    (tmp_path / "empty").mkdir()
    for bad, message in [
        (tmp_path / "empty", "no llms.txt in it"),
        (tmp_path / "missing.txt", "does not exist"),
        ("ftp://x.org/llms.txt", "only http:// and https://"),
    ]:
        with pytest.raises(InputError, match=message):
            expand([str(bad)])


async def test_a_link_check_never_goes_where_the_route_refuses(autojump_clock: object) -> None:
    """An llms.txt from a loopback site (the route allows loopback only): a link to a private
    address and a link that redirects to a link-local one are refused by decision, and no
    request is ever made to either address."""
    from crawl4ai_llm_docs.fetch.guard import AddressGuard
    from crawl4ai_llm_docs.fetch.redirects import Route

    asked: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/"})
        return httpx.Response(200)

    config = CrawlConfig(max_concurrent=2, retries=0, page_timeout=30)
    urls = ["http://127.0.0.1:9/moved", "http://10.0.0.7/secret", "http://127.0.0.1:9/ok"]
    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
        results = await check_links(
            client, urls, crawl=config, route=Route(guard=AddressGuard(("loopback",)))
        )
    assert results["http://127.0.0.1:9/ok"].code == ""
    for url in urls[:2]:
        assert results[url].code == "link-failed", results[url]
        assert "refused" in results[url].reason
    assert not [url for url in asked if "169.254" in url or "10.0.0.7" in url]
