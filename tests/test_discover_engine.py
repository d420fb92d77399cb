"""Discovery end to end inside one trio run: the local site on loopback, ``map_site`` writing
the URL file. Order, limits, robots.txt (checked against the server's request log),
sitemaps, llms.txt, noindex, canonical duplicates and bad roots."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from structlog.testing import capture_logs

from crawl4ai_llm_docs.config_schema import AppConfig
from crawl4ai_llm_docs.crawl import links as links_module
from crawl4ai_llm_docs.discover.engine import Discovery
from crawl4ai_llm_docs.discover.mapper import crawl_for_links, map_site
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.models import UrlEntry
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, page_path, serve_site

HANG_GUARD_S = 60


def config(tmp_path: Path, **discover: Any) -> AppConfig:
    return msgspec.convert(
        {
            "crawl": {"mode": "http", "max_concurrent": 4, "page_timeout": 20, "retries": 0},
            "output": {"cache_dir": str(tmp_path / "cache")},
            "discover": discover,
        },
        AppConfig,
    )


async def start(nursery: trio.Nursery, **site: Any) -> SiteHandle:
    handle: SiteHandle = await nursery.start(serve_site, SiteConfig(**site))
    return handle


async def map_to(tmp_path: Path, roots: list[str], **discover: Any) -> tuple[list[str], str]:
    out = tmp_path / "urls.txt"
    with trio.fail_after(HANG_GUARD_S):
        await map_site(roots, config(tmp_path, **discover), out)
    text = out.read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")], text


def raises_input_error(match: str) -> pytest.RaisesGroup[InputError]:
    """Errors of a stage come out of the run's nursery in a group; the CLI reports them."""
    return pytest.RaisesGroup(pytest.RaisesExc(InputError, match=match), flatten_subgroups=True)


def page(index: int) -> str:
    return page_path(index)


