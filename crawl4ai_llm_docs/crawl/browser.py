"""Find and launch Chromium, and crawl pages with crawl4ai's ``AsyncWebCrawler`` through it.

We start Chromium ourselves (in its own process group) and connect crawl4ai over CDP, so the
whole browser process tree can be killed on any exit, Ctrl-C included. crawl4ai runs on the
asyncio bridge's loop; everything here is called from trio. Every request of a page is
decided by its ``Route`` first (``intercept.py``): redirects and addresses as over HTTP.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
import trio

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.bridge import AsyncioBridge, open_bridge
from crawl4ai_llm_docs.crawl.extract import MAIN_SELECTORS
from crawl4ai_llm_docs.crawl.intercept import KEY, Interception, intercept
from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai
from crawl4ai_llm_docs.errors import BrowserNotFoundError, CrawlError
from crawl4ai_llm_docs.fetch.credentials import NO_CREDENTIALS, Credentials
from crawl4ai_llm_docs.fetch.http import (
    HTML_TYPES,
    TRANSIENT_STATUSES,
    Fetched,
    FetchFailure,
    parse_retry_after,
)
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, Route

PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # as Playwright does; the sandbox needs privileges containers lack
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
INSTALL_HINT = (
    "Install one with `playwright install chromium` or the OS package "
    "(e.g. `apt-get install chromium`), or set crawl.browser_path to its executable."
)
STARTUP_TIMEOUT = 30.0  # seconds for Chromium to open its DevTools port
CLOSE_GRACE = 5.0  # seconds for each step of shutting the browser down
WAIT_UNTIL = "load"
# A page still showing (almost) no main text at "load" is probably a single-page app fetching
# its content: it gets this long, at most, for the network to go quiet.
SETTLE_MAX = 10.0
_WORD_COUNT_JS = """(selectors) => {
  const words = (el) => (el.innerText || "").split(/\\s+/).filter(Boolean).length;
  for (const selector of selectors) {
    let el = null;
    try { el = document.querySelector(selector); } catch (e) {}
    if (el && (el.innerText || "").trim()) return words(el);
  }
  return document.body ? words(document.body) : 0;
}"""
_DEVTOOLS = re.compile(rb"DevTools listening on (ws://\S+)")
_BLOCKED = "Blocked by anti-bot protection"
_NOT_HTML = re.compile(r"crawl4ai-llm-docs: not HTML \(([^)]*)\)")
_TOO_LARGE_MARK = "crawl4ai-llm-docs: too large"
_NET_ERROR = re.compile(r"net::(ERR_[A-Z_]+)")


def find_chromium(browser_path: str = "") -> str | None:
    """The Chromium to use: ``browser_path``, Playwright's own install, then PATH."""
    if browser_path:
        found = shutil.which(os.path.expanduser(browser_path))
        return os.path.abspath(found) if found else None
    if found := _playwright_chromium():
        return found
    for name in PATH_NAMES:
        if found := shutil.which(name):
            return found
    return None


def require_chromium(browser_path: str = "") -> str:
    """Like ``find_chromium``, but a missing browser is a usage error that says what to do."""
    if found := find_chromium(browser_path):
        return found
    if browser_path:
        raise BrowserNotFoundError(
            f"crawl.browser_path = {browser_path!r} is not an executable Chromium/Chrome. "
            + INSTALL_HINT
        )
    raise BrowserNotFoundError(
        "No Chromium or Chrome was found for browser crawling (looked for Playwright's "
        f"Chromium and for {', '.join(PATH_NAMES)} on PATH). {INSTALL_HINT} "
        "Or use --mode http."
    )


def _playwright_chromium() -> str | None:
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.expanduser(
        "~/.cache/ms-playwright"
    )
    patterns = (
        "chromium-*/chrome-linux*/chrome",
        "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
        "chromium-*/chrome-win*/chrome.exe",
    )
    found = [path for pattern in patterns for path in glob.glob(os.path.join(root, pattern))]
    found = [path for path in found if os.access(path, os.X_OK)]

    def build(path: str) -> int:
        digits = re.search(r"chromium-(\d+)", path)
        return int(digits.group(1)) if digits else 0

    return max(found, key=build) if found else None


