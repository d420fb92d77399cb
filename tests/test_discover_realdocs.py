"""Discovery's done-when on real Sphinx docs (Debian's python-click-doc and python-attr-doc),
served on loopback as two sections of one site, through the real ``map`` command.

Needs ``apt-get install python-click-doc python-attr-doc``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import cli_env, run_cli

from crawl4ai_llm_docs.discover.scope import Scope
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, run_site_in_thread

SECTIONS = {
    "click": Path("/usr/share/doc/python-click-doc/html"),
    "attr": Path("/usr/share/doc/python-attr-doc/html"),
}
pytestmark = pytest.mark.slow


@pytest.fixture
def two_sections(tmp_path: Path) -> Path:
    for name, root in SECTIONS.items():
        if not (root / "index.html").is_file():
            pytest.skip(f"{root} is missing: apt-get install python-{name}-doc")
    site = tmp_path / "site"
    site.mkdir()
    for name, root in SECTIONS.items():
        (site / name).symlink_to(root)
    return site


def section_pages(site: SiteHandle, name: str) -> set[str]:
    """The section's pages a reader wants: every HTML file but search and generated indexes
    (Sphinx's search page is search.html in these builds; discovery knows it by content)."""
    scope = Scope.for_roots([site.url(f"/{name}/")])
    urls = {site.url(path) for path in site.page_paths if path.startswith(f"/{name}/")}
    urls.discard(site.url(f"/{name}/search.html"))
    return {url for url in urls if scope.classify(url)[0] == "list"}


def listed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_map_of_a_section_finds_its_pages_and_nothing_else(
    name: str, two_sections: Path, tmp_path: Path
) -> None:
    out = tmp_path / f"{name}.urls"
    with run_site_in_thread(SiteConfig(directory=str(two_sections))) as site:
        result = run_cli(
            ["map", site.url(f"/{name}/index.html"), "-o", str(out)],
            cwd=tmp_path,
            env=cli_env(tmp_path),
        )
        assert result.code == 0, result
        urls = listed(out.read_text())
        expected = section_pages(site, name)
    assert len(urls) == len(set(urls))  # no duplicates
    assert all(url.startswith(site.url(f"/{name}/")) for url in urls)  # none outside the prefix
    found = {url.replace("/index.html", "/") for url in urls} | set(urls)
    missing = expected - found
    assert len(expected & found) >= 0.95 * len(expected), missing
    assert urls[0] == site.url(f"/{name}/index.html")  # the root first
    assert f"Listed {len(urls)} pages" in result.stderr


def test_sitemap_and_robots_every_sitemap_page_found_none_disallowed_fetched(
    two_sections: Path, tmp_path: Path
) -> None:
    robots = (
        "User-agent: *\nDisallow: /click/api.html\nDisallow: /*/changes.html\n"
        "Disallow: /attr/\nSitemap: {base}/sitemap.xml\n"
    )
    # The generated sitemap lists every HTML file, also ones no page links to (404.html).
    config = SiteConfig(directory=str(two_sections), sitemap=True, files={"/robots.txt": robots})
    out = tmp_path / "click.urls"
    with run_site_in_thread(config) as site:
        result = run_cli(
            ["map", site.url("/click/"), "-o", str(out)], cwd=tmp_path, env=cli_env(tmp_path)
        )
        assert result.code == 0, result
        requests = list(site.requests)
        sitemap = {site.url(path) for path in site.page_paths}
        expected = {url for url in section_pages(site, "click")}
    urls = set(listed(out.read_text()))
    disallowed = ("/click/api.html", "/click/changes.html")
    assert [path for path in requests if path in disallowed or path.startswith("/attr/")] == []
    in_scope = {url for url in expected if not url.endswith(disallowed)}
    assert in_scope <= urls | {site.url("/click/index.html")}
    assert site.url("/click/404.html") in urls  # only the sitemap knows it
    assert urls <= sitemap | {site.url("/click/")}
    assert "/sitemap.xml" in requests
    text = out.read_text()
    assert "# sitemap " in text
    assert "disallowed by robots.txt" in text
    search = site.url("/click/search.html")
    assert f"# not listed: {search} (a search page (read from the page))" in text
