"""Markdown first through the real CLI (issue 26): the bundled site offers each page's own
Markdown (link element, Link header, Accept negotiation, a .md beside it) and the tool takes
it instead of converting the HTML, falls back to the HTML with the reason when the Markdown
lacks a code block, never counts an alternate as a page of its own, and re-runs with
conditional requests. Expected content comes from the site's Markdown generator, made
absolute with ``urljoin``; the site's request log says what was asked for.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from e2e_support import Setup, cli_env, running, sections

from crawl4ai_llm_docs.testing.site.markdown import generated_markdown
from crawl4ai_llm_docs.testing.site.server import SiteConfig

needs_browser = pytest.mark.skipif(
    not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
    reason="no Chromium on PATH",
)
PAGES = 4


def _run(setup: Setup, *extra: str, crawler: str = "http") -> tuple[list[dict[str, Any]], Path]:
    log = setup.tmp / "log.jsonl"
    log.unlink(missing_ok=True)
    pages = setup.tmp / "pages"
    args = setup.args(
        "--no-llm", "--log-json", str(log), "--pages-dir", str(pages), *extra, llm=False
    )
    args[args.index("--crawler") + 1] = crawler
    result = setup.run(*args, env=cli_env(setup.tmp, api_key=None))
    assert result.code == 0, result
    events = [json.loads(line) for line in log.read_text().splitlines()]
    crawled = [e for e in events if e["event"] == "page_crawled"]
    return sorted(crawled, key=lambda e: str(e["url"])), pages  # in the URL file's order


def _body(pages: Path, index: int) -> str:
    """A page file's Markdown after its front matter and the H1 the pages directory writes."""
    text = (pages / "docs" / f"page-{index:03d}.md").read_text()
    return text.split("\n---\n", 1)[1].split("\n", 3)[3]


def _expected(setup: Setup, index: int, *, revision: int = 0) -> str:
    """The site's own Markdown, its H1 left out (the file has its own), links absolute."""
    url = setup.site.url(f"/docs/page-{index:03d}.html")
    markdown = generated_markdown(index, pages=setup.site.site.pages, revision=revision)
    markdown = re.sub(r"\]\(([^)]+)\)", lambda m: f"]({urljoin(url, m.group(1))})", markdown)
    return markdown.split("\n", 2)[2]


def _front(pages: Path, index: int, key: str) -> str:
    text = (pages / "docs" / f"page-{index:03d}.md").read_text()
    found = re.search(rf'^{key}: "([^"]*)"$', text, re.MULTILINE)
    assert found is not None
    return found.group(1)


def _asked(setup: Setup) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in setup.site.request_log:
        counts[request.path] = counts.get(request.path, 0) + 1
    return counts


@pytest.mark.parametrize("mode", ["link", "header", "negotiate"])
def test_every_page_is_taken_from_its_own_markdown(tmp_path: Path, mode: str) -> None:
    site = SiteConfig(pages=PAGES, markdown=mode)  # type: ignore[arg-type]
    with running(tmp_path, site=site) as setup:
        crawled, pages = _run(setup)
        assert [(e["source_format"], e["markdown_problem"]) for e in crawled] == [
            ("markdown", None)
        ] * PAGES  # no page's HTML was converted
        for index in range(PAGES):
            assert _body(pages, index).strip() == _expected(setup, index).strip()
            assert _front(pages, index, "source_format") == "markdown"
        asked = _asked(setup)
        for index in range(PAGES):  # such a page costs two requests
            path = f"/docs/page-{index:03d}.html"
            if mode == "negotiate":
                assert asked[path] == 2
            else:
                assert (asked[path], asked[path + ".md"]) == (1, 1)
        titles = [s.title for s in sections(setup.output.read_text())]
        assert titles[0].startswith("Installation 0")  # the site's name stays off, as for HTML


def test_a_markdown_lacking_a_code_block_falls_back_to_the_html_with_the_reason(
    tmp_path: Path,
) -> None:
    site = SiteConfig(pages=PAGES, markdown="link", markdown_without_code=[1])
    with running(tmp_path, site=site) as setup:
        crawled, pages = _run(setup)
        by_url = {e["url"]: e for e in crawled}
        fallback = by_url[setup.site.url("/docs/page-001.html")]
        assert fallback["source_format"] == "html"
        assert "lacks 1 of the 3 code blocks" in fallback["markdown_problem"]
        assert "'def example_1_2(client):'" in fallback["markdown_problem"]
        assert "def example_1_2(client):" in _body(pages, 1)  # converted from the HTML
        assert _front(pages, 1, "source_format") == "html"
        others = [e["source_format"] for url, e in by_url.items() if "page-001" not in url]
        assert others == ["markdown"] * (PAGES - 1)