class BrowserCrawler:
    """Crawls pages in the shared Chromium, one isolated browser context per crawl config."""

    def __init__(
        self,
        bridge: AsyncioBridge,
        crawler: Any,
        config: CrawlConfig,
        pid: int,
        profile: Path,
        credentials: Credentials = NO_CREDENTIALS,
    ) -> None:
        self._bridge = bridge
        self._crawler = crawler
        self._config = config
        self.pid = pid
        self.profile = profile
        self._credentials = credentials  # added per request, to its own origin only

    async def fetch(self, url: str, *, route: Route = OPEN_ROUTE) -> Fetched:
        token = trio.lowlevel.current_trio_token()
        interception = Interception(route, url, token, self._credentials)
        crawl = partial(_crawl_page, self._crawler, url, self._config, interception)
        result = await self._bridge.run(crawl)
        try:
            return _to_fetched(result, url, self._config, refused=interception.refused)
        except FetchFailure as failure:  # a 401/403 names the credential sent, if any
            url = failure.final_url or url
            failure.reason = self._credentials.refused(failure.reason, url, failure.status)
            failure.args = (failure.reason,)
            raise


@asynccontextmanager
async def open_browser(
    executable: str,
    *,
    config: CrawlConfig,
    cache_dir: Path,
    credentials: Credentials = NO_CREDENTIALS,
) -> AsyncIterator[BrowserCrawler]:
    """Launch Chromium, connect crawl4ai to it; on exit close both, whatever happened."""
    base_dir = prepare_crawl4ai(cache_dir)
    profile = await trio.to_thread.run_sync(_new_profile, cache_dir)
    try:
        async with trio.open_nursery() as nursery:
            try:
                process = await trio.lowlevel.open_process(
                    [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group: one signal reaches all
                    # Chromium's crash handler keeps its database under XDG_CONFIG_HOME, not
                    # the profile: keep it in the throwaway profile, out of the user's home.
                    env={**os.environ, "XDG_CONFIG_HOME": str(profile / "xdg-config")},
                )
            except OSError as exc:
                raise CrawlError(f"could not run Chromium ({executable}): {exc}") from exc
            try:
                cdp_url = await _devtools_url(process, executable)
                nursery.start_soon(_drain, process)
                log = structlog.get_logger()
                log.info(
                    "browser_started", executable=executable, pid=process.pid, profile=str(profile)
                )
                async with open_bridge() as bridge:
                    crawler = await bridge.run(partial(_start_crawler, cdp_url, config, base_dir))
                    try:
                        yield BrowserCrawler(
                            bridge, crawler, config, process.pid, profile, credentials
                        )
                    finally:
                        with trio.move_on_after(CLOSE_GRACE, shield=True):
                            try:
                                await bridge.run(crawler.close)
                            except Exception as exc:  # the process is killed next anyway
                                structlog.get_logger().debug(
                                    "browser_close_failed", error=repr(exc)
                                )
            finally:
                await _stop(process)
                structlog.get_logger().info("browser_stopped", pid=process.pid)
                nursery.cancel_scope.cancel()
    finally:
        with trio.move_on_after(CLOSE_GRACE, shield=True):
            await trio.to_thread.run_sync(partial(shutil.rmtree, profile, ignore_errors=True))


def _new_profile(cache_dir: Path) -> Path:
    parent = cache_dir / "chromium-profiles"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="profile-", dir=parent))


