"""Overlap: the pipeline cleans pages with the LLM while later pages are still being crawled.

Crawling is made slow on purpose (the local site waits 1.5 s before each page) and the
provider answers after 1.5 s, both at concurrency 4, so crawling alone and the LLM alone each
take about 28 / 4 x 1.5 = 10.5 s. A tool that crawled everything first would need their sum;
this one should need about the larger of the two plus one page's LLM time. Four runs, each a
CLI process:

- start-up: fast site, ``--no-llm`` (interpreter, imports, writing);
- crawl only: slow site, ``--no-llm``;
- LLM only: fast site, full run;
- both: slow site, full run.

The sites run in this process (``run_site_in_thread`` with per-page ``delays``); the CLI and
the provider are subprocesses.

    uv run python benchmarks/bench_overlap.py [--quick] [--delay S] [--latency S]

Writes benchmarks/results/overlap.json and overlap.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from pathlib import Path
from typing import Any

from common import (
    CliRun,
    Workspace,
    machine,
    machine_note,
    md_table,
    median,
    progress,
    provider_args,
    provider_subprocess,
    run_record,
    write_results,
)

from crawl4ai_llm_docs.testing.site.server import (
    SiteConfig,
    SiteHandle,
    page_path,
    run_site_in_thread,
)

PAGES = 28
CONCURRENCY = 4  # crawl and LLM alike: the CLI's defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s delays, one run each")
    parser.add_argument("--delay", type=float, help="site seconds per page [1.5, quick 0.5]")
    parser.add_argument("--latency", type=float, help="provider seconds per page [1.5, quick 0.5]")
    parser.add_argument("--repeats", type=int, help="runs per case, median reported [2, quick 1]")
    args = parser.parse_args()
    delay: float = args.delay if args.delay is not None else (0.5 if args.quick else 1.5)
    latency: float = args.latency if args.latency is not None else (0.5 if args.quick else 1.5)
    repeats: int = args.repeats or (1 if args.quick else 2)
    slow_site = SiteConfig(pages=PAGES, delays={page_path(i): delay for i in range(PAGES)})

    before = machine()
    workspace = Workspace()
    runs: dict[str, list[CliRun]] = {}
    # Unix time at the monotonic clock's zero: site hits are monotonic, provider stats Unix.
    unix_offset = time.time() - time.monotonic()
    crawl_windows: list[tuple[float, float]] = []  # Unix (first request, last page served)
    try:
        with contextlib.ExitStack() as stack:
            fast = stack.enter_context(run_site_in_thread(SiteConfig(pages=PAGES)))
            slow = stack.enter_context(run_site_in_thread(slow_site))
            provider = stack.enter_context(provider_subprocess(provider_args(latency=latency)))
            fast_urls = _urls_file(fast, workspace.path / "fast.txt")
            slow_urls = _urls_file(slow, workspace.path / "slow.txt")
            workspace.warm_up(fast_urls)
            cases = (
                ("start-up", fast_urls, True),
                ("crawl only", slow_urls, True),
                ("LLM only", fast_urls, False),
                ("both", slow_urls, False),
            )
            for attempt in range(repeats):
                for name, urls, no_llm in cases:
                    slow.hits.clear()
                    slow.hit_times.clear()
                    run = workspace.run_cli(
                        urls,
                        base_url=provider.base_url,
                        max_concurrent=CONCURRENCY,
                        no_llm=no_llm,
                        extra_args=["--crawl-concurrency", str(CONCURRENCY)],
                        provider=provider,
                    )
                    runs.setdefault(name, []).append(run)
                    if name == "both":
                        hits = [t for times in slow.hit_times.values() for t in times]
                        crawl_windows.append(
                            (min(hits) + unix_offset, max(hits) + delay + unix_offset)
                        )
                    progress(f"{name} run {attempt + 1}/{repeats}: {run.wall_s:.2f} s")
    finally:
        workspace.close()
    after = machine()
    result = summarise(runs, crawl_windows, delay, latency)
    data = {
        "benchmark": "overlap",
        "pages": PAGES,
        "site_delay_s": delay,
        "latency_s": latency,
        "concurrency": CONCURRENCY,
        "repeats": repeats,
        "machine_before": before,
        "machine_after": after,
        "result": result,
        "runs": {name: [run_record(r) for r in rs] for name, rs in runs.items()},
    }
    write_results("overlap", data, render(result, delay, latency, repeats, before, after))


def _urls_file(site: SiteHandle, path: Path) -> Path:
    path.write_text("\n".join(site.page_urls()) + "\n")
    return path


def summarise(
    runs: dict[str, list[CliRun]],
    crawl_windows: list[tuple[float, float]],
    delay: float,
    latency: float,
) -> dict[str, Any]:
    wall = {name: median([r.wall_s for r in rs]) for name, rs in runs.items()}
    startup = wall["start-up"]
    crawl = wall["crawl only"] - startup
    llm = wall["LLM only"] - startup
    both = wall["both"] - startup
    serial = crawl + llm
    overlapped = max(crawl, llm)
    # Inside the full run itself, free of start-up noise: when the site was crawled and when
    # the provider was busy, and for how long both happened at once.
    windows = []
    for (crawl_start, crawl_end), run in zip(crawl_windows, runs["both"], strict=True):
        llm_start = float(run.provider["first_request_at"])
        llm_end = float(run.provider["last_request_at"]) + latency
        windows.append(
            {
                "crawl_window_s": crawl_end - crawl_start,
                "llm_window_s": llm_end - llm_start,
                "both_at_once_s": max(0.0, min(crawl_end, llm_end) - max(crawl_start, llm_start)),
                "first_llm_after_first_page_s": llm_start - crawl_start,
                "work_window_s": max(crawl_end, llm_end) - crawl_start,
            }
        )
    rounds = math.ceil(PAGES / CONCURRENCY)
    return {
        "wall_s": wall,
        "startup_s": startup,
        "crawl_s": crawl,
        "llm_s": llm,
        "both_s": both,
        "crawl_estimate_s": rounds * delay,
        "llm_estimate_s": rounds * latency,
        "serial_s": serial,
        "perfect_overlap_s": overlapped,
        # A pipeline cannot beat this: the last page still needs its LLM answer after it is
        # crawled, and the first answer cannot start before the first page is crawled.
        "pipeline_bound_s": max(crawl + latency, delay + llm),
        "hidden_share": (serial - both) / min(crawl, llm) if min(crawl, llm) > 0 else math.nan,
        "in_run": {key: median([w[key] for w in windows]) for key in windows[0]} if windows else {},
    }


def render(
    result: dict[str, Any],
    delay: float,
    latency: float,
    repeats: int,
    before: dict[str, Any],
    after: dict[str, Any],
) -> str:
    wall = result["wall_s"]
    startup = result["startup_s"]
    inside = result["in_run"]
    table = md_table(
        ["case", "wall s (process)", "minus start-up s", "estimate s"],
        [
            ["start-up (fast site, --no-llm)", wall["start-up"], 0.0, "--"],
            [
                "crawl only (slow site, --no-llm)",
                wall["crawl only"],
                result["crawl_s"],
                result["crawl_estimate_s"],
            ],
            ["LLM only (fast site)", wall["LLM only"], result["llm_s"], result["llm_estimate_s"]],
            [
                "crawl then LLM (sum, not run)",
                startup + result["serial_s"],
                result["serial_s"],
                "--",
            ],
            [
                "perfect overlap (max, not run)",
                startup + result["perfect_overlap_s"],
                result["perfect_overlap_s"],
                "--",
            ],
            [
                "pipeline bound (max(crawl + 1 latency, 1 delay + LLM), not run)",
                startup + result["pipeline_bound_s"],
                result["pipeline_bound_s"],
                "--",
            ],
            ["**both (slow site, full run)**", wall["both"], result["both_s"], "--"],
        ],
    )
    return "\n".join(
        [
            f"# Overlap: crawling and LLM work at the same time ({PAGES} pages, site "
            f"{delay:g} s/page, provider {latency:g} s/page, concurrency {CONCURRENCY} each)",
            "",
            f"Machine: {machine_note(before, after)}",
            f"Median of {repeats} run(s) per case. 'minus start-up' subtracts the start-up run "
            "(interpreter, imports, writing); estimates are ceil(N/4) x seconds per page.",
            "",
            table,
            "",
            f"- The full run took {result['both_s']:.1f} s of work against {result['serial_s']:.1f} s "
            f"for crawl then LLM, {result['perfect_overlap_s']:.1f} s for perfect overlap and "
            f"{result['pipeline_bound_s']:.1f} s for the best a pipeline can do: "
            f"{result['hidden_share']:.0%} of the shorter stage was hidden behind the longer one.",
            f"- Inside the full run (site and provider clocks, no start-up): the site was crawled "
            f"for {inside['crawl_window_s']:.1f} s and the provider was busy for "
            f"{inside['llm_window_s']:.1f} s, both at once for {inside['both_at_once_s']:.1f} s; "
            f"the first LLM request came {inside['first_llm_after_first_page_s']:.1f} s after "
            f"the first page request, and all work took {inside['work_window_s']:.1f} s "
            f"(crawl + LLM would be {inside['crawl_window_s'] + inside['llm_window_s']:.1f} s).",
        ]
    )


if __name__ == "__main__":
    main()
