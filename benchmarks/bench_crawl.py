"""Crawl throughput and memory: our HTTP mode vs our browser mode vs crawl4ai's own arun_many;
and the CPU the extraction (HTML -> Markdown) costs per real page.

All three crawl the same generated pages from the local docs site at concurrency 1, 4 and 8.
Each run is a separate process, so its peak RSS (the process plus every child, Chromium's
included, sampled every 20 ms) is its own. crawl4ai is imported before the clock starts;
browser runs include starting Chromium.

    uv run python benchmarks/bench_crawl.py [--quick] [--methods http ...] [--repeats R] [--tag T]
        [--site-dir DIR]   # real pages instead of generated ones

Writes benchmarks/results/crawl.json and benchmarks/results/crawl.md (crawl-T.* with --tag).
With --repeats, each point is run R times and the median is reported, with the spread.

    uv run python benchmarks/bench_crawl.py --extract [--docs DIR] [--compare-with TREE]

measures ``extract()`` alone on the real pages of DIR (default: the Python 3.11 library
reference, python3.11-doc), the CPU time of each page's call in one thread, every page once
per run after a warm-up page; with --compare-with, the same pages through another checkout's
extractor, the two alternating run by run. Writes benchmarks/results/extract.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
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
    from crawl4ai_llm_docs.crawl.stage import run
    from crawl4ai_llm_docs.models import Page, UrlEntry

    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    config = CrawlConfig(mode=method, max_concurrent=concurrency)  # type: ignore[arg-type]
    send_urls, receive_urls = trio.open_memory_channel[UrlEntry](0)
    send_pages, receive_pages = trio.open_memory_channel[Page](0)
    ok = chars = 0
    started, cpu_started = time.perf_counter(), _cpu_seconds()

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
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_started,
        "ok": ok,
        "markdown_chars": chars,
    }


def _cpu_seconds() -> float:
    """CPU time of this process, all its threads: robust to other load on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


def measure(
    method: str, concurrency: int, urls_file: Path, cache_dir: Path, package: str = ""
) -> dict[str, Any]:
    """One run in a child process; ``package``: a source tree to import the package from."""
    env = dict(os.environ)
    if package:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (package, env.get("PYTHONPATH"))))
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
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
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
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=1, help="runs per point; median reported")
    parser.add_argument("--tag", default="", help="write crawl-TAG.json/.md instead")
    parser.add_argument(
        "--compare-with",
        default="",
        metavar="DIR",
        help="also run each point with the package imported from DIR (another checkout), "
        "alternating run by run",
    )
    parser.add_argument(
        "--extract", action="store_true", help="the extraction's CPU per real page instead"
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=Path("/usr/share/doc/python3.11/html/library"),
        help="the real pages --extract converts (default: the Python library reference)",
    )
    parser.add_argument(
        "--site-dir",
        type=Path,
        default=None,
        help="crawl the real pages of DIR (e.g. /usr/share/doc/python3.11/html/library) "
        "instead of generated ones",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--extract-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.extract_child:
        from bench_extract import extract_child

        pages_file, cache_dir = args.extract_child
        print(json.dumps(extract_child(Path(pages_file), Path(cache_dir))), flush=True)
        return
    if args.extract:
        from bench_extract import run_extract

        run_extract(args.docs, args.compare_with, args.repeats, Path(__file__))
        return
    if args.child:
        method, concurrency, urls_file, cache_dir = args.child
        urls = Path(urls_file).read_text().split()
        print(json.dumps(child(method, int(concurrency), urls, Path(cache_dir))), flush=True)
        return

    from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

    pages = 16 if args.quick else 64
    # Real pages (--site-dir): served as they are, every page of the directory once.
    site_config = (
        SiteConfig(directory=str(args.site_dir))
        if args.site_dir
        else SiteConfig(pages=pages, sections=5, paragraphs=4)
    )
    # Each variant is a source tree to import the package from ("" = this one); alternating
    # them run by run spreads the machine's other load over both alike.
    variants = ["", *([str(Path(args.compare_with).resolve())] if args.compare_with else [])]
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_site_in_thread(site_config) as site,
    ):
        urls_file = Path(tmp) / "urls.txt"
        urls = site.page_urls()
        pages = len(urls)
        urls_file.write_text("\n".join(urls) + "\n")
        for method in args.methods:
            for concurrency in CONCURRENCY:
                runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
                for _ in range(args.repeats):
                    for variant in variants:
                        runs[variant].append(
                            measure(method, concurrency, urls_file, Path(tmp), variant)
                        )
                for variant in variants:
                    row = _summary(runs[variant], pages)
                    row["code"] = variant or "this tree"
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    source = str(args.site_dir) if args.site_dir else "generated Sphinx-like pages"
    write(rows, pages, tag=args.tag, repeats=args.repeats, source=source)


def _summary(runs: list[dict[str, Any]], pages: int) -> dict[str, Any]:
    """The median run (by wall time) of one point, with every run's pages/s and CPU time."""
    runs = sorted(runs, key=lambda run: run["seconds"])
    row = dict(runs[len(runs) // 2])
    row["runs_pages_per_s"] = [round(pages / run["seconds"], 1) for run in runs]
    row["pages"] = pages
    row["pages_per_s"] = round(pages / row["seconds"], 1)
    row["seconds"] = round(row["seconds"], 2)
    row["cpu_ms_per_page"] = round(
        statistics.median(run["cpu_seconds"] for run in runs) / pages * 1000, 2
    )
    row.pop("cpu_seconds", None)
    row["markdown_chars_per_page"] = row.pop("markdown_chars") // pages
    return row


def write(
    rows: list[dict[str, Any]],
    pages: int,
    *,
    tag: str = "",
    repeats: int = 1,
    source: str = "generated Sphinx-like pages",
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.system()} {platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}"
    name = f"crawl-{tag}" if tag else "crawl"
    load = ", ".join(f"{value:.1f}" for value in psutil.getloadavg())
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {"machine": machine, "pages": pages, "repeats": repeats, "load": load, "runs": rows},
            indent=2,
        )
        + "\n"
    )
    names = {"http": "ours, http", "browser": "ours, browser", "arun_many": "crawl4ai arun_many"}
    codes = sorted({row.get("code", "this tree") for row in rows})
    lines = [
        f"Crawl of {pages} {source} from the local site ({machine}).",
        "Seconds include starting Chromium for the browser runs, not importing crawl4ai.",
        "Peak memory sums the process and all its children (Chromium included); RSS counts",
        "shared pages once per process, PSS splits them between the processes sharing them.",
        *(
            [f"Median of {repeats} runs per point; pages/s of every run in the last column."]
            if repeats > 1
            else []
        ),
        f"Load average (1, 5, 15 min) at the end: {load}.",
        "",
        *(
            [f"Code measured: {', '.join(codes)} (alternating run by run)."]
            if len(codes) > 1
            else []
        ),
        "CPU ms/page is the crawling process's own CPU time (Chromium's not included).",
        "",
        "| method | code | concurrency | pages ok | seconds | pages/s | CPU ms/page | peak RSS MB "
        "| peak PSS MB | Markdown chars/page | pages/s of each run |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        each = ", ".join(str(value) for value in row.get("runs_pages_per_s", []))
        lines.append(
            f"| {names[row['method']]} | {row.get('code', 'this tree')} | {row['concurrency']} "
            f"| {row['ok']}/{row['pages']} | {row['seconds']} | {row['pages_per_s']} "
            f"| {row.get('cpu_ms_per_page', '')} | {row['peak_rss_mb']} | {row['peak_pss_mb']} "
            f"| {row['markdown_chars_per_page']} | {each} |"
        )
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
