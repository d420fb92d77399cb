"""Crawl throughput and memory: our HTTP mode vs our browser mode vs crawl4ai's own arun_many.

All three crawl the same generated pages from the local docs site at concurrency 1, 4 and 8.
Each run is a separate process, so its peak RSS (the process plus every child, Chromium's
included, sampled every 20 ms) is its own. crawl4ai is imported before the clock starts;
browser runs include starting Chromium.

    uv run python benchmarks/bench_crawl.py [--quick]

Writes benchmarks/results/crawl.json and benchmarks/results/crawl.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("http", "browser", "arun_many")
CONCURRENCY = (1, 4, 8)


# ---------------------------------------------------------------- one measured run (child)


def child(method: str, concurrency: int, urls: list[str], cache_dir: Path) -> dict[str, Any]:
    from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai

    prepare_crawl4ai(cache_dir)
    import crawl4ai  # noqa: F401  -- import cost is not crawl speed

    if method == "arun_many":
        import asyncio

        return asyncio.run(_arun_many(urls, concurrency, cache_dir))
    import trio

    return trio.run(_stage, method, urls, concurrency, cache_dir)


async def _stage(method: str, urls: list[str], concurrency: int, cache_dir: Path) -> dict[str, Any]:
    from functools import partial

    import structlog
    import trio

    from crawl4ai_llm_docs.config import CrawlConfig
    from crawl4ai_llm_docs.crawl import run
    from crawl4ai_llm_docs.models import Page, UrlEntry

    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    config = CrawlConfig(mode=method, max_concurrent=concurrency)  # type: ignore[arg-type]
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    ok = chars = 0
    started = time.perf_counter()

    async def feed() -> None:
        async with send_urls:
            for index, url in enumerate(urls):
                await send_urls.send(UrlEntry(index=index, url=url, line=index + 1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        nursery.start_soon(
            partial(run, receive_urls, send_pages, config=config, cache_dir=cache_dir)
        )
        async with receive_pages:
            async for page in receive_pages:
                ok += page.ok
                chars += len(page.markdown)
    return {"seconds": time.perf_counter() - started, "ok": ok, "markdown_chars": chars}


async def _arun_many(urls: list[str], concurrency: int, cache_dir: Path) -> dict[str, Any]:
    """crawl4ai as its users run it: arun_many, its dispatcher, its default Markdown."""
    import asyncio
    import re

    from crawl4ai import AsyncWebCrawler, BrowserConfig, CacheMode, CrawlerRunConfig
    from crawl4ai.async_dispatcher import MemoryAdaptiveDispatcher
    from crawl4ai.async_logger import AsyncLogger

    from crawl4ai_llm_docs.crawl.browser import CHROMIUM_FLAGS, require_chromium

    started = time.perf_counter()
    profile = tempfile.mkdtemp(dir=cache_dir)
    # Playwright cannot download its own browser here: give crawl4ai the same Chromium over CDP.
    chromium = await asyncio.create_subprocess_exec(
        require_chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert chromium.stderr is not None
    cdp_url = ""
    while not cdp_url:
        line = await chromium.stderr.readline()
        if not line:
            raise RuntimeError("Chromium did not start")
        if found := re.search(rb"DevTools listening on (ws://\S+)", line):
            cdp_url = found.group(1).decode()
    drain = asyncio.create_task(chromium.stderr.read())
    browser = BrowserConfig(
        cdp_url=cdp_url,
        create_isolated_context=True,
        cdp_cleanup_on_close=True,
        cdp_close_delay=0,
        verbose=False,
    )
    ok = chars = 0
    try:
        async with AsyncWebCrawler(config=browser, logger=AsyncLogger(verbose=False)) as crawler:
            results = await crawler.arun_many(
                urls,
                config=CrawlerRunConfig(cache_mode=CacheMode.BYPASS, verbose=False),
                dispatcher=MemoryAdaptiveDispatcher(max_session_permit=concurrency),
            )
            for result in results:
                ok += bool(result.success)
                chars += len(str(result.markdown or ""))
    finally:
        chromium.terminate()
        await chromium.wait()
        drain.cancel()
    return {"seconds": time.perf_counter() - started, "ok": ok, "markdown_chars": chars}


# ---------------------------------------------------------------- the sweep (parent)


def measure(method: str, concurrency: int, urls_file: Path, cache_dir: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        method,
        str(concurrency),
        str(urls_file),
        str(cache_dir),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    peak_rss = peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        # RSS double-counts memory Chromium's processes share; PSS splits it fairly.
        nonlocal peak_rss, peak_pss
        root = psutil.Process(process.pid)
        while not done.wait(0.05):
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = pss = 0
            for member in tree:
                try:
                    info = member.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate(timeout=900)
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{method} at {concurrency} failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result.update(
        method=method,
        concurrency=concurrency,
        peak_rss_mb=round(peak_rss / 2**20, 1),
        peak_pss_mb=round(peak_pss / 2**20, 1),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 pages instead of 64")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, concurrency, urls_file, cache_dir = args.child
        urls = Path(urls_file).read_text().split()
        print(json.dumps(child(method, int(concurrency), urls, Path(cache_dir))), flush=True)
        return

    from crawl4ai_llm_docs.testing.site import SiteConfig, run_site_in_thread

    pages = 16 if args.quick else 64
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_site_in_thread(SiteConfig(pages=pages, sections=5, paragraphs=4)) as site,
    ):
        urls_file = Path(tmp) / "urls.txt"
        urls_file.write_text("\n".join(site.page_urls()) + "\n")
        for method in METHODS:
            for concurrency in CONCURRENCY:
                row = measure(method, concurrency, urls_file, Path(tmp))
                row["pages"] = pages
                row["pages_per_s"] = round(pages / row["seconds"], 1)
                row["seconds"] = round(row["seconds"], 2)
                row["markdown_chars_per_page"] = row.pop("markdown_chars") // pages
                print(json.dumps(row), flush=True)
                rows.append(row)
    write(rows, pages)


def write(rows: list[dict[str, Any]], pages: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.system()} {platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}"
    (RESULTS / "crawl.json").write_text(
        json.dumps({"machine": machine, "pages": pages, "runs": rows}, indent=2) + "\n"
    )
    names = {"http": "ours, http", "browser": "ours, browser", "arun_many": "crawl4ai arun_many"}
    lines = [
        f"Crawl of {pages} generated Sphinx-like pages from the local site ({machine}).",
        "Seconds include starting Chromium for the browser runs, not importing crawl4ai.",
        "Peak memory sums the process and all its children (Chromium included); RSS counts",
        "shared pages once per process, PSS splits them between the processes sharing them.",
        "",
        "| method | concurrency | pages ok | seconds | pages/s | peak RSS MB | peak PSS MB "
        "| Markdown chars/page |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {names[row['method']]} | {row['concurrency']} | {row['ok']}/{row['pages']} | {row['seconds']} "
            f"| {row['pages_per_s']} | {row['peak_rss_mb']} | {row['peak_pss_mb']} "
            f"| {row['markdown_chars_per_page']} |"
        )
    (RESULTS / "crawl.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
