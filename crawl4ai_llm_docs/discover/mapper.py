"""``map``: discover a site's pages and write them as a URL file for a person to review.

The pages are fetched with the run's HTTP crawler (``crawl.http``) only to read their links;
nothing is converted or sent to an LLM. Each listed URL is preceded by a comment saying where
it came from (and its sitemap ``lastmod``); every page in scope that is left out (a skip
rule, robots.txt, noindex, a duplicate, a limit ...) is a comment line with the reason, so the
file can be edited and passed back as the URL file of a run.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO

import httpx
import trio
from msgspec import Struct

from crawl4ai_llm_docs.config_schema import AppConfig
from crawl4ai_llm_docs.crawl.links import page_links
from crawl4ai_llm_docs.discover.engine import Discovery, Outcome
from crawl4ai_llm_docs.discover.ledger import describe
from crawl4ai_llm_docs.fetch.http import Fetched, FetchFailure, fetch, open_client
from crawl4ai_llm_docs.fetch.redirects import Route
from crawl4ai_llm_docs.fetch.retry import RetryPolicy
from crawl4ai_llm_docs.models import PageReport, UrlEntry

FLUSH_LINES = 512


class MapResult(Struct, frozen=True, kw_only=True):
    listed: int
    crawled: int
    excluded: int
    blocked: int
    cut_short: int
    output: str  # the file written, or "-" for stdout
    summary: str = ""  # what was left out, by kind (``ledger.describe``)


class _Writer:
    """Lines of the URL file, buffered and written to a temporary file off the trio thread."""

    def __init__(self, handle: IO[str], header: list[str]) -> None:
        self._handle = handle
        self._lines: list[str] = []
        self._header = header  # written before the first line of discovery's findings

    async def write(self, *lines: str) -> None:
        if self._header:
            header, self._header = self._header, []
            self._lines.extend(header)
        self._lines.extend(lines)
        if len(self._lines) >= FLUSH_LINES:
            await self.flush()

    async def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            await trio.to_thread.run_sync(self._handle.write, "\n".join(lines) + "\n")

    async def outcome(self, outcome: Outcome) -> None:
        queued = outcome.queued
        if outcome.listed:
            note = f"# {queued.via}"
            if queued.lastmod:
                note += f" (lastmod {queued.lastmod})"
            if outcome.reason:
                note += f"; crawling it failed: {outcome.reason}"
            await self.write(note, queued.url)
        else:
            await self.left_out(queued.url, outcome.reason)

    async def left_out(self, url: str, reason: str) -> None:
        await self.write(f"# not listed: {url} ({reason})")


async def _fetch_with_retries(
    client: httpx.AsyncClient, url: str, config: AppConfig, rng: random.Random, route: Route
) -> Fetched | FetchFailure:
    crawl = config.crawl
    policy = RetryPolicy()
    failures = 0
    while True:
        try:
            with trio.fail_after(crawl.page_timeout):
                return await fetch(client, url, max_bytes=crawl.max_page_bytes, route=route)
        except trio.TooSlowError:
            failure = FetchFailure(f"timed out after {crawl.page_timeout:g} s", transient=True)
        except FetchFailure as exc:
            failure = exc
        failures += 1
        if not failure.transient or failures > crawl.retries:
            return failure
        await trio.sleep(policy.delay(failures, failure.retry_after, rng))


async def crawl_for_links(
    discovery: Discovery,
    client: httpx.AsyncClient,
    receive: trio.MemoryReceiveChannel[UrlEntry],
    config: AppConfig,
) -> None:
    """One worker: fetch each URL, read its links in a thread, report it."""
    rng = random.Random()
    async with receive:
        async for entry in receive:
            route = discovery.route(entry.index)
            result = await _fetch_with_retries(client, entry.url, config, rng, route)
            if isinstance(result, FetchFailure):
                report = PageReport(
                    index=entry.index,
                    url=entry.url,
                    final_url=result.final_url or entry.url,
                    status=result.status,
                    error=result.reason,
                )
            else:
                links = await trio.to_thread.run_sync(
                    partial(page_links, result.html, result.final_url), abandon_on_cancel=True
                )
                report = PageReport(
                    index=entry.index,
                    url=entry.url,
                    final_url=result.final_url,
                    status=result.status,
                    error=None,
                    links=links,
                )
            await discovery.submit(report)


def _header(roots: list[str], config: AppConfig) -> list[str]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    d = config.discover
    return [
        f"# crawl4ai-llm-docs map of {' '.join(roots)} ({now})",
        f"# sources: {', '.join(d.sources)}; max pages {d.max_pages}"
        + (f"; max depth {d.max_depth}" if d.max_depth else ""),
        "# Review and edit, then run: crawl4ai-llm-docs THIS_FILE",
        "",
    ]


async def map_site(
    roots: list[str],
    config: AppConfig,
    output: Path | None,
    *,
    on_start: Callable[[Discovery], None] | None = None,
) -> MapResult:
    """Discover from ``roots`` and write the URL file to ``output`` (stdout when None).

    The file appears only when discovery succeeded: a bad root (``InputError``) leaves
    nothing behind.
    """
    target_dir = output.parent if output is not None else None
    fd, temp_name = tempfile.mkstemp(prefix=".map-", suffix=".tmp", dir=target_dir)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            writer = _Writer(handle, _header(roots, config))
            discovery = await _discover(roots, config, writer, on_start)
            await writer.flush()
            counts = discovery.snapshot()
            await writer.write(
                "",
                f"# {counts.listed} pages listed, {counts.crawled} crawled; {describe(counts)}"
                + (
                    f"; stopped at max pages ({discovery.cut_short} more queued)"
                    if discovery.cut_short
                    else ""
                ),
            )
            await writer.flush()
        if output is None:
            await trio.to_thread.run_sync(_copy_to_stdout, temp)
        else:
            await trio.to_thread.run_sync(os.replace, temp, output)
    finally:
        with trio.move_on_after(5, shield=True):
            await trio.to_thread.run_sync(partial(temp.unlink, missing_ok=True))
    return MapResult(
        listed=counts.listed,
        crawled=counts.crawled,
        excluded=counts.excluded,
        blocked=counts.blocked,
        cut_short=discovery.cut_short,
        output=str(output) if output is not None else "-",
        summary=describe(counts),
    )


def _copy_to_stdout(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        shutil.copyfileobj(handle, sys.stdout)
    sys.stdout.flush()


async def _discover(
    roots: list[str],
    config: AppConfig,
    writer: _Writer,
    on_start: Callable[[Discovery], None] | None,
) -> Discovery:
    async with open_client(config.crawl) as client:
        discovery = Discovery(
            roots,
            config.discover,
            config.crawl,
            client=client,
            spill_dir=config.cache_directory() / "discover",
            on_outcome=writer.outcome,
            on_left_out=writer.left_out,
        )
        if on_start is not None:
            on_start(discovery)
        send, receive = trio.open_memory_channel[UrlEntry](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(discovery.run, send)
            async with receive:
                for _ in range(config.crawl.max_concurrent):
                    nursery.start_soon(crawl_for_links, discovery, client, receive.clone(), config)
    return discovery
