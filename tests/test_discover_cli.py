"""``map`` and root URLs through the real command line (a subprocess): the URL file it writes,
the options, and bad roots refused with one paragraph, exit 2, nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import cli_env, run_cli, running, sections

from crawl4ai_llm_docs.testing.site.server import (
    SiteConfig,
    SiteHandle,
    page_path,
    run_site_in_thread,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Iterator[SiteHandle]:
    robots = "User-agent: *\nDisallow: /docs/page-02*\nDisallow: /private/\n"
    files = {"/robots.txt": robots, "/private/index.html": "<html><body><p>x</p></body></html>"}
    with run_site_in_thread(SiteConfig(pages=30, files=files)) as handle:
        yield handle


def listed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_map_writes_a_url_file_the_run_accepts(site: SiteHandle, tmp_path: Path) -> None:
    out = tmp_path / "urls.txt"
    result = run_cli(
        ["map", site.url("/docs/"), "-o", str(out), "--exclude", "*page-00[0-4]*"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.code == 0, result
    urls = listed(out.read_text())
    expected = [site.url("/docs/")] + [
        site.url(page_path(i)) for i in range(30) if i >= 5 and not 20 <= i < 30
    ]
    assert urls == expected
    text = out.read_text()
    assert f"# linked from {site.url('/docs/')}" in text
    assert "(followed for links only (--include/--exclude))" in text
    assert "Listed 16 pages" in result.stderr
    # The file is a URL file: a dry run reads it as one.
    dry = run_cli(
        [str(out), "--dry-run", "--crawler", "http", "--no-progress"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert dry.code == 0, dry
    assert "16 pages" in dry.stdout, dry


def test_map_to_standard_output_with_sources_and_depth(site: SiteHandle, tmp_path: Path) -> None:
    result = run_cli(
        [
            "map",
            site.url(page_path(0)),
            "--sources",
            "links",
            "--max-depth",
            "1",
            "--max-pages",
            "5",
        ],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.code == 0, result
    assert listed(result.stdout) == [site.url(page_path(i)) for i in range(5)]
    assert "Discovery stopped at --max-pages 5" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["/private/"], ["disallowed by", "robots.txt", "Start from a page"]),
        (["/special/file.pdf"], ["is not HTML (application/pdf)", "nothing was written"]),
        (["/special/missing.html"], ["answered HTTP 404 Not Found"]),
    ],
)
def test_bad_roots_are_one_paragraph_exit_2_nothing_written(
    site: SiteHandle, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    out = tmp_path / "urls.txt"
    for command in (
        ["map", site.url(args[0]), "-o", str(out)],
        [site.url(args[0]), "--no-llm", "--no-progress"],
    ):
        result = run_cli(command, cwd=tmp_path, env=cli_env(tmp_path))
        assert result.code == 2, result
        assert "Traceback" not in result.stderr
        for fragment in fragments:
            assert fragment in " ".join(result.stderr.split()), result
        assert sorted(p.name for p in tmp_path.iterdir() if p.name != "xdg-cache") == [], result


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["map", "https://x.org/", "--sources", "links,rss"], "'rss' is not a source"),
        (["map", "urls.txt"], "map takes root URLs"),
        (["urls.txt", "https://x.org/"], "Mixed a URL file"),
        (["map", "https://x.org/", "--max-pages", "0"], "discover.max_pages"),
        (["https://user:pw@x.org/"], "contains credentials"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run_cli(args, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 2, result
    assert fragment in " ".join(result.stderr.split()), result


def test_a_root_url_end_to_end_writes_max_pages_documents_in_reading_order(tmp_path: Path) -> None:
    """Discovery as the run's source: each page fetched once, 40 documents in link order."""
    with running(tmp_path, site=SiteConfig(pages=60, sitemap=True)) as setup:
        root = setup.site.url("/docs/")
        args = [root, "-o", str(setup.output), "--crawler", "http", "--no-progress"]
        result = setup.run(*args, "--base-url", setup.provider.base_url, "--max-pages", "40")
        assert result.code == 0, result
        found = sections(setup.output.read_text())
        expected = [root] + [setup.site.url(page_path(i)) for i in range(39)]
        assert [section.source for section in found] == expected
        assert [section.number for section in found] == list(range(1, 41))
        assert "Discovery stopped at --max-pages 40" in result.stderr
        # The crawl that read a page's links is the crawl that made its document.
        assert all(setup.site.hits[page_path(i)] == 1 for i in range(39))
        assert setup.site.hits["/docs/"] == 1
        report = json.loads(setup.report.read_text())
        assert report["run_finished"]["documents"] == 40


def test_a_second_run_from_a_root_finds_the_same_pages(tmp_path: Path) -> None:
    """A re-run with the refresh cache: every page answers 304 and the stored links stand in.

    (Until the refresh state kept each page's links, a discovery run sent no conditional
    request at all and downloaded every page again.)"""
    with running(tmp_path, site=SiteConfig(pages=60, sections=1, validators="both")) as setup:
        root = setup.site.url(page_path(0))  # pages 40-59 are linked only from pages
        args = [root, "-o", str(setup.output), "--crawler", "http", "--no-progress", "--no-llm"]
        first = setup.run(*args)
        assert first.code == 0, first
        before = [section.source for section in sections(setup.output.read_text())]
        setup.site.statuses.clear()
        second = setup.run(*args)
        assert second.code == 0, second
        assert [section.source for section in sections(setup.output.read_text())] == before
        assert len(before) == 60
        assert setup.site.statuses[304] == 60
        assert setup.site.statuses[200] == 0
