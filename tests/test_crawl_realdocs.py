"""Real Sphinx documentation from Debian packages, served locally and crawled over HTTP.

The Markdown of each page must keep every code block and inline code span of the page's main
content, and none of its navigation. Needs ``apt-get install python-click-doc python-attr-doc``.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import pytest
import trio

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.stage import run
from crawl4ai_llm_docs.models import Page, UrlEntry
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, serve_site

DOC_SETS = {
    # package: (HTML directory, main container, navigation around it, pages to inspect)
    "python-click-doc": (
        Path("/usr/share/doc/python-click-doc/html"),
        "div[role=main]",
        ".sphinxsidebar, .related, .footer",
        ("options.html", "api.html", "commands.html", "testing.html", "utils.html"),
    ),
    "python-attr-doc": (  # the Read the Docs theme
        Path("/usr/share/doc/python-attr-doc/html"),
        "div[itemprop=articleBody]",
        ".wy-nav-side, .wy-nav-top, footer, .wy-breadcrumbs",
        ("examples.html", "api.html", "init.html"),
    ),
}
FENCED = re.compile(r"^```[^\n]*\n(.*?)\n```$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
LINK_TARGET = re.compile(r"\]\((?:\\.|[^()\\]|\([^)]*\))*\)")  # ](url "title")


def _docs(package: str) -> tuple[Path, str, str, tuple[str, ...]]:
    root, main, chrome, inspect = DOC_SETS[package]
    if not (root / "index.html").is_file():
        pytest.skip(f"{root} is missing: apt-get install {package}")
    return root, main, chrome, inspect


async def crawl_directory(
    nursery: trio.Nursery, root: Path, tmp_path: Path
) -> tuple[SiteHandle, list[Page]]:
    site: SiteHandle = await nursery.start(serve_site, SiteConfig(directory=str(root)))
    urls = site.page_urls()
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    config = CrawlConfig(mode="http", max_concurrent=4, page_timeout=20)

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(urls):
                await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))

    with trio.fail_after(60):
        async with trio.open_nursery() as inner:
            inner.start_soon(feed)
            inner.start_soon(
                partial(run, receive_urls, send_pages, config=config, cache_dir=tmp_path)
            )
            async with receive_pages:
                pages = [page async for page in receive_pages]
    return site, pages


def _code_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    return "\n".join(lines).strip("\n")


def _spaces(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


@pytest.mark.parametrize("package", sorted(DOC_SETS))
async def test_real_docs_keep_code_and_drop_navigation(
    package: str, nursery: trio.Nursery, tmp_path: Path
) -> None:
    root, main_selector, chrome_selector, inspect = _docs(package)
    site, pages = await crawl_directory(nursery, root, tmp_path)
    assert len(pages) == len(site.page_paths) >= (25 if package == "python-click-doc" else 15)
    failed = [(page.url, page.error) for page in pages if not page.ok]
    # Sphinx's search page is an empty shell filled by JavaScript: over HTTP it has no text.
    assert [url.rsplit("/", 1)[1] for url, _ in failed] in ([], ["search.html"])
    assert all("no text content" in (error or "") for _, error in failed)
    by_name = {page.url.rsplit("/", 1)[-1]: page for page in pages}
    for name in inspect:
        markdown = by_name[name].markdown
        doc = lxml.html.document_fromstring((root / name).read_text(encoding="utf-8"))
        (main,) = doc.cssselect(main_selector)
        for tag in main.cssselect(".linenos, a.headerlink"):
            tag.drop_tree()

        # Every code block, text for text, and no extra ones.
        blocks = [_code_text(pre.text_content()) for pre in main.iter("pre")]
        fences = [_code_text(block) for block in FENCED.findall(markdown)]
        assert blocks, name
        assert sorted(fences) == sorted(blocks), name

        # Every inline code span survives inside some Markdown code span.
        spans = [_spaces(span) for span in INLINE.findall(FENCED.sub("", markdown))]
        inline = [
            _spaces(code.text_content())
            for code in main.iter("code")
            if not any(parent.tag == "pre" for parent in code.iterancestors())
        ]
        missing = [text for text in inline if text and not any(text in span for span in spans)]
        assert missing == [], name

        # Navigation text that is not also part of the content must be gone (link targets and
        # titles are not text: a title such as "click.Context.params" names a sidebar entry).
        text_only = LINK_TARGET.sub("]", markdown)
        main_text = _spaces(main.text_content())
        chrome_texts = {
            _spaces(element.text_content())
            for chrome in doc.cssselect(chrome_selector)
            for element in chrome.iter("a", "h3", "p", "li")
        }
        leaked = [
            text
            for text in chrome_texts
            if len(text) >= 8 and text not in main_text and text in text_only
        ]
        assert leaked == [], name
        # The <title> without the site's name, since what is left is the page's heading.
        title = _spaces(doc.findtext(".//title") or "")
        assert by_name[name].title == title.rsplit(" — ", 1)[0], title
