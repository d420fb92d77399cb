"""The crawl stage carries each page's head metadata (site name, description, fetch time),
also through a 304 that brings no HTML."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import trio

from crawl4ai_llm_docs.cache.page_state import PageStateStore
from crawl4ai_llm_docs.models import Page
from tests.test_crawl_stage import by_path, crawl, start_site

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>{meta}</head>
<body><div role="main"><h1>{title}</h1><p>Some words of real text on this page.</p></div></body>
</html>"""


async def test_pages_carry_site_name_description_and_crawl_time(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    root = tmp_path / "site"
    root.mkdir()
    meta = (
        '<meta property="og:site_name" content="Acme Docs">'
        '<meta name="description" content="How to use Acme.">'
    )
    (root / "with.html").write_text(PAGE.format(title="With", meta=meta))
    (root / "without.html").write_text(PAGE.format(title="Without", meta=""))
    site = await start_site(nursery, directory=str(root))
    pages = by_path(site, await crawl(site.page_urls(), tmp_path / "cache"))
    with_meta, without = pages["/with.html"], pages["/without.html"]
    assert (with_meta.site_name, with_meta.meta_description) == ("Acme Docs", "How to use Acme.")
    assert (without.site_name, without.meta_description) == ("", "")
    for page in (with_meta, without):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", page.fetched_at)


async def test_a_304_keeps_the_head_metadata_of_the_stored_page(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    url = "https://docs.example.com/a"
    crawled = Page(
        index=0,
        url=url,
        final_url=url,
        title="A",
        markdown="Text of A.",
        status=200,
        error=None,
        elapsed=0.1,
        bytes=100,
        site_name="Acme Docs",
        meta_description="How to use Acme.",
    )
    await store.record(crawled, None, etag='"v1"', last_modified=None)
    stored = await store.get(url)
    assert stored is not None
    # A 304 brings no HTML: the page is rebuilt from the stored state.
    bare = msgspec.structs.replace(crawled, markdown="", site_name="", meta_description="")
    reused = await store.reuse(bare, stored)
    assert (reused.site_name, reused.meta_description) == ("Acme Docs", "How to use Acme.")
