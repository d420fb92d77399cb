"""Browser and auto modes: JavaScript pages render, failures are per page, Chromium never outlives a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator, MutableMapping
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
from structlog.testing import capture_logs

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.browser import find_chromium
from crawl4ai_llm_docs.crawl.stage import run
from crawl4ai_llm_docs.fetch.retry import RetryPolicy
from crawl4ai_llm_docs.models import Page, UrlEntry
from crawl4ai_llm_docs.testing.site.server import (
    JS_TEXT,
    NAV_MARKERS,
    SPECIAL_PATHS,
    SiteConfig,
    SiteHandle,
    serve_site,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="no Chromium: install the OS package (apt-get install chromium) or `playwright install chromium`",
    ),
]


def chromium_processes(marker: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions ``marker`` (the run's cache directory)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if (
            str(marker) in cmdline
            and process.info["status"] != psutil.STATUS_ZOMBIE
            and process.pid != os.getpid()
        ):
            found.append(process)
    return found


def assert_browser_gone(logs: list[MutableMapping[str, Any]], marker: Path) -> None:
    started = [entry for entry in logs if entry["event"] == "browser_started"]
    assert started, "the browser never started"
    for entry in started:
        assert (
            not psutil.pid_exists(entry["pid"])
            or psutil.Process(entry["pid"]).status() == psutil.STATUS_ZOMBIE
        )
    assert chromium_processes(marker) == []
    assert not any((marker / "chromium-profiles").iterdir())


async def crawl(urls: list[str], cache_dir: Path, **settings: Any) -> list[Page]:
    config = CrawlConfig(**{"page_timeout": 15.0, "max_concurrent": 4, **settings})
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(urls):
                await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))

    policy = RetryPolicy(base_delay=0.05, max_delay=0.2)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(
                partial(
                    run,
                    receive_urls,
                    send_pages,
                    config=config,
                    cache_dir=cache_dir,
                    retry_policy=policy,
                )
            )
            async with receive_pages:
                return [page async for page in receive_pages]


@pytest.fixture
async def site(nursery: trio.Nursery) -> SiteHandle:
    # The JavaScript page's content arrives well after "load": the browser must wait for it.
    config = SiteConfig(pages=4, slow_delay=60, delays={"/special/js-content.json": 0.7})
    handle: SiteHandle = await nursery.start(serve_site, config)
    return handle


async def test_browser_mode_renders_pages_and_reports_failures(
    site: SiteHandle, tmp_path: Path
) -> None:
    good = [
        *site.page_urls(),
        site.url(SPECIAL_PATHS["js_only"]),
        site.url(SPECIAL_PATHS["redirect"]),
    ]
    bad = {
        "missing": "HTTP 404 Not Found",
        "pdf": "not HTML (application/pdf)",
        "loop": "too many redirects (a redirect loop?)",
    }
    urls = good + [site.url(SPECIAL_PATHS[name]) for name in bad] + ["http://nonexistent.invalid/"]
    with capture_logs() as logs:
        pages = await crawl(urls, tmp_path, mode="browser")
    got = {page.url: page for page in pages}
    assert len(got) == len(urls)
    for url in good:
        assert got[url].ok, (url, got[url].error)
        assert got[url].mode == "browser"
        assert not any(marker in got[url].markdown for marker in NAV_MARKERS)
    assert "`configure_2()`" in got[site.url("/docs/page-002.html")].markdown
    rendered = got[site.url(SPECIAL_PATHS["js_only"])]
    assert JS_TEXT in rendered.markdown
    assert '```js\nconsole.log("rendered");\n```' in rendered.markdown
    assert got[site.url(SPECIAL_PATHS["redirect"])].final_url == site.url("/docs/page-001.html")
    for name, reason in bad.items():
        assert got[site.url(SPECIAL_PATHS[name])].error == reason
    assert (
        got["http://nonexistent.invalid/"].error == "DNS lookup failed for host nonexistent.invalid"
    )
    assert_browser_gone(logs, tmp_path)


async def test_auto_mode_renders_only_the_javascript_shell(
    site: SiteHandle, tmp_path: Path
) -> None:
    js_url = site.url(SPECIAL_PATHS["js_only"])
    with capture_logs() as logs:
        pages = await crawl([*site.page_urls(), js_url], tmp_path, mode="auto")
    got = {page.url: page for page in pages}
    assert got[js_url].mode == "browser"
    assert JS_TEXT in got[js_url].markdown
    assert got[js_url].title == "JavaScript app (rendered)"
    assert {page.mode for url, page in got.items() if url != js_url} == {"http"}
    modes = {entry["url"]: entry["mode"] for entry in logs if entry["event"] == "page_crawled"}
    assert modes[js_url] == "browser"
    assert len([entry for entry in logs if entry["event"] == "browser_started"]) == 1
    assert_browser_gone(logs, tmp_path)


async def test_auto_mode_starts_no_browser_when_every_page_has_content(
    site: SiteHandle, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        pages = await crawl(site.page_urls(), tmp_path, mode="auto")
    assert all(page.ok and page.mode == "http" for page in pages)
    assert not [entry for entry in logs if entry["event"] == "browser_started"]


async def test_auto_mode_without_a_browser_keeps_the_http_page(
    site: SiteHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("crawl4ai_llm_docs.crawl.stage.find_chromium", lambda _path: None)
    with capture_logs() as logs:
        pages = await crawl([site.url(SPECIAL_PATHS["js_only"])], tmp_path, mode="auto")
    assert pages[0].mode == "http"
    assert JS_TEXT not in pages[0].markdown
    assert "may need JavaScript" in (pages[0].error or "")  # the empty shell, with a hint
    warnings = [entry["message"] for entry in logs if entry["event"] == "warning"]
    assert len(warnings) == 1
    assert "No Chromium found" in warnings[0]


async def test_cancelling_the_run_kills_the_browser(site: SiteHandle, tmp_path: Path) -> None:
    started = trio.Event()

    def notice(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event["event"] == "browser_started":
            started.set()
        return event

    config = CrawlConfig(mode="browser", page_timeout=120)
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](1)
    send_pages, receive_pages = trio.open_memory_channel[Page](1)
    await send_urls.send(UrlEntry(index=0, url=site.url(SPECIAL_PATHS["slow"]), line=1))
    with capture_logs(processors=[notice]) as logs, trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(run, receive_urls, send_pages, config=config, cache_dir=tmp_path)
            )
            await started.wait()
            await site.wait_for_hit(SPECIAL_PATHS["slow"])  # the page is in flight in the browser
            nursery.cancel_scope.cancel()
    assert site.hits[SPECIAL_PATHS["slow"]] == 1
    assert_browser_gone(logs, tmp_path)
    send_urls.close()
    receive_pages.close()


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import signal
    import sys

    # A terminal's Ctrl-C: a suite started in the background of a shell without job control
    # hands its children SIGINT ignored (the child then never stopped: 2 CI runs here).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from functools import partial
    from pathlib import Path

    import structlog
    import trio

    from crawl4ai_llm_docs.config import CrawlConfig
    from crawl4ai_llm_docs.crawl.stage import run
    from crawl4ai_llm_docs.models import UrlEntry
    from crawl4ai_llm_docs.testing.site.server import SPECIAL_PATHS, SiteConfig, serve_site

    def announce(_logger, _name, event):
        if event["event"] == "browser_started":
            print("browser_started", event["pid"], flush=True)
        return event

    structlog.configure(processors=[announce, structlog.processors.KeyValueRenderer()],
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    async def main():
        async with trio.open_nursery() as nursery:
            site = await nursery.start(serve_site, SiteConfig(pages=2, slow_delay=120))
            send_urls, receive_urls = trio.open_memory_channel(1)
            send_pages, receive_pages = trio.open_memory_channel(1)
            await send_urls.send(UrlEntry(index=0, url=site.url(SPECIAL_PATHS["slow"]), line=1))
            config = CrawlConfig(mode="browser", page_timeout=300)
            await run(receive_urls, send_pages, config=config, cache_dir=Path(sys.argv[1]))

    trio.run(main)
    """
)


@pytest.mark.timeout(90)
def test_ctrl_c_leaves_no_browser_behind(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            line = _first_line(child.stdout)
            assert line.startswith("browser_started"), line
            pid = int(line.split()[1])
            assert psutil.pid_exists(pid)
            assert chromium_processes(tmp_path)
            child.send_signal(signal.SIGINT)
            returncode = child.wait(timeout=30)  # 3-11 s beside two CPU-busy processes
        finally:
            if child.poll() is None:
                child.kill()
                for left in chromium_processes(tmp_path):  # not left to the next tests
                    left.kill()
    assert returncode != 0  # KeyboardInterrupt
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert chromium_processes(tmp_path) == []


def _first_line(stream: Iterator[str]) -> str:
    for line in stream:
        return line.strip()
    return ""