def test_md_beside_pages_is_looked_for_only_with_always_and_never_asks_for_none(
    tmp_path: Path,
) -> None:
    site = SiteConfig(pages=2, markdown="beside")
    with running(tmp_path, site=site) as setup:
        crawled, _ = _run(setup)  # auto: nothing is advertised, nothing is guessed
        assert [e["source_format"] for e in crawled] == ["html", "html"]
        assert not any(r.path.endswith(".md") for r in setup.site.request_log)
        setup.site.request_log.clear()
        crawled, _ = _run(setup, "--prefer-markdown", "always", "--no-cache")
        assert [e["source_format"] for e in crawled] == ["markdown", "markdown"]
        assert sorted(r.path for r in setup.site.request_log if r.path.endswith(".md")) == [
            "/docs/page-000.html.md",
            "/docs/page-001.html.md",
        ]
        setup.site.request_log.clear()
        crawled, _ = _run(setup, "--prefer-markdown", "never", "--no-cache")
        assert [e["source_format"] for e in crawled] == ["html", "html"]
        accepts = {r.headers.get("accept") for r in setup.site.request_log}
        assert accepts == {"text/html,application/xhtml+xml"}


def test_a_rerun_is_conditional_and_keeps_the_markdown(tmp_path: Path) -> None:
    site = SiteConfig(pages=3, markdown="link", validators="etag")
    with running(tmp_path, site=site) as setup:
        _run(setup)
        setup.site.request_log.clear()
        crawled, pages = _run(setup)
        assert [(e["status"], e["freshness"], e["source_format"]) for e in crawled] == [
            (304, "unchanged", "markdown")
        ] * 3
        assert sorted(r.path for r in setup.site.request_log) == [
            f"/docs/page-{i:03d}.html" for i in range(3)
        ]  # one conditional request each: the Markdown is not asked for again
        assert _front(pages, 0, "source_format") == "markdown"
        setup.site.change("/docs/page-000.html")
        crawled, pages = _run(setup)
        by_url = {e["url"]: (e["freshness"], e["source_format"]) for e in crawled}
        assert [by_url[url] for url in setup.urls] == [
            ("changed", "markdown"),
            ("unchanged", "markdown"),
            ("unchanged", "markdown"),
        ]
        assert _body(pages, 0).strip() == _expected(setup, 0, revision=1).strip()


def test_discovery_never_lists_a_markdown_alternate_as_a_page(tmp_path: Path) -> None:
    site = SiteConfig(pages=PAGES, markdown="header")
    with running(tmp_path, site=site) as setup:
        root = setup.site.url("/docs/")
        log = tmp_path / "log.jsonl"
        result = setup.run(
            root,
            "-o",
            str(setup.output),
            "--no-llm",
            "--crawler",
            "http",
            "--no-progress",
            "--pages-dir",
            str(tmp_path / "pages"),
            "--pages-naming",
            "page.html.md",
            "--log-json",
            str(log),
            env=cli_env(tmp_path, api_key=None),
        )
        assert result.code == 0, result
        sources = [s.source for s in sections(setup.output.read_text())]
        assert not any(source.endswith(".md") for source in sources)
        assert set(setup.site.page_urls()) <= set(sources)
        files = sorted(
            p.relative_to(tmp_path / "pages").as_posix() for p in (tmp_path / "pages").rglob("*.md")
        )
        assert files == ["docs/index.html.md"] + [
            f"docs/page-{i:03d}.html.md" for i in range(PAGES)
        ]


@needs_browser
@pytest.mark.browser
def test_browser_mode_takes_the_markdown_too(tmp_path: Path) -> None:
    site = SiteConfig(pages=2, markdown="link")
    with running(tmp_path, site=site) as setup:
        crawled, pages = _run(setup, crawler="browser")
        assert [(e["mode"], e["source_format"]) for e in crawled] == [("browser", "markdown")] * 2
        assert _body(pages, 1).strip() == _expected(setup, 1).strip()