async def _devtools_url(process: trio.Process, executable: str) -> str:
    """Read Chromium's stderr until it names its DevTools WebSocket."""
    assert process.stderr is not None
    seen = b""
    with trio.move_on_after(STARTUP_TIMEOUT) as waited:
        async for chunk in process.stderr:
            seen += chunk
            if found := _DEVTOOLS.search(seen):
                return found.group(1).decode()
            seen = seen[-8192:]
    last = " / ".join(seen.decode(errors="replace").strip().splitlines()[-3:])
    what = (
        f"did not open its DevTools port within {STARTUP_TIMEOUT:g} s"
        if waited.cancelled_caught
        else "exited before opening its DevTools port"
    )
    raise CrawlError(f"Chromium ({executable}) {what}" + (f": {last}" if last else ""))


async def _drain(process: trio.Process) -> None:
    # Chromium keeps logging to stderr; an unread pipe would eventually block it.
    assert process.stderr is not None
    async for _ in process.stderr:
        pass


async def _stop(process: trio.Process) -> None:
    """SIGTERM the browser's process group, SIGKILL what is left; never interrupted."""
    with trio.CancelScope(shield=True):
        _signal_group(process, signal.SIGTERM)
        with trio.move_on_after(CLOSE_GRACE):
            await process.wait()
        # Helpers (zygote, renderers) that outlived the browser, or a browser that hung.
        _signal_group(process, signal.SIGKILL)
        with trio.move_on_after(CLOSE_GRACE):
            await process.wait()


def _signal_group(process: trio.Process, signum: signal.Signals) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signum)
        elif process.returncode is None:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------- on the asyncio loop


async def _start_crawler(cdp_url: str, config: CrawlConfig, base_dir: Path) -> Any:
    from crawl4ai import AsyncWebCrawler, BrowserConfig
    from crawl4ai.async_logger import AsyncLogger

    browser_config = BrowserConfig(
        cdp_url=cdp_url,
        create_isolated_context=True,  # without it concurrent pages share a tab and get lost
        cdp_cleanup_on_close=True,  # else close() leaves Playwright's driver running
        cdp_close_delay=0,
        headless=True,
        verbose=False,
        user_agent=config.user_agent,
        ignore_https_errors=not config.verify_tls,
    )
    crawler = AsyncWebCrawler(
        config=browser_config,
        base_directory=str(base_dir),
        logger=AsyncLogger(log_file=None, verbose=False),
    )
    await crawler.start()
    strategy = crawler.crawler_strategy
    strategy.set_hook("on_page_context_created", intercept)
    strategy.set_hook("after_goto", partial(_check_response, config.max_page_bytes))
    strategy.set_hook("before_retrieve_html", partial(_settle, config))
    return crawler


