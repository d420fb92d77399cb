"""Issue 25's network and discovery cases through the real CLI, against the hostile site.

Every run: peak memory under 300 MB (the process's own, from ``wait4``), under 60 s, the
exit code and message the README's table gives, and the pages that should be found, found.
The site listens on 127.0.0.1; "another host" is the same server called ``localhost``, so a
path that must never be fetched can be checked in its hit counter. Refusals of private and
link-local addresses are decided, never sent: ``test_fetch_guard.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import cli_env, failed_section, sections
from hostile_support import Measured, run_measured

from crawl4ai_llm_docs.crawl.browser import find_chromium
from crawl4ai_llm_docs.testing.hostile import sites
from crawl4ai_llm_docs.testing.hostile.payloads import Answer
from crawl4ai_llm_docs.testing.hostile.server import HostileServer

pytestmark = pytest.mark.slow

MAX_MB = 300
MAX_S = 60


def bounded(result: Measured) -> None:
    assert result.peak_mb < MAX_MB, result
    assert result.seconds < MAX_S, result
    assert "Traceback" not in result.stderr, result


def listed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def map_site(site: HostileServer, tmp: Path, root: str, *extra: str, **env: str) -> Measured:
    out = tmp / "urls.txt"
    args = ["map", site.url(root), "-o", str(out), "--no-progress", *extra]
    return run_measured(args, cwd=tmp, env=cli_env(tmp, **env))


# ---------------------------------------------------------------- decompression bombs


def test_pages_that_inflate_to_a_gigabyte_are_refused_and_the_rest_is_written(
    tmp_path: Path,
) -> None:
    with HostileServer(sites.page_bombs()).running() as site:
        urls = [site.url("/docs/ok.html"), *(site.url(p) for p in sites.PAGE_BOMBS)]
        (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
        out = tmp_path / "out.md"
        args = ["urls.txt", "-o", str(out), "--no-llm", "--crawler", "http", "--no-progress"]
        result = run_measured(args, cwd=tmp_path, env=cli_env(tmp_path))
    bounded(result)
    assert result.code == 1, result  # some pages failed; the output is written
    markdown = out.read_text()
    assert [s.source for s in sections(markdown)] == urls[:1]
    failed = failed_section(markdown)
    too_large = "page larger than max_page_bytes (20000000 bytes)"
    expected = {
        "/docs/br.html": too_large,
        "/docs/gzip.html": too_large,
        "/docs/deflate.html": too_large,
        "/docs/gzip-gzip.html": "Content-Encoding 'gzip, gzip' refused: more than one coding",
        "/docs/compress.html": "Content-Encoding 'compress' is not supported",
    }
    for path, reason in expected.items():
        assert f"- {site.url(path)}: {reason}" in failed, failed


def test_site_files_sent_as_bombs_leave_map_bounded_and_whole(tmp_path: Path) -> None:
    """robots.txt and a sitemap inflating to 1 GiB (br), llms.txt to 1 GiB (gzip), a .xml.gz
    of one URL two million times: map reads what it may and lists the site's 4 pages."""
    with HostileServer(sites.site_file_bombs()).running() as site:
        result = map_site(site, tmp_path, "/docs/")
    bounded(result)
    assert result.code == 0, result
    urls = listed((tmp_path / "urls.txt").read_text())
    assert urls == [site.url("/docs/"), *(site.url(f"/docs/p{n}.html") for n in range(3))]
    stderr = " ".join(result.stderr.split())
    assert "sitemap-bomb.xml skipped: larger than 50 MiB uncompressed" in stderr, result
    assert "flood.xml.gz lists more than 50000 URLs" in stderr, result


# ---------------------------------------------------------------- time


def test_dripping_sitemaps_are_read_together_and_cut_at_the_deadline(tmp_path: Path) -> None:
    """Three sitemaps that never end: read at once, each cut at discover.sources_timeout,
    the URLs that arrived used (it took 183 s, 60 s per file, one after another)."""
    with HostileServer(sites.dripping_sitemaps(3)).running() as site:
        result = map_site(site, tmp_path, "/docs/", CRAWL4AI_LLM_DOCS_DISCOVER__SOURCES_TIMEOUT="4")
    bounded(result)
    assert result.code == 0, result
    assert result.seconds < 20, result  # one deadline, not three
    urls = listed((tmp_path / "urls.txt").read_text())
    expected = [site.url("/docs/"), site.url("/docs/a.html")]
    expected += [site.url(f"/docs/only-in-sitemap-{n}.html") for n in range(3)]
    assert urls == expected


def test_a_50_mb_robots_txt_of_wildcards_costs_one_check_per_page(tmp_path: Path) -> None:
    with HostileServer(sites.wildcard_robots_site()).running() as site:
        result = map_site(site, tmp_path, "/docs/", "--sources", "links")
        assert site.hits["/docs/private/x.html"] == 0
    bounded(result)
    assert result.code == 0, result
    text = (tmp_path / "urls.txt").read_text()
    assert len(listed(text)) == 31
    assert f"# not listed: {site.url('/docs/private/x.html')} (disallowed by robots.txt)" in text


