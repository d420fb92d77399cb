"""Issue 3 through the real CLI (``--no-llm``): the three crawl modes, JavaScript pages, and
per-page failures that are reported without stopping the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from e2e_support import cli_env, failed_section, running, sections

from crawl4ai_llm_docs.testing.site.server import JS_TEXT, NAV_MARKERS, SPECIAL_PATHS, SiteConfig

HAS_CHROMIUM = any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))
needs_browser = pytest.mark.skipif(
    not HAS_CHROMIUM, reason="no Chromium on PATH (apt-get install chromium)"
)


def crawl_args(urls_file: Path, output: Path, mode: str) -> list[str]:
    return [str(urls_file), "-o", str(output), "--no-llm", "--crawler", mode, "--no-progress"]


@pytest.mark.parametrize(
    "mode",
    [
        "http",
        pytest.param("browser", marks=[needs_browser, pytest.mark.browser]),
        pytest.param("auto", marks=[needs_browser, pytest.mark.browser]),
    ],
)
def test_each_mode_writes_every_page_in_input_order_without_navigation(
    tmp_path: Path, mode: str
) -> None:
    with running(tmp_path, pages=5) as setup:
        env = cli_env(tmp_path, api_key=None)  # --no-llm needs no key
        result = setup.run(*crawl_args(setup.urls_file, setup.output, mode), env=env)
        assert result.code == 0, result
        text = setup.output.read_text()
        found = sections(text)
        assert [s.source for s in found] == setup.urls
        for marker in NAV_MARKERS:
            assert marker not in text
        assert "```" in text  # code blocks survive
        assert setup.provider.stats().requests == 0


@needs_browser
@pytest.mark.browser
@pytest.mark.parametrize(("mode", "rendered"), [("browser", True), ("auto", True), ("http", False)])
def test_a_javascript_only_page(tmp_path: Path, mode: str, rendered: bool) -> None:
    with running(tmp_path, pages=2, extra_paths=[SPECIAL_PATHS["js_only"]]) as setup:
        env = cli_env(tmp_path, api_key=None)
        log = tmp_path / "log.jsonl"
        result = setup.run(
            *crawl_args(setup.urls_file, setup.output, mode), "--log-json", str(log), env=env
        )
        text = setup.output.read_text()
        assert (JS_TEXT in text) is rendered, result
        lines = [line for line in log.read_text().splitlines() if "js-only" in line]
        crawled = [line for line in lines if '"page_crawled"' in line]
        failed = [line for line in lines if '"page_failed"' in line]
        if rendered:
            assert len(crawled) == 1
            assert '"mode":"browser"' in crawled[0]
            assert result.code == 0, result
        else:  # over plain HTTP the shell is empty: a failed page with a hint, exit 1
            assert crawled == []
            assert len(failed) == 1
            assert "may need JavaScript" in failed[0]
            assert result.code == 1, result


def test_failures_are_reported_per_page_and_the_run_goes_on(tmp_path: Path) -> None:
    site = SiteConfig(pages=3, slow_delay=30.0)
    failing = [SPECIAL_PATHS[name] for name in ("missing", "pdf", "slow", "loop")]
    with running(tmp_path, site=site, extra_paths=failing) as setup:
        dns = "http://nonexistent.invalid/page.html"
        setup.urls_file.write_text("\n".join([*setup.urls, dns]) + "\n")
        env = cli_env(
            tmp_path,
            api_key=None,
            CRAWL4AI_LLM_DOCS_CRAWL__PAGE_TIMEOUT="2",
            CRAWL4AI_LLM_DOCS_CRAWL__RETRIES="0",
        )
        result = setup.run(*crawl_args(setup.urls_file, setup.output, "http"), env=env)
        assert result.code == 1, result
        text = setup.output.read_text()
        assert len(sections(text)) == 3  # the good pages are all there
        failed = failed_section(text)
        assert "missing.html: HTTP 404" in failed
        assert "file.pdf: not HTML (application/pdf)" in failed
        assert "slow.html: timed out after 2 s" in failed
        assert "loop-a.html" in failed
        assert "redirect" in failed.lower()
        assert "nonexistent.invalid" in failed
        report = setup.report.read_text()
        assert '"failed_pages": 5' in report


def test_browser_mode_without_a_browser_is_a_clear_error(tmp_path: Path) -> None:
    with running(tmp_path, pages=1) as setup:
        env = cli_env(
            tmp_path, api_key=None, PATH="/nonexistent", CRAWL4AI_LLM_DOCS_CRAWL__BROWSER_PATH=""
        )
        env["PLAYWRIGHT_BROWSERS_PATH"] = str(tmp_path / "no-browsers")
        result = setup.run(*crawl_args(setup.urls_file, setup.output, "browser"), env=env)
        assert result.code == 2, result
        assert "chromium" in result.stderr.lower()
        assert "Traceback" not in result.stderr
        assert not setup.output.exists()
