"""Memory: peak RSS of the real CLI as the URL list grows, and at high vs low concurrency.

1. Scaling: 100, 2,000 and 10,000 generated pages (1,000 at most with --quick) at
   --max-concurrent 20 against a provider answering after 0.05 s, so a run takes minutes,
   not hours. Stages are joined by small bounded channels and finished documents are spooled
   to disk, so peak RSS should not grow with the number of pages (target: within 1.3x
   between the smallest and the largest list).
2. Concurrency: 28 pages with a 0.5 s provider at --max-concurrent 1 and 20 (target: c=20
   within 2x of c=1). When the default pool (parallel.max_connections_per_host) is smaller
   than 20, which would hold requests in flight to its size, c=20 also runs with a pool of 20.

Peak RSS is the CLI process's own ``ru_maxrss`` (exact, from ``wait4``; the HTTP crawler
starts no child processes).

    uv run python benchmarks/bench_memory.py [--quick]

Writes benchmarks/results/memory.json and memory.md.
"""

from __future__ import annotations

import argparse
from typing import Any

from common import (
    CliRun,
    Workspace,
    machine,
    machine_note,
    md_table,
    progress,
    provider_args,
    provider_subprocess,
    run_record,
    site_subprocess,
    write_results,
)

from crawl4ai_llm_docs.config import ParallelConfig

SIZES = (100, 2_000, 10_000)
QUICK_SIZES = (100, 1_000)
SCALING_CONCURRENCY = 20
SCALING_LATENCY = 0.05
CONCURRENCY_PAGES = 28
CONCURRENCY_LATENCY = 0.5
POOL_ENV = "CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONNECTIONS_PER_HOST"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 pages")
    parser.add_argument("--sizes", type=int, nargs="+", help="page counts to run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per concurrency row [2]")
    args = parser.parse_args()
    sizes: tuple[int, ...] = tuple(args.sizes or (QUICK_SIZES if args.quick else SIZES))

    before = machine()
    workspace = Workspace()
    scaling: list[tuple[int, CliRun]] = []
    concurrency: list[tuple[str, CliRun]] = []
    try:
        with provider_subprocess(provider_args(latency=CONCURRENCY_LATENCY)) as provider:
            with site_subprocess(CONCURRENCY_PAGES, workspace.path) as site:
                workspace.warm_up(site.urls_file)
                # The floor: interpreter, imports and crawling, no LLM stage at all.
                progress("crawl only (--no-llm)")
                concurrency.append(
                    ("crawl only (--no-llm)", workspace.run_cli(site.urls_file, no_llm=True))
                )
                variants: list[tuple[str, int, dict[str, str]]] = [("1", 1, {}), ("20", 20, {})]
                if ParallelConfig().max_connections_per_host < 20:  # the pool would cap c=20
                    variants.append(("20, pool of 20 connections", 20, {POOL_ENV: "20"}))
                for _ in range(args.repeats):
                    for label, level, env in variants:
                        run = workspace.run_cli(
                            site.urls_file,
                            base_url=provider.base_url,
                            max_concurrent=level,
                            env=env,
                            provider=provider,
                        )
                        concurrency.append((label, run))
                        progress(
                            f"c={label}: {run.peak_rss_mb:.0f} MB, {run.wall_s:.1f} s, "
                            f"in flight {run.provider['max_in_flight']}"
                        )
            # The provider's latency is a live setting: no restart between the two parts.
            provider.update_config(latency=SCALING_LATENCY)
            for size in sizes:
                with site_subprocess(size, workspace.path) as site:
                    run = workspace.run_cli(
                        site.urls_file,
                        base_url=provider.base_url,
                        max_concurrent=SCALING_CONCURRENCY,
                        provider=provider,
                    )
                scaling.append((size, run))
                progress(
                    f"{size} pages: {run.peak_rss_mb:.0f} MB, {run.wall_s:.0f} s, "
                    f"lost {run.documents_lost}, load {run.load_before:.1f}"
                )
    finally:
        workspace.close()
    after = machine()
    scaling_rows = summarise_scaling(scaling)
    concurrency_rows = summarise_concurrency(concurrency)
    data = {
        "benchmark": "memory",
        "machine_before": before,
        "machine_after": after,
        "scaling": scaling_rows,
        "concurrency": concurrency_rows,
        "runs": {
            "scaling": [{"pages": n, **run_record(r)} for n, r in scaling],
            "concurrency": [{"variant": v, **run_record(r)} for v, r in concurrency],
        },
    }
    write_results("memory", data, render(scaling_rows, concurrency_rows, before, after))