async def test_reading_order_is_root_then_breadth_first_and_stable(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start(nursery, pages=30)
    root = site.url("/docs/")
    first, text = await map_to(tmp_path, [root])
    # The index links every page in order; each page's links only lead back to pages known.
    assert first == [root] + [site.url(page(i)) for i in range(30)]
    assert "# root" in text
    assert f"# linked from {root}" in text
    again, _ = await map_to(tmp_path, [root])
    assert again == first
    assert site.hits["/docs/"] == 2
    assert all(site.hits[page(i)] == 2 for i in range(30))


async def test_max_pages_lists_exactly_that_many_and_warns(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start(nursery, pages=30)
    with capture_logs() as logs:
        urls, text = await map_to(tmp_path, [site.url("/docs/")], max_pages=10)
    assert urls == [site.url("/docs/")] + [site.url(page(i)) for i in range(9)]
    warnings = [e["message"] for e in logs if "max-pages" in str(e.get("message"))]
    assert warnings
    assert "Raise --max-pages" in warnings[0]
    assert "stopped at max pages" in text
    assert sum(site.hits[page(i)] for i in range(30)) <= 9 + 4  # a few in flight at most
    # Every page in scope not listed is named: here, the 21 the limit left out.
    for i in range(9, 30):
        assert f"# not listed: {site.url(page(i))} (--max-pages 10 reached)" in text, i


async def test_a_page_with_more_links_than_are_read_is_named_in_a_warning(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(links_module, "MAX_LINKS_PER_PAGE", 5)
    site = await start(nursery, pages=30)
    root = site.url("/docs/")
    with capture_logs() as logs:
        await map_to(tmp_path, [root])
    warnings = [str(e.get("message")) for e in logs if e.get("log_level") == "warning"]
    assert any(root in w and "more than 5 links" in w for w in warnings), warnings


async def test_max_depth(nursery: trio.Nursery, tmp_path: Path) -> None:
    site = await start(nursery, pages=60)
    urls, text = await map_to(tmp_path, [site.url(page(0))], max_depth=1, sources=["links"])
    # page-000 links to page-001 and its sidebar (pages 0-39); their links are not followed.
    assert urls[0] == site.url(page(0))
    assert len(urls) == 40
    assert site.hits[page(45)] == 0
    # page-039 links to page-040, one hop too deep: named, with the reason.
    assert f"# not listed: {site.url(page(40))} (deeper than --max-depth 1)" in text


async def test_robots_disallow_is_never_fetched_and_sitemaps_fill_gaps(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    robots = "User-agent: *\nDisallow: /docs/page-00*\nSitemap: {base}/extra-sitemap.xml\n"
    orphan = "<html><head><title>Orphan</title></head><body><main><p>alone</p></main></body></html>"
    # The generated site's own /sitemap.xml, and one more listing the orphan (linked nowhere).
    extra = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>{base}/docs/orphan.html</loc><lastmod>2023-02-01</lastmod></url>"
        "<url><loc>{base}/other/outside.html</loc></url></urlset>"
    )
    files = {"/docs/orphan.html": orphan, "/robots.txt": robots, "/extra-sitemap.xml": extra}
    site = await start(nursery, pages=20, sitemap=True, files=files)
    urls, text = await map_to(tmp_path, [site.url("/docs/")])
    disallowed = [p for p in site.requests if p.startswith("/docs/page-00")]
    assert disallowed == []
    expected = {site.url(page(i)) for i in range(10, 20)} | {site.url("/docs/orphan.html")}
    assert expected <= set(urls)
    assert urls[-1] == site.url("/docs/orphan.html")  # sitemap-only pages come last
    assert "lastmod 2023-02-01" in text
    assert "left out in scope: 10 by robots.txt" in text
    # Each page left out is named, with the reason; the page out of scope is only counted.
    for i in range(10):
        assert f"# not listed: {site.url(page(i))} (disallowed by robots.txt)" in text
    assert "/other/outside.html" not in text
    assert len(urls) == len(set(urls))


async def test_llms_txt_pages_come_first_and_noindex_and_canonical_drop_pages(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    def html(title: str, head: str = "", body: str = "") -> str:
        return f"<html><head><title>{title}</title>{head}</head><body><main><p>{title}</p>{body}</main></body></html>"

    files = {
        "/d/index.html": html(
            "Root", body='<a href="a.html">a</a><a href="b.html">b</a><a href="c.html">c</a>'
        ),
        "/d/a.html": html("A"),
        "/d/b.html": html(
            "B", head='<meta name="robots" content="noindex">', body='<a href="hidden.html">h</a>'
        ),
        "/d/hidden.html": html("Hidden"),
        "/d/c.html": html("C", head='<link rel="canonical" href="/d/a.html">'),
        "/d/first.html": html("First"),
        "/d/llms.txt": "# D\n\n- [First](first.html)\n- [Off](/elsewhere.html)\n",
    }
    site = await start(nursery, files=files)
    urls, text = await map_to(tmp_path, [site.url("/d/index.html")])
    assert urls == [
        site.url(p) for p in ("/d/index.html", "/d/first.html", "/d/a.html", "/d/hidden.html")
    ]
    assert "noindex" in text
    assert "(rel=canonical)" in text
    assert f"# listed in {site.url('/d/llms.txt')}" in text
    assert site.hits["/elsewhere.html"] == 0


async def test_follow_only_pages_lead_to_included_ones(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start(nursery, pages=12)
    urls, text = await map_to(tmp_path, [site.url("/docs/")], include=["*page-01*"])
    assert urls == [site.url(page(i)) for i in (10, 11)]
    assert "followed for links only" in text


# ---------------------------------------------------------------- bad roots


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/special/file.pdf", r"is not HTML \(application/pdf\)"),
        ("/special/missing.html", "answered HTTP 404"),
    ],
)
async def test_bad_root_is_refused_and_nothing_written(
    nursery: trio.Nursery, tmp_path: Path, path: str, fragment: str
) -> None:
    site = await start(nursery)
    out = tmp_path / "urls.txt"
    with raises_input_error(fragment):
        await map_site([site.url(path)], config(tmp_path), out)
    assert not out.exists()
    assert not [p for p in list(await trio.Path(tmp_path).iterdir()) if p.suffix == ".tmp"]


async def test_root_disallowed_by_robots(nursery: trio.Nursery, tmp_path: Path) -> None:
    site = await start(
        nursery, files={"/robots.txt": "User-agent: crawl4ai-llm-docs\nDisallow: /docs/\n"}
    )
    with raises_input_error(r"disallowed by .*robots.txt"):
        await map_site([site.url("/docs/")], config(tmp_path), tmp_path / "u.txt")
    assert site.hits["/docs/"] == 0
    # Ignoring robots.txt is possible, for a site you own.
    urls, _ = await map_to(tmp_path, [site.url("/docs/")], respect_robots=False, max_pages=3)
    assert len(urls) == 3


async def test_root_without_an_answer(tmp_path: Path) -> None:
    with trio.socket.socket() as sock:  # a port nothing listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with raises_input_error(r"did not answer \(connection refused"):
        await map_site([f"http://127.0.0.1:{port}/docs/"], config(tmp_path), tmp_path / "u.txt")


async def test_root_redirecting_to_another_host(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "docs.x.org" and request.url.path == "/":
            return httpx.Response(301, headers={"location": "https://login.y.org/sso"})
        return httpx.Response(
            200,
            text="<html><body><main>login</main></body></html>",
            headers={"content-type": "text/html"},
        )

    app = config(tmp_path)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), follow_redirects=True
    ) as client:
        discovery = Discovery(["https://docs.x.org/"], app.discover, app.crawl, client=client)
        send, receive = trio.open_memory_channel[UrlEntry](0)
        with pytest.RaisesGroup(
            pytest.RaisesExc(InputError, match="redirects to another host"), flatten_subgroups=True
        ):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(discovery.run, send)
                nursery.start_soon(crawl_for_links, discovery, client, receive, app)


async def test_a_sitemap_index_of_gzip_files_over_http(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start(nursery, pages=25, sitemap=True, sitemap_size=10)
    urls, text = await map_to(tmp_path, [site.url(page(0))], sources=["sitemap"])
    assert urls == [site.url(page(i)) for i in range(25)]  # root, then the sitemap's order
    assert [site.hits[f"/sitemaps/sitemap-{n}.xml.gz"] for n in range(3)] == [1, 1, 1]
    assert "(lastmod 2024-05-01)" in text
    assert sum(site.hits[page(i)] for i in range(25)) == 25  # each page fetched once


async def test_redirects_duplicates_and_redirects_out_of_scope(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    def html(title: str, body: str = "") -> str:
        return f"<html><head><title>{title}</title></head><body><main><p>{title}</p>{body}</main></body></html>"

    links = "".join(
        f'<a href="{p}">{p}</a>'
        for p in ("a.html", "old-a.html", "gone.html", "moved.html", "broken.html")
    )
    files = {
        "/d/index.html": html("Root", links),
        "/d/a.html": html("A"),
        "/d/new.html": html("New"),
        "/elsewhere/x.html": html("Elsewhere"),
    }
    redirects = {
        "/d/old-a.html": "/d/a.html",
        "/d/gone.html": "/elsewhere/x.html",
        "/d/moved.html": "/d/new.html",
    }
    site = await start(nursery, files=files, redirects=redirects)
    urls, text = await map_to(tmp_path, [site.url("/d/index.html")])
    assert urls == [site.url("/d/index.html"), site.url("/d/a.html"), site.url("/d/moved.html")]
    assert "a page already listed" in text
    assert "outside the scope" in text
    assert "broken link (HTTP 404 Not Found)" in text


async def test_a_root_redirecting_within_its_host_is_scoped_where_it_lands(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start(nursery, pages=5, redirects={"/": "/docs/"})
    urls, _ = await map_to(tmp_path, [site.url("/")])
    assert urls == [site.url("/")] + [site.url(page(i)) for i in range(5)]


async def test_roots_of_one_page_count_once_and_several_roots_share_a_list(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    files = {"/robots.txt": "User-agent: *\nCrawl-delay: 0.01\n"}
    site = await start(nursery, pages=3, files=files)
    roots = [site.url("/docs/"), site.url("/docs/index.html"), site.url(page(2))]
    with capture_logs() as logs:
        urls, _ = await map_to(tmp_path, roots, sources=["links"])
    assert urls == [site.url("/docs/"), site.url(page(2)), site.url(page(0)), site.url(page(1))]
    assert any("Crawl-delay of 0.01 s" in str(e.get("message")) for e in logs)


async def test_the_source_stage_lists_what_the_link_sink_is_told(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """``run_source.run(send)``: URLs out; each crawled page's links come back through
    ``submit`` (the crawl stage's link sink), and the run's entries follow discovery's list."""
    from crawl4ai_llm_docs.crawl.links import page_links
    from crawl4ai_llm_docs.models import PageReport
    from crawl4ai_llm_docs.observe.metrics import RunMetrics
    from crawl4ai_llm_docs.sources import discovery as run_source

    site = await start(nursery, pages=3)
    app = config(tmp_path, sources=["links"])
    entries: list[UrlEntry] = []
    metrics = RunMetrics()
    discovery = run_source.discovery_for_run([site.url("/docs/")], app, entries, metrics)
    url_send, url_recv = trio.open_memory_channel[UrlEntry](0)

    async def crawl() -> None:  # a stand-in for the crawl stage: one page at a time
        async with url_recv, httpx.AsyncClient() as client:
            async for entry in url_recv:
                response = await client.get(entry.url)
                report = PageReport(
                    index=entry.index,
                    url=entry.url,
                    final_url=entry.url,
                    status=200,
                    error=None,
                    links=page_links(response.text, entry.url),
                )
                await discovery.submit(report)

    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as inner:
            inner.start_soon(functools.partial(run_source.run, url_send, discovery=discovery))
            inner.start_soon(crawl)
    assert [entry.url for entry in entries] == [site.url("/docs/")] + [
        site.url(page(i)) for i in range(3)
    ]
    assert metrics.snapshot().pages_total == 4
    assert metrics.snapshot().discovery is not None


async def test_sitemap_pages_a_glob_leaves_out_are_not_fetched(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    site = await start(nursery, pages=10, sitemap=True)
    urls, _ = await map_to(
        tmp_path, [site.url(page(0))], sources=["sitemap"], include=["*page-00[5-9]*"]
    )
    assert urls == [site.url(page(i)) for i in range(5, 10)]
    assert [site.hits[page(i)] for i in range(10)] == [1, 0, 0, 0, 0, 1, 1, 1, 1, 1]
