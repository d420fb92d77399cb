"""Refresh of runs started from root URLs, through the real CLI.

A 304 has no body to read links from: the refresh state keeps what discovery read from each
page and replays it, so a discovery re-run is answered by 304s, sends nothing to the LLM and
lists the same pages in the same order. A page whose sitemap ``lastmod`` did not move is not
requested at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import Setup, page_changes, run_finished, running, sections

from crawl4ai_llm_docs.testing.site.server import SiteConfig, page_path

pytestmark = pytest.mark.slow

PAGES = 12


def _root_args(setup: Setup, root: str) -> list[str]:
    return [
        root,
        "-o",
        str(setup.output),
        "--crawler",
        "http",
        "--no-progress",
        "--base-url",
        setup.provider.base_url,
    ]


def test_a_discovery_rerun_is_answered_by_304s_and_only_an_edit_is_sent(tmp_path: Path) -> None:
    site = SiteConfig(pages=PAGES, sections=1, validators="both")
    with running(tmp_path, site=site) as setup:
        root = setup.site.url(page_path(0))
        args = _root_args(setup, root)
        first = setup.run(*args)
        assert first.code == 0, first
        before = sections(setup.output.read_text())
        assert len(before) == PAGES
        assert page_changes(run_finished(setup)) == (PAGES, 0, 0, 0)
        assert setup.provider.stats().requests >= PAGES
        setup.provider.reset()
        setup.site.statuses.clear()

        second = setup.run(*args)
        assert second.code == 0, second
        assert setup.site.statuses[304] == PAGES  # every page, the root included
        assert setup.site.statuses[200] == 0
        assert setup.provider.stats().requests == 0
        assert page_changes(run_finished(setup)) == (0, 0, PAGES, 0)
        again = sections(setup.output.read_text())
        assert [s.source for s in again] == [s.source for s in before]
        assert [s.body for s in again] == [s.body for s in before]

        edited = page_path(5)
        setup.site.change(edited)
        setup.provider.reset()
        setup.site.statuses.clear()
        third = setup.run(*args)
        assert third.code == 0, third
        assert setup.site.statuses[200] == 1
        assert setup.site.statuses[304] == PAGES - 1
        stats = setup.provider.stats()
        assert stats.requests == len(stats.documents) == 1
        assert page_changes(run_finished(setup)) == (0, 1, PAGES - 1, 0)
        after = sections(setup.output.read_text())
    assert [s.source for s in after] == [s.source for s in before]
    for section in after:
        assert ("Revision 1" in section.body) == (section.source == setup.site.url(edited))


def _sitemap(paths: list[str], lastmods: dict[str, str]) -> str:
    entries = "".join(
        f"<url><loc>{{base}}{path}</loc><lastmod>{lastmods.get(path, '2024-05-01')}</lastmod></url>"
        for path in paths
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n'
    )


def test_a_page_whose_sitemap_lastmod_did_not_move_is_not_requested(tmp_path: Path) -> None:
    paths = [page_path(i) for i in range(PAGES)]
    files = {"/sitemap.xml": _sitemap(paths, {})}
    site = SiteConfig(pages=PAGES, sections=1, validators="both", files=files)
    with running(tmp_path, site=site) as setup:
        root = setup.site.url(page_path(0))
        args = _root_args(setup, root)
        first = setup.run(*args)
        assert first.code == 0, first
        before = [s.source for s in sections(setup.output.read_text())]
        assert len(before) == PAGES
        assert setup.site.hits["/sitemap.xml"] == 1

        moved, silent = page_path(3), page_path(8)
        setup.site.change(moved)
        setup.site.change(silent)  # edited without moving its lastmod: not detectable
        files["/sitemap.xml"] = _sitemap(paths, {moved: "2024-06-01"})
        setup.site.hits.clear()
        setup.site.statuses.clear()
        setup.provider.reset()
        second = setup.run(*args)
        assert second.code == 0, second
        # The root is read before the sitemap (it decides the scope): a conditional request.
        # Then only the page whose lastmod moved was requested; the others not at all.
        assert [path for path in paths if setup.site.hits[path]] == [page_path(0), moved]
        assert setup.site.statuses[304] == 1
        assert setup.site.statuses[200] == 1
        stats = setup.provider.stats()
        assert stats.requests == len(stats.documents) == 1
        assert page_changes(run_finished(setup)) == (0, 1, PAGES - 1, 0)
        after = sections(setup.output.read_text())
        assert [s.source for s in after] == before
        bodies = {s.source: s.body for s in after}
        assert "Revision 1" in bodies[setup.site.url(moved)]
        assert "Revision 1" not in bodies[setup.site.url(silent)]

        # --refresh full fetches everything and corrects the page the sitemap hid.
        setup.site.hits.clear()
        full = setup.run(*args, "--refresh", "full")
        assert full.code == 0, full
        assert all(setup.site.hits[path] == 1 for path in paths)
        fixed = {s.source: s.body for s in sections(setup.output.read_text())}
    assert "Revision 1" in fixed[setup.site.url(silent)]
