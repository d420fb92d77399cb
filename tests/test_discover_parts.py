"""Discovery's parts one by one: normalisation, scope, links, robots, sitemaps, llms.txt, frontier."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import httpx
import pytest
import trio

from crawl4ai_llm_docs.crawl import links as links_module
from crawl4ai_llm_docs.crawl.links import page_links
from crawl4ai_llm_docs.discover.frontier import Queued, SeenSet, SpillQueue
from crawl4ai_llm_docs.discover.llms_txt import candidates, parse_llms_txt, read_llms_txt
from crawl4ai_llm_docs.discover.robots import Robots, parse_rules
from crawl4ai_llm_docs.discover.scope import (
    Scope,
    directory_of,
    looks_like_html,
    normalise,
    url_key,
)
from crawl4ai_llm_docs.discover.sitemaps import SitemapUrl, read_sitemaps

# ---------------------------------------------------------------- normalisation and scope


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://Docs.Example.com:443/a/b.html#part", "https://docs.example.com/a/b.html"),
        ("http://x.org:80/", "http://x.org/"),
        ("http://x.org:8080/a", "http://x.org:8080/a"),
        ("https://x.org/a?utm_source=n&utm_medium=m&page=2&fbclid=1", "https://x.org/a?page=2"),
        ("https://x.org/a/./b/../c.html", "https://x.org/a/c.html"),
        ("https://x.org//a//b/", "https://x.org/a/b/"),
        ("https://x.org", "https://x.org/"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_refuses_what_is_not_a_page_address() -> None:
    for bad in ("ftp://x.org/a", "/relative", "https://user:pw@x.org/"):
        with pytest.raises(ValueError, match=r"\w"):
            normalise(bad)


def test_one_key_for_index_html_directory_and_trailing_slash() -> None:
    forms = ("https://x.org/a/", "https://x.org/a", "https://x.org/a/index.html")
    assert len({url_key(normalise(form)) for form in forms}) == 1
    assert url_key("https://x.org/a/b.html") != url_key("https://x.org/a/")
    assert url_key("https://x.org/a?page=2") != url_key("https://x.org/a")


def test_directory_of_a_root() -> None:
    assert directory_of("https://x.org/en/stable/") == "/en/stable/"
    assert directory_of("https://x.org/en/stable/index.html") == "/en/stable/"
    assert directory_of("https://x.org") == "/"


def test_only_html_links_are_pages() -> None:
    assert looks_like_html("https://x.org/a/b.html")
    assert looks_like_html("https://x.org/a/b/")
    assert looks_like_html("https://x.org/v1.2/intro")
    for other in ("logo.png", "manual.pdf", "src.tar.gz", "x.zip", "style.css", "objects.inv"):
        assert not looks_like_html("https://x.org/" + other)


def test_scope_is_the_roots_host_and_directory() -> None:
    scope = Scope.for_roots(["https://x.org/en/stable/index.html"])
    assert scope.classify("https://x.org/en/stable/api.html") == ("list", "")
    assert scope.classify("https://x.org/en/stable")[0] == "list"  # the directory itself
    for outside in (
        "https://x.org/en/latest/api.html",  # another version
        "https://x.org/fr/stable/api.html",  # another language
        "https://other.org/en/stable/api.html",
        "http://x.org/en/stable/api.html",  # another scheme is another origin
    ):
        assert scope.classify(outside) == ("skip", "outside the scope"), outside
    wide = Scope.for_roots(["https://x.org/en/stable/"], whole_site=True)
    assert wide.classify("https://x.org/en/latest/api.html")[0] == "list"


def test_default_exclusions_and_their_override() -> None:
    scope = Scope.for_roots(["https://x.org/docs/"])
    # A search page is known by its content (crawl.links), not its name: real pages are
    # called search.html too (Django's ref/contrib/postgres/search.html).
    assert scope.classify("https://x.org/docs/ref/search.html") == ("list", "")
    for noise in (
        "genindex.html",
        "genindex-A.html",
        "py-modindex.html",
        "_sources/api.rst.txt",
        "_modules/click/core.html",
        "src/mycrate/lib.rs.html",
        "api/class-use/Foo.html",
    ):
        assert scope.classify("https://x.org/docs/" + noise)[0] == "skip", noise
    # A broad include does not bring the noise back; one that names it does.
    broad = Scope.for_roots(["https://x.org/docs/"], include=["/docs/*"])
    assert broad.classify("https://x.org/docs/genindex.html")[0] == "skip"
    named = Scope.for_roots(["https://x.org/docs/"], include=["*/_modules/*"])
    assert named.classify("https://x.org/docs/_modules/click/core.html")[0] == "list"


def test_include_and_exclude_globs_leave_pages_out_but_follow_them() -> None:
    scope = Scope.for_roots(["https://x.org/docs/"], include=["api/*"], exclude=["*/api/old*"])
    assert scope.classify("https://x.org/docs/api/core.html") == ("list", "")
    assert scope.classify("https://x.org/docs/guide.html") == ("follow", "matches no --include")
    assert scope.classify("https://x.org/docs/api/old-core.html") == ("follow", "matches --exclude")


# ---------------------------------------------------------------- links of a page


def test_links_in_document_order_once_each_absolute() -> None:
    html = """<html><head><base href="/docs/"><link rel="canonical" href="intro.html#top">
    </head><body><a href="b.html">B</a><a href="a.html#x">A</a><a href="b.html">again</a>
    <a href="mailto:x@y">mail</a><a href="javascript:void(0)">js</a><a href="#local">here</a>
    <a href="https://other.org/p" rel="nofollow">no</a><a href="file.zip" download>zip</a>
    <area href="c.html"></body></html>"""
    links = page_links(html, "https://x.org/elsewhere/page.html")
    assert links.links == (
        "https://x.org/docs/b.html",
        "https://x.org/docs/a.html",
        "https://x.org/docs/c.html",
    )
    assert links.canonical == "https://x.org/docs/intro.html"
    assert not links.noindex


def test_links_past_the_cap_are_flagged_not_silently_dropped() -> None:
    cap = links_module.MAX_LINKS_PER_PAGE
    anchors = "".join(
        f'<a href="p{n}.html">p</a><a href="p{n}.html#x">again</a>' for n in range(cap)
    )
    full = page_links(f"<html><body>{anchors}</body></html>", "https://x.org/")
    assert len(full.links) == cap
    assert not full.capped  # duplicates are no links past the cap
    over = page_links(
        f'<html><body>{anchors}<a href="last.html">l</a></body></html>', "https://x.org/"
    )
    assert len(over.links) == cap
    assert over.capped
    assert "https://x.org/last.html" not in over.links


def test_robots_meta_noindex_and_nofollow() -> None:
    page = '<html><head><meta name="robots" content="NOINDEX, nofollow"></head><body><a href="x">x</a></body></html>'
    links = page_links(page, "https://x.org/")
    assert links.noindex
    assert links.nofollow
    assert links.links == ()
    assert page_links("", "https://x.org/").links == ()


# ---------------------------------------------------------------- robots.txt


def test_robots_wildcards_and_crawl_delay() -> None:
    rules = parse_rules(
        "https://x.org",
        "User-agent: *\nDisallow: /*?print=\nDisallow: /private/\nAllow: /private/ok.html\n"
        "Crawl-delay: 2\nSitemap: https://x.org/sm.xml\n",
    )
    agent = "crawl4ai-llm-docs"
    assert rules.allowed("https://x.org/a.html", agent)
    assert not rules.allowed("https://x.org/a.html?print=1", agent)  # stdlib parser allows it
    assert not rules.allowed("https://x.org/private/x.html", agent)
    assert rules.allowed("https://x.org/private/ok.html", agent)
    assert rules.crawl_delay(agent) == 2.0
    assert rules.sitemaps == ["https://x.org/sm.xml"]


def _client(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=handler)


async def test_robots_answers_follow_rfc_9309() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "missing.org":
            return httpx.Response(404)
        if host == "broken.org":
            return httpx.Response(503)
        return httpx.Response(200, text="User-agent: *\nDisallow: /x/\n")

    async with _client(httpx.MockTransport(handler)) as client:
        robots = Robots(client, user_agent="crawl4ai-llm-docs")
        assert (await robots.rules("https://missing.org")).allowed("https://missing.org/x/", "a")
        assert not (await robots.rules("https://broken.org")).allowed("https://broken.org/", "a")
        ok = await robots.rules("https://ok.org")
        assert not ok.allowed("https://ok.org/x/a", "a")
        assert await robots.rules("https://ok.org") is ok  # fetched once
        ignored = Robots(client, user_agent="a", enabled=False)
        assert (await ignored.rules("https://broken.org")).allowed("https://broken.org/", "a")


async def test_crawl_delay_paces_requests_to_one_host(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="User-agent: *\nCrawl-delay: 3\n")

    async with _client(httpx.MockTransport(handler)) as client:
        robots = Robots(client, user_agent="crawl4ai-llm-docs")
        await robots.rules("https://x.org")
        times = []
        for _ in range(3):
            await robots.pace("https://x.org")
            times.append(trio.current_time())
        await robots.pace("https://unknown.org")  # no rules read: no wait
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [3.0, 3.0]


# ---------------------------------------------------------------- sitemaps


def _urlset(*locs: str) -> bytes:
    body = "".join(
        f"<url><loc>{loc}</loc><lastmod>2024-01-0{i + 1}</lastmod></url>"
        for i, loc in enumerate(locs)
    )
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>'.encode()


async def _read(
    files: dict[str, bytes], start: list[str], **kwargs: int
) -> tuple[list[SitemapUrl], int]:
    def handler(request: httpx.Request) -> httpx.Response:
        body = files.get(request.url.path)
        return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

    found: list[SitemapUrl] = []

    async def on_url(entry: SitemapUrl) -> None:
        found.append(entry)

    async with _client(httpx.MockTransport(handler)) as client:
        files_read = await read_sitemaps(
            client,
            start,
            on_url,
            max_files=kwargs.get("max_files", 10),
            accept=lambda url: url.startswith("https://x.org/"),
            max_bytes=kwargs.get("max_bytes", 1_000_000),
        )
    return found, files_read


async def test_sitemap_index_with_gzip_children_keeps_lastmod() -> None:
    index = (
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://x.org/a.xml.gz</loc></sitemap>"
        b"<sitemap><loc>https://x.org/b.xml</loc></sitemap>"
        b"<sitemap><loc>https://evil.org/c.xml</loc></sitemap></sitemapindex>"
    )
    files = {
        "/sitemap.xml": index,
        "/a.xml.gz": gzip.compress(_urlset("https://x.org/1", "https://x.org/2")),
        "/b.xml": _urlset("https://x.org/3"),
    }
    found, read = await _read(files, ["https://x.org/sitemap.xml", "https://x.org/missing.xml"])
    assert [(e.loc, e.lastmod) for e in found] == [
        ("https://x.org/1", "2024-01-01"),
        ("https://x.org/2", "2024-01-02"),
        ("https://x.org/3", "2024-01-01"),
    ]
    assert found[0].sitemap == "https://x.org/a.xml.gz"
    assert read == 4  # index, missing, a, b; the other host's file is not read


async def test_xml_bombs_and_gzip_bombs_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol2;</loc></url></urlset>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<urlset><url><loc>&e;</loc></url></urlset>"
    )
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    files = {
        "/laughs.xml": laughs,
        "/external.xml": external,
        "/bomb.xml.gz": bomb,
        "/html": b"<html></html>",
    }
    names = [f"https://x.org{p}" for p in files]
    found, read = await _read(files, names, max_bytes=1_000_000)
    assert found == []
    assert read == 4


async def test_sitemap_files_are_capped() -> None:
    index = (
        b"<sitemapindex>"
        + b"".join(
            f"<sitemap><loc>https://x.org/s{i}.xml</loc></sitemap>".encode() for i in range(20)
        )
        + b"</sitemapindex>"
    )
    files = {"/sitemap.xml": index} | {
        f"/s{i}.xml": _urlset(f"https://x.org/{i}") for i in range(20)
    }
    found, read = await _read(files, ["https://x.org/sitemap.xml"], max_files=5)
    assert read == 5
    assert len(found) == 4


# ---------------------------------------------------------------- llms.txt


def test_llms_txt_links_in_order() -> None:
    text = '# Site\n\n> About\n\n## Docs\n- [Intro](intro.html): start\n- [API](/docs/api.html#x "t")\n- [Ext](https://o.org/)\n'
    assert parse_llms_txt(text, "https://x.org/docs/llms.txt") == [
        ("https://x.org/docs/intro.html", "Intro"),
        ("https://x.org/docs/api.html", "API"),
        ("https://o.org/", "Ext"),
    ]
    assert candidates("https://x.org/docs/index.html") == [
        "https://x.org/docs/llms.txt",
        "https://x.org/llms.txt",
    ]


async def test_an_html_page_at_llms_txt_is_not_an_llms_txt() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/soft.txt":
            return httpx.Response(200, text="<!DOCTYPE html><html>[a](b)</html>")
        return httpx.Response(200, text="- [a](https://x.org/a)")

    async with _client(httpx.MockTransport(handler)) as client:
        assert await read_llms_txt(client, "https://x.org/soft.txt") is None
        assert await read_llms_txt(client, "https://x.org/llms.txt") == [("https://x.org/a", "a")]


# ---------------------------------------------------------------- frontier


async def test_spill_queue_is_fifo_across_memory_and_disk(tmp_path: Path) -> None:
    queue = SpillQueue(tmp_path, memory_items=10)
    popped: list[str] = []
    for i in range(95):
        await queue.push(Queued(url=f"u{i}", depth=i, via="v"))
        if i % 7 == 0:
            item = await queue.pop()
            assert item is not None
            popped.append(item.url)
    assert len(queue) == 95 - len(popped)
    while (item := await queue.pop()) is not None:
        popped.append(item.url)
    assert popped == [f"u{i}" for i in range(95)]
    assert queue.total == 95
    assert len(queue) == 0
    assert list(await trio.Path(tmp_path).iterdir()) == []  # the spill file has no name on disk
    queue.close()


def test_seen_set_holds_fingerprints() -> None:
    seen = SeenSet()
    assert seen.add("https://x.org/a")
    assert not seen.add("https://x.org/a")
    assert "https://x.org/a" in seen
    assert "https://x.org/b" not in seen
    assert len(seen) == 1
    many = [f"https://x.org/{i}" for i in range(20_000)]  # past several merges
    assert all(seen.add(url) for url in many)
    assert not any(seen.add(url) for url in many)
    assert all(url in seen for url in many[::97])
    assert "https://x.org/-1" not in seen
    assert len(seen) == 20_001


def test_an_llms_txt_link_to_a_pages_markdown_is_the_page() -> None:
    """llms.txt v2 lists ``page.html.md``: the page itself, never a page of its own (its
    Markdown is the crawl's to take); a bare ``.md`` cannot be told apart and is kept."""
    from crawl4ai_llm_docs.discover.llms_txt import parse_llms_txt

    text = (
        "# Site\n\n## Docs\n\n- [Install](guide/install.html.md): how\n"
        "- [Home](index.html.md)\n- [Raw](notes.md)\n- [Old](old.HTM.md?v=2)\n"
    )
    assert parse_llms_txt(text, "https://docs.example.org/en/llms.txt") == [
        ("https://docs.example.org/en/guide/install.html", "Install"),
        ("https://docs.example.org/en/index.html", "Home"),
        ("https://docs.example.org/en/notes.md", "Raw"),
        ("https://docs.example.org/en/old.HTM?v=2", "Old"),
    ]
