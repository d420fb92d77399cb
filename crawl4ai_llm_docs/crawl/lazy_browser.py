"""The crawl stage's browser: started by the first page that needs it, kept until the stage ends.

In auto mode a browser that cannot start is not an error: JavaScript-only pages keep their HTTP
content, with one warning. In browser mode it is.
"""

from __future__ import annotations

from pathlib import Path

import structlog
import trio

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl.browser import BrowserCrawler, open_browser
from crawl4ai_llm_docs.fetch.credentials import NO_CREDENTIALS, Credentials


def _single(exc: Exception) -> Exception:
    """The one error inside nested single-member exception groups (trio wraps task errors)."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class LazyBrowser:
    """The browser, started by the first page that needs it and kept until the stage ends."""

    def __init__(
        self,
        nursery: trio.Nursery,
        executable: str | None,
        config: CrawlConfig,
        cache_dir: Path,
        credentials: Credentials = NO_CREDENTIALS,
    ) -> None:
        self._nursery = nursery
        self._credentials = credentials
        self._executable = executable
        self._config = config
        self._cache_dir = cache_dir
        self._lock = trio.Lock()
        self._closing = trio.Event()
        self._browser: BrowserCrawler | None = None
        self._unavailable = executable is None
        self._warned = False

    async def get(self, *, required: bool = False) -> BrowserCrawler | None:
        if self._browser is not None or self._unavailable:
            if self._executable is None and not self._warned:
                self._warned = True
                structlog.get_logger().warning(
                    "warning",
                    message="No Chromium found: JavaScript-only pages keep their HTTP content "
                    "(install chromium, or `playwright install chromium`).",
                )
            return self._browser
        async with self._lock:
            if self._browser is None and not self._unavailable:
                try:
                    self._browser = await self._nursery.start(self._serve)
                except Exception as exc:
                    error = _single(exc)
                    if required:
                        raise error from None
                    self._unavailable = True  # auto mode goes on with the HTTP result
                    structlog.get_logger().warning(
                        "warning",
                        message=f"Chromium at {self._executable} did not start ({error}): "
                        "JavaScript-only pages keep their HTTP content.",
                    )
        return self._browser

    async def _serve(self, *, task_status: trio.TaskStatus[BrowserCrawler]) -> None:
        assert self._executable is not None
        async with open_browser(
            self._executable,
            config=self._config,
            cache_dir=self._cache_dir,
            credentials=self._credentials,
        ) as browser:
            task_status.started(browser)
            await self._closing.wait()

    def close(self) -> None:
        self._closing.set()
