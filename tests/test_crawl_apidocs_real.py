"""Real rustdoc, Javadoc (JDK 8, 11, 17 doclets), Doxygen and Sphinx pages from Debian packages,
served on loopback and crawled over HTTP by the crawl stage and by the real CLI.

For each page, the checker of ``code_checker`` (which reads the HTML, not the extractor)
lists the code blocks, inline code and signatures of the main content; the Markdown must keep
all blocks and at least 99% of the inline-code texts, and contain no ``[](``, no
``javascript:`` link and none of the generator's chrome phrases. Needs the ``*-doc`` packages
that ``.ci/run`` installs; a missing package skips its set.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
from apidocs_support import DOC_SETS, SPHINX_SETS
from code_checker import DocSet, check, expected_code, without_code
from e2e_support import cli_env, run_cli, sections, write_urls

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.stage import run
from crawl4ai_llm_docs.models import Page, UrlEntry
from crawl4ai_llm_docs.testing.site.server import (
    SiteConfig,
    SiteHandle,
    run_site_in_thread,
    serve_site,
)

ALL_SETS = {**DOC_SETS, **SPHINX_SETS}
HAS_CHROMIUM = any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))


def _docset(name: str) -> DocSet:
    docset = ALL_SETS[name]
    if not docset.available():
        pytest.skip(f"{docset.root} is incomplete: apt-get install {docset.package}")
    return docset


async def _crawl(nursery: trio.Nursery, docset: DocSet, tmp_path: Path) -> list[Page]:
    site: SiteHandle = await nursery.start(serve_site, SiteConfig(directory=str(docset.root)))
    urls = [site.url("/" + page) for page in docset.pages]
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    config = CrawlConfig(mode="http", max_concurrent=4, page_timeout=30)

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(urls):
                await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))

    with trio.fail_after(120):
        async with trio.open_nursery() as inner:
            inner.start_soon(feed)
            inner.start_soon(
                partial(run, receive_urls, send_pages, config=config, cache_dir=tmp_path)
            )
            async with receive_pages:
                pages = [page async for page in receive_pages]
    return sorted(pages, key=lambda page: page.index)


@pytest.mark.parametrize("name", sorted(ALL_SETS))
async def test_real_pages_keep_their_code_and_lose_their_chrome(
    name: str, nursery: trio.Nursery, tmp_path: Path
) -> None:
    docset = _docset(name)
    pages = await _crawl(nursery, docset, tmp_path)
    assert [page.ok for page in pages] == [True] * len(docset.pages), [p.error for p in pages]
    blocks = blocks_kept = inline = inline_kept = 0
    for page, path in zip(pages, docset.pages, strict=True):
        html = (docset.root / path).read_text(encoding="utf-8", errors="replace")
        expected = expected_code(html, docset)
        result = check(page.markdown, expected, docset)
        assert result.missing_blocks == [], path  # every code block, always
        assert result.missing_signatures == [], path
        assert result.empty_links == 0, path
        assert result.js_links == 0, path
        assert result.chrome == [], path
        assert result.tables_missing == [], path
        assert result.inline_kept >= 0.99 * result.inline, (path, result.missing_inline)
        blocks += result.blocks
        blocks_kept += result.blocks_kept
        inline += result.inline
        inline_kept += result.inline_kept
    assert blocks > 0
    assert blocks_kept == blocks
    assert inline > 0
    assert inline_kept >= 0.99 * inline


def _one_page_per_generator() -> list[tuple[DocSet, str]]:
    chosen = [(DOC_SETS[name], DOC_SETS[name].pages[0]) for name in sorted(DOC_SETS)]
    return [(docset, page) for docset, page in chosen if docset.available()]


@contextmanager
def _sites(chosen: list[tuple[DocSet, str]]) -> Iterator[list[str]]:
    """One loopback site per documentation root; the URLs of the chosen pages, in order."""
    with ExitStack() as stack:
        sites = {
            root: stack.enter_context(run_site_in_thread(SiteConfig(directory=str(root))))
            for root in dict.fromkeys(docset.root for docset, _ in chosen)
        }
        yield [sites[docset.root].url("/" + page) for docset, page in chosen]


def _assert_clean_sections(markdown: str, chosen: list[tuple[DocSet, str]]) -> None:
    found = sections(markdown)
    assert len(found) == len(chosen)
    for section, (docset, page) in zip(found, chosen, strict=True):
        assert section.source.endswith(page)
        html = (docset.root / page).read_text(encoding="utf-8", errors="replace")
        result = check(section.body, expected_code(html, docset), docset)
        assert result.missing_blocks == [], page
        assert result.inline_kept >= 0.99 * result.inline, (page, result.missing_inline)
        assert result.empty_links == result.js_links == 0, page
        assert result.chrome == [], page
    assert "[](" not in without_code(markdown)
    assert "javascript:" not in markdown.lower()


def test_cli_no_llm_over_http_writes_clean_api_docs(tmp_path: Path) -> None:
    chosen = _one_page_per_generator()
    if len(chosen) < len(DOC_SETS):
        pytest.skip("some API doc packages are missing: see .ci/run")
    with _sites(chosen) as urls:
        urls_file = write_urls(tmp_path / "urls.txt", urls)
        output = tmp_path / "docs.md"
        args = [str(urls_file), "-o", str(output), "--no-llm", "--crawler", "http"]
        result = run_cli(
            [*args, "--no-progress"], cwd=tmp_path, env=cli_env(tmp_path, api_key=None)
        )
    assert result.code == 0, result
    _assert_clean_sections(output.read_text(encoding="utf-8"), chosen)


@pytest.mark.browser
@pytest.mark.skipif(not HAS_CHROMIUM, reason="no Chromium on PATH (apt-get install chromium)")
def test_cli_browser_mode_on_api_docs(tmp_path: Path) -> None:
    """Rendered by Chromium (the generators' scripts run): the same clean Markdown."""
    docset = _docset("rustdoc")
    others = [(d, page) for d, page in _one_page_per_generator() if d.generator != docset.generator]
    chosen = [(docset, "std/io/enum.ErrorKind.html"), *others]
    with _sites(chosen) as urls:
        urls_file = write_urls(tmp_path / "urls.txt", urls)
        output = tmp_path / "docs.md"
        args = [str(urls_file), "-o", str(output), "--no-llm", "--crawler", "browser"]
        result = run_cli(
            [*args, "--no-progress"], cwd=tmp_path, env=cli_env(tmp_path, api_key=None)
        )
    assert result.code == 0, result
    markdown = output.read_text(encoding="utf-8")
    _assert_clean_sections(markdown, chosen)
    # The enum's 40 variants, inside the declaration's code block and not behind a toggle.
    assert "pub enum ErrorKind {\n    NotFound," in markdown