def summarise_scaling(runs: list[tuple[int, CliRun]]) -> list[dict[str, Any]]:
    if not runs:
        return []
    smallest, base = runs[0]
    rows = []
    for pages, run in runs:
        extra_pages = pages - smallest
        growth_kb = (
            (run.peak_rss_mb - base.peak_rss_mb) * 1024 / extra_pages if extra_pages else 0.0
        )
        rows.append(
            {
                "pages": pages,
                "peak_rss_mb": run.peak_rss_mb,
                "vs_smallest": run.peak_rss_mb / base.peak_rss_mb,
                "rss_per_page_kb": run.peak_rss_mb * 1024 / pages,
                "growth_kb_per_extra_page": growth_kb,
                "wall_s": run.wall_s,
                "pages_per_s": pages / run.wall_s,
                "requests": int(run.provider["requests"]),
                "max_in_flight": int(run.provider["max_in_flight"]),
                "documents_lost": run.documents_lost,
                "load": run.load_before,
            }
        )
    return rows


def summarise_concurrency(runs: list[tuple[str, CliRun]]) -> list[dict[str, Any]]:
    peaks: dict[str, list[CliRun]] = {}
    for label, run in runs:
        peaks.setdefault(label, []).append(run)
    base = max(r.peak_rss_mb for r in peaks.get("1", [])) if "1" in peaks else float("nan")
    return [
        {
            "max_concurrent": label,
            "peak_rss_mb": max(r.peak_rss_mb for r in rs),
            "vs_c1": max(r.peak_rss_mb for r in rs) / base,
            "max_in_flight": max(int(r.provider.get("max_in_flight", 0)) for r in rs),
            "wall_s": min(r.wall_s for r in rs),
        }
        for label, rs in peaks.items()
    ]


def render(
    scaling: list[dict[str, Any]],
    concurrency: list[dict[str, Any]],
    before: dict[str, Any],
    after: dict[str, Any],
) -> str:
    scaling_table = md_table(
        [
            "pages",
            "peak RSS MB",
            "vs smallest",
            "RSS/page KB",
            "growth KB per extra page",
            "wall s",
            "pages/s",
            "requests",
            "max in flight",
            "lost",
        ],
        [
            [
                r["pages"],
                r["peak_rss_mb"],
                f"{r['vs_smallest']:.2f}x",
                r["rss_per_page_kb"],
                r["growth_kb_per_extra_page"],
                r["wall_s"],
                r["pages_per_s"],
                r["requests"],
                r["max_in_flight"],
                r["documents_lost"],
            ]
            for r in scaling
        ],
    )
    concurrency_table = md_table(
        [
            "--max-concurrent",
            "peak RSS MB (max of runs)",
            "vs c=1",
            "max in flight",
            "wall s (best)",
        ],
        [
            [
                r["max_concurrent"],
                r["peak_rss_mb"],
                f"{r['vs_c1']:.2f}x",
                r["max_in_flight"],
                r["wall_s"],
            ]
            for r in concurrency
        ],
    )
    checks = []
    if len(scaling) > 1:
        ratio = scaling[-1]["vs_smallest"]
        checks.append(
            f"- {scaling[-1]['pages']:,} vs {scaling[0]['pages']:,} pages: {ratio:.2f}x "
            f"(target <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})."
        )
    worst = max(
        (r["vs_c1"] for r in concurrency if r["max_concurrent"].startswith("20")),
        default=float("nan"),
    )
    checks.append(
        f"- c=20 vs c=1 on {CONCURRENCY_PAGES} pages: up to {worst:.2f}x "
        f"(target <= 2x: {'met' if worst <= 2 else 'NOT met'})."
    )
    return "\n".join(
        [
            "# Memory: peak RSS of the CLI process",
            "",
            f"Machine: {machine_note(before, after)}",
            "",
            f"## Scaling in the number of pages (--max-concurrent {SCALING_CONCURRENCY}, "
            f"provider latency {SCALING_LATENCY:g} s, one run each)",
            "",
            scaling_table,
            "",
            f"## Concurrency ({CONCURRENCY_PAGES} pages, provider latency "
            f"{CONCURRENCY_LATENCY:g} s)",
            "",
            concurrency_table,
            "",
            "Targets:",
            *checks,
        ]
    )


if __name__ == "__main__":
    main()