# ---------------------------------------------------------------- redirects, other hosts


@pytest.mark.parametrize(
    "crawler",
    [
        "http",
        pytest.param(
            "browser",
            marks=[
                pytest.mark.browser,
                pytest.mark.skipif(find_chromium("") is None, reason="no Chromium"),
            ],
        ),
    ],
)
def test_redirects_are_checked_at_every_hop_and_other_hosts_never_fetched(
    tmp_path: Path, crawler: str
) -> None:
    with HostileServer(sites.redirects()).running() as site:
        out = tmp_path / "out.md"
        args = [site.url("/docs/"), "-o", str(out), "--no-llm", "--crawler", crawler]
        result = run_measured([*args, "--no-progress"], cwd=tmp_path, env=cli_env(tmp_path))
        never = {path: site.hits[path] for path in sites.NEVER_FETCHED}
        if crawler == "http":  # map writes each page left out, with its reason
            mapped = map_site(site, tmp_path, "/docs/")
            never |= {path: site.hits[path] for path in sites.NEVER_FETCHED}
    assert never == dict.fromkeys(sites.NEVER_FETCHED, 0)
    bounded(result)
    assert result.code == 0, result
    assert [s.source for s in sections(out.read_text())] == [
        site.url("/docs/"),
        site.url("/docs/a.html"),
    ]
    report = json.loads(out.with_suffix(".report.json").read_text())
    left_out = report["discovery"]["left_out"]
    assert left_out == {"duplicate": 1, "redirect": 2, "robots": 1}, report["discovery"]
    if crawler != "http":
        return
    bounded(mapped)
    text = (tmp_path / "urls.txt").read_text()
    base = site.url("/docs")
    for line in (
        f"# not listed: {base}/to-private.html (redirect to {base}/private/secret.html refused: "
        "disallowed by robots.txt)",
        f"# not listed: {base}/to-outside.html (redirect to {site.url('/outside/page.html')} "
        "refused: outside the scope)",
        f"# not listed: {base}/to-elsewhere.html (redirect to "
        f"{site.other_url}/docs/elsewhere.html refused: outside the scope)",
        f"# not listed: {base}/to-a.html (redirects to {base}/a.html, a page already listed)",
    ):
        assert line in text, text


def test_a_root_redirecting_to_another_port_is_refused_by_that_origins_robots(
    tmp_path: Path,
) -> None:
    closed = {"/robots.txt": Answer.text("User-agent: *\nDisallow: /\n"), "/docs/": sites.page("B")}
    with HostileServer(closed).running() as other:
        routes = {"/docs/": Answer.redirect(other.url("/docs/"))}
        with HostileServer(routes).running() as site:
            result = map_site(site, tmp_path, "/docs/")
    bounded(result)
    assert result.code == 2, result
    message = " ".join(result.stderr.split())
    assert (
        f"The root URL {site.url('/docs/')} redirects to {other.url('/docs/')}, which is "
        f"disallowed by {other.url('/robots.txt')}" in message
    ), result
    assert other.hits["/robots.txt"] == 1
    assert other.hits["/docs/"] == 0  # read robots.txt first, then did not go
    assert not (tmp_path / "urls.txt").exists()


# ---------------------------------------------------------------- a docs site, whole


def test_map_of_a_docs_site_lists_every_page_in_scope_or_names_why_not(tmp_path: Path) -> None:
    with HostileServer(sites.docs_tree()).running() as site:
        result = map_site(site, tmp_path, "/en/5.0/")
        out = tmp_path / "run.md"
        args = [site.url("/en/5.0/"), "-o", str(out), "--no-llm", "--crawler", "http"]
        run = run_measured([*args, "--no-progress"], cwd=tmp_path, env=cli_env(tmp_path))
        assert site.hits["/en/4.2/"] == 0
    bounded(result)
    assert result.code == 0, result
    text = (tmp_path / "urls.txt").read_text()
    base = site.url("/en/5.0/")
    expected = [base + path for path in sites.DOCS_TREE_LISTED]
    assert listed(text) == expected
    for path, reason in sites.DOCS_TREE_LEFT_OUT.items():
        assert f"# not listed: {base}{path} ({reason}" in text, (path, text)
    # Two names of one page are one page; links out of scope are only counted.
    assert "topics/auth/index.html" not in text
    assert "dir/index.html" not in text
    assert "/en/4.2/" not in text
    assert "github.com" not in text
    bounded(run)
    assert run.code == 0, run
    assert [s.source for s in sections(out.read_text())] == expected
    report = json.loads(out.with_suffix(".report.json").read_text())["discovery"]
    assert report["left_out"] == {
        "broken": 1,
        "duplicate": 1,
        "noindex": 1,
        "robots": 1,
        "skip_rule": 4,  # the search page, genindex, logo.png, _sources/
    }, report
    assert report["out_of_scope"] >= 3