async def _settle(config: CrawlConfig, page: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Wait for network idle only when the page looks like an unrendered JavaScript shell.

    Waiting on every page would cost each one at least half a second of idle network.
    """
    selectors = [config.css_selector] if config.css_selector else list(MAIN_SELECTORS)
    try:
        words = await page.evaluate(_WORD_COUNT_JS, selectors)
        if words < max(config.js_shell_min_words, 1):
            settle = min(SETTLE_MAX, config.page_timeout / 2)
            await page.wait_for_load_state("networkidle", timeout=settle * 1000)
    except Exception as exc:  # still loading after the cap: keep what has rendered
        structlog.get_logger().debug("browser_settle_stopped", url=page.url, error=repr(exc))
    return page


async def _check_response(max_bytes: int, page: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Stop right after navigation when the response is not HTML or declares a huge body.

    Otherwise Chromium opens its PDF viewer or a download and the page only times out.
    """
    response = kwargs.get("response")
    if response is not None:
        content_type = (await response.header_value("content-type") or "").split(";")[0]
        content_type = content_type.strip().lower()
        if content_type and content_type not in HTML_TYPES:
            raise RuntimeError(f"crawl4ai-llm-docs: not HTML ({content_type})")
        length = await response.header_value("content-length") or ""
        if length.isdigit() and int(length) > max_bytes:
            raise RuntimeError(_TOO_LARGE_MARK)
    return page


async def _crawl_page(
    crawler: Any, url: str, config: CrawlConfig, interception: Interception
) -> Any:
    from crawl4ai import CacheMode, CrawlerRunConfig

    # prefetch: return the rendered HTML only; extract.py does the conversion for both modes.
    run_config = CrawlerRunConfig(
        cache_mode=CacheMode.BYPASS,
        prefetch=True,
        wait_until=WAIT_UNTIL,
        page_timeout=int(config.page_timeout * 1000),
        verbose=False,
        shared_data={KEY: interception},
    )
    return await crawler.arun(url, config=run_config)


# ---------------------------------------------------------------- results


def _to_fetched(result: Any, url: str, config: CrawlConfig, *, refused: str = "") -> Fetched:
    max_bytes = config.max_page_bytes
    final_url = str(getattr(result, "redirected_url", None) or url)
    # status_code is the first hop's; redirected_status_code the final response's.
    status = getattr(result, "redirected_status_code", None) or getattr(result, "status_code", None)
    headers = {
        str(k).lower(): str(v) for k, v in (getattr(result, "response_headers", None) or {}).items()
    }
    html = str(getattr(result, "html", "") or "")
    if status is not None and not 200 <= status < 300:
        raise FetchFailure(
            f"HTTP {status} {_phrase(status)}".strip(),
            status=status,
            transient=status in TRANSIENT_STATUSES,
            retry_after=parse_retry_after(headers.get("retry-after")),
            final_url=final_url,
        )
    message = str(getattr(result, "error_message", "") or "")
    if refused and not getattr(result, "success", False):
        raise FetchFailure(refused, status=status, final_url=final_url)
    # crawl4ai's anti-bot heuristic fails short pages; whether they are useful is ours to judge.
    if not getattr(result, "success", False) and not (html and message.startswith(_BLOCKED)):
        raise _browser_failure(message or "unknown error", url, status, config)
    size = len(html.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise FetchFailure(_too_large_reason(max_bytes), status=status, final_url=final_url)
    return Fetched(
        final_url=final_url,
        status=status or 200,
        html=html,
        bytes=size,
        content_type="text/html",  # what the browser rendered, whatever the server said
        link_header=headers.get("link", ""),
    )


def _browser_failure(
    message: str, url: str, status: int | None, config: CrawlConfig
) -> FetchFailure:
    timeout, max_bytes = config.page_timeout, config.max_page_bytes
    parts = urlsplit(url)
    host = parts.hostname or url
    if "ERR_NAME_NOT_RESOLVED" in message:
        return FetchFailure(f"DNS lookup failed for host {host}")
    if "ERR_CONNECTION_REFUSED" in message or "ERR_CONNECTION_RESET" in message:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return FetchFailure(f"connection refused by {host}:{port}", transient=True)
    if "ERR_TOO_MANY_REDIRECTS" in message:
        return FetchFailure("too many redirects (a redirect loop?)")
    if found := _NOT_HTML.search(message):
        return FetchFailure(f"not HTML ({found.group(1)})", status=status)
    if _TOO_LARGE_MARK in message:
        return FetchFailure(_too_large_reason(max_bytes), status=status)
    if "Download is starting" in message or "ERR_ABORTED" in message:
        return FetchFailure("not HTML (the browser started a download)", status=status)
    if "ERR_CERT" in message:
        return FetchFailure(f"TLS certificate verification failed for host {host}")
    if "Timeout" in message or "timeout" in message:
        return FetchFailure(f"timed out after {timeout:g} s", transient=True)
    if found := _NET_ERROR.search(message):
        return FetchFailure(f"browser error: net::{found.group(1)}", status=status)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("Error:")), lines[0] if lines else "")
    transient = "closed" in message or "crash" in message
    return FetchFailure(f"browser error: {detail[:200]}", status=status, transient=transient)


def _too_large_reason(max_bytes: int) -> str:
    return f"page larger than max_page_bytes ({max_bytes} bytes)"


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
