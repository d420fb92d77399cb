"""Batch mode: peak RSS and wall time of the real CLI with ``--batch`` as the URL list grows.

Generated pages (100, 1,000 and 5,000; 100 and 1,000 with --quick) go through the fake
provider's Batch API (one batch, ``--batch-latency 1``, polled every 0.2-1 s). The JSONL input
file is streamed to disk and chunk text is spooled, so peak RSS should not grow with the
number of lines beyond a few hundred bytes of bookkeeping per line (target: within 1.3x
between the smallest and the largest list). The provider runs in its own process; only the
CLI is measured (``ru_maxrss`` from ``wait4``).

    uv run python benchmarks/bench_batch.py [--quick]

Writes benchmarks/results/batch.json and batch.md.
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
from common import (
    CliRun,
    Workspace,
    machine,
    machine_note,
    md_table,
    progress,
    provider_subprocess,
    run_record,
    site_subprocess,
    write_results,
)

SIZES = (100, 1_000, 5_000)
QUICK_SIZES = (100, 1_000)
POLL_ENV = {
    "CRAWL4AI_LLM_DOCS_LLM__BATCH_POLL_INITIAL_S": "0.2",
    "CRAWL4AI_LLM_DOCS_LLM__BATCH_POLL_MAX_S": "1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 pages")
    parser.add_argument("--sizes", type=int, nargs="+", help="page counts to run")
    args = parser.parse_args()
    sizes: tuple[int, ...] = tuple(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    before = machine()
    workspace = Workspace()
    runs: list[tuple[int, CliRun, dict[str, Any]]] = []
    try:
        with provider_subprocess(["--batch-latency", "1"]) as provider:
            for size in sizes:
                with site_subprocess(size, workspace.path) as site:
                    if not runs:
                        workspace.warm_up(site.urls_file)
                    run = workspace.run_cli(
                        site.urls_file,
                        base_url=provider.base_url,
                        extra_args=["--batch"],
                        env=POLL_ENV,
                        provider=provider,
                    )
                listing = httpx.get(f"{provider.root}/_batches", timeout=30).json()
                stats = listing["stats"]
                runs.append((size, run, stats))
                progress(
                    f"{size} pages: {run.peak_rss_mb:.0f} MB, {run.wall_s:.0f} s, "
                    f"{stats['lines_received']} lines so far, lost {run.documents_lost}"
                )
    finally:
        workspace.close()
    after = machine()
    rows = summarise(runs)
    data = {
        "benchmark": "batch",
        "machine_before": before,
        "machine_after": after,
        "rows": rows,
        "runs": [{"pages": n, **run_record(r), "batch_stats": s} for n, r, s in runs],
    }
    write_results("batch", data, render(rows, before, after))


def summarise(runs: list[tuple[int, CliRun, dict[str, Any]]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not runs:
        return rows
    smallest, base, _ = runs[0]
    lines_before = 0
    for pages, run, stats in runs:
        lines = stats["lines_received"] - lines_before
        lines_before = stats["lines_received"]
        extra = pages - smallest
        rows.append(
            {
                "pages": pages,
                "lines": lines,
                "peak_rss_mb": run.peak_rss_mb,
                "vs_smallest": run.peak_rss_mb / base.peak_rss_mb,
                "growth_kb_per_extra_page": (
                    (run.peak_rss_mb - base.peak_rss_mb) * 1024 / extra if extra else 0.0
                ),
                "wall_s": run.wall_s,
                "live_requests": run.provider.get("requests", 0),
                "documents_lost": run.documents_lost,
            }
        )
    return rows


def render(rows: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any]) -> str:
    table = md_table(
        [
            "pages",
            "batch lines",
            "peak RSS (MB)",
            "vs smallest",
            "growth per extra page (KB)",
            "wall (s)",
            "live requests",
            "lost",
        ],
        [
            [
                r["pages"],
                r["lines"],
                f"{r['peak_rss_mb']:.0f}",
                f"{r['vs_smallest']:.2f}x",
                f"{r['growth_kb_per_extra_page']:.1f}",
                f"{r['wall_s']:.0f}",
                r["live_requests"],
                r["documents_lost"],
            ]
            for r in rows
        ],
    )
    return (
        "# Batch mode: memory as the number of lines grows\n\n"
        f"{table}\n\n{machine_note(before, after)}\n"
    )


if __name__ == "__main__":
    main()
