"""Concurrency sweep: the real CLI on 28 local pages at --max-concurrent 1 ... 20.

The fake provider answers every document after a fixed latency (3 s by default) and has no
rate limit, so the only limit is how many requests are in flight. For each level the table
gives the wall time (process start to exit, as a user waits), the speed-up over c=1, and the
efficiency against the ideal ``ceil(N/c) * latency + crawl time``, where the crawl time is a
``--no-llm`` run of the same pages (it includes interpreter start and imports too). The LLM
phase (first request to last answer, seen by the provider) is shown apart: it is what
concurrency can shrink; start-up and crawling are not.

    uv run python benchmarks/bench_concurrency.py [--quick] [--latency S] [--repeats R]

Writes benchmarks/results/concurrency.json and concurrency.md (and concurrency.png when
matplotlib is installed); ``--tag T`` writes concurrency-T.* instead, so a side run (another
commit, a loaded machine) leaves the published results alone.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from common import (
    RESULTS,
    CliRun,
    Workspace,
    machine,
    machine_note,
    md_table,
    median,
    progress,
    provider_args,
    provider_subprocess,
    pyplot,
    run_record,
    site_subprocess,
    write_results,
)

from crawl4ai_llm_docs.config import ParallelConfig

PAGES = 28  # the spec's document set
LEVELS = (1, 2, 4, 8, 12, 16, 20)
QUICK_LEVELS = (1, 4, 8, 20)
# parallel.max_connections_per_host: the HTTP pool caps requests in flight at its size.
DEFAULT_POOL = ParallelConfig().max_connections_per_host
POOL_ENV = "CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONNECTIONS_PER_HOST"
Case = tuple[int, int | None]  # (--max-concurrent, pool size or None for the default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s latency, 4 levels, 1 run")
    parser.add_argument(
        "--latency", type=float, help="provider seconds per document [3, quick 0.5]"
    )
    parser.add_argument("--repeats", type=int, help="runs per level, median reported [3, quick 1]")
    parser.add_argument("--levels", type=int, nargs="+", help="--max-concurrent values to run")
    parser.add_argument(
        "--render", action="store_true", help="rewrite concurrency.md from concurrency.json only"
    )
    parser.add_argument("--tag", default="", help="write concurrency-TAG.json/.md/.png")
    args = parser.parse_args()
    name = f"concurrency-{args.tag}" if args.tag else "concurrency"
    if args.render:
        if not (RESULTS / f"{name}.json").is_file():
            parser.error(f"--render: no {RESULTS / name}.json to render (run without --render)")
        saved = json.loads((RESULTS / f"{name}.json").read_text())
        markdown = render(
            saved["rows"],
            saved["crawl_only_s"],
            saved["latency_s"],
            saved["repeats"],
            saved["machine_before"],
            saved["machine_after"],
        )
        write_results(name, saved, markdown)
        plot(saved["rows"], saved["latency_s"], name)
        return
    latency: float = args.latency if args.latency is not None else (0.5 if args.quick else 3.0)
    repeats: int = args.repeats or (1 if args.quick else 3)
    levels: tuple[int, ...] = tuple(args.levels or (QUICK_LEVELS if args.quick else LEVELS))

    before = machine()
    workspace = Workspace()
    try:
        with (
            site_subprocess(PAGES, workspace.path) as site,
            provider_subprocess(provider_args(latency=latency)) as provider,
        ):
            workspace.warm_up(site.urls_file)
            crawl_runs = [workspace.run_cli(site.urls_file, no_llm=True) for _ in range(repeats)]
            crawl_s = median([r.wall_s for r in crawl_runs])
            progress(f"crawl only: {crawl_s:.2f} s")
            runs: dict[Case, list[CliRun]] = {}
            for case in cases(levels):
                level, pool = case
                runs[case] = []
                for attempt in range(repeats):
                    run = workspace.run_cli(
                        site.urls_file,
                        base_url=provider.base_url,
                        max_concurrent=level,
                        provider=provider,
                        env={POOL_ENV: str(pool)} if pool else None,
                    )
                    runs[case].append(run)
                    progress(
                        f"{label(case)} run {attempt + 1}/{repeats}: {run.wall_s:.2f} s, "
                        f"429s {run.provider['rate_limited']}, in flight "
                        f"{run.provider['max_in_flight']}, load {run.load_before:.1f}"
                    )
    finally:
        workspace.close()
    after = machine()
    rows = summarise(runs, crawl_s, latency)
    data = {
        "benchmark": "concurrency",
        "pages": PAGES,
        "latency_s": latency,
        "repeats": repeats,
        "crawl_only_s": crawl_s,
        "crawl_runs": [run_record(r) for r in crawl_runs],
        "machine_before": before,
        "machine_after": after,
        "rows": rows,
        "runs": {label(case): [run_record(r) for r in rs] for case, rs in runs.items()},
    }
    write_results(name, data, render(rows, crawl_s, latency, repeats, before, after))
    plot(rows, latency, name)


def cases(levels: tuple[int, ...]) -> list[Case]:
    """Every level with the default pool; the top level again with a pool as large as it."""
    top = max(levels)
    return [(level, None) for level in levels] + ([(top, top)] if top > DEFAULT_POOL else [])


def label(case: Case) -> str:
    level, pool = case
    return f"c={level}" if pool is None else f"c={level}, pool {pool}"


def summarise(
    runs: dict[Case, list[CliRun]], crawl_s: float, latency: float
) -> list[dict[str, Any]]:
    first = next(iter(runs.values()), [])
    base_wall = median([r.wall_s for r in first])
    base_span = median([r.llm_span_s(latency) for r in first])
    rows = []
    for (level, pool), level_runs in runs.items():
        wall = median([r.wall_s for r in level_runs])
        span = median([r.llm_span_s(latency) for r in level_runs])
        rounds = math.ceil(PAGES / level)
        ideal = rounds * latency + crawl_s
        rows.append(
            {
                "label": label((level, pool)),
                "max_concurrent": level,
                "pool": pool,
                "wall_s": wall,
                "wall_min_s": min(r.wall_s for r in level_runs),
                "wall_max_s": max(r.wall_s for r in level_runs),
                "ideal_s": ideal,
                "efficiency": ideal / wall,
                "speedup": base_wall / wall,
                "ideal_speedup": (PAGES * latency + crawl_s) / ideal,
                "llm_span_s": span,
                "llm_ideal_s": rounds * latency,
                "llm_speedup": base_span / span,
                "rate_limited": sum(r.provider["rate_limited"] for r in level_runs),
                "max_in_flight": max(r.provider["max_in_flight"] for r in level_runs),
                "documents_lost": sum(r.documents_lost for r in level_runs),
                "peak_rss_mb": max(r.peak_rss_mb for r in level_runs),
                "load": median([r.load_before for r in level_runs]),
            }
        )
    return rows


def render(
    rows: list[dict[str, Any]],
    crawl_s: float,
    latency: float,
    repeats: int,
    before: dict[str, Any],
    after: dict[str, Any],
) -> str:
    table = md_table(
        [
            "--max-concurrent",
            "wall s",
            "(min-max)",
            "ideal s",
            "efficiency",
            "speed-up",
            "ideal speed-up",
            "LLM phase s",
            "LLM ideal s",
            "LLM speed-up",
            "LLM efficiency",
            "429s",
            "max in flight",
            "lost",
            "peak RSS MB",
        ],
        [
            [
                r["label"],
                r["wall_s"],
                f"{r['wall_min_s']:.2f}-{r['wall_max_s']:.2f}",
                r["ideal_s"],
                f"{r['efficiency']:.0%}",
                f"{r['speedup']:.2f}x",
                f"{r['ideal_speedup']:.2f}x",
                r["llm_span_s"],
                r["llm_ideal_s"],
                f"{r['llm_speedup']:.2f}x",
                f"{r['llm_ideal_s'] / r['llm_span_s']:.0%}",
                r["rate_limited"],
                r["max_in_flight"],
                r["documents_lost"],
                r["peak_rss_mb"],
            ]
            for r in rows
        ],
    )
    by_label = {r["label"]: r for r in rows}
    checks = []
    for case, target in (((8, None), 6.0), ((20, None), 10.0), ((20, 20), 10.0)):
        if (r := by_label.get(label(case))) is not None:
            checks.append(
                f"- {r['label']} >= {target:g}x over c=1: end to end {r['speedup']:.2f}x "
                f"({'met' if r['speedup'] >= target else 'NOT met'}; the ideal above allows "
                f"{r['ideal_speedup']:.2f}x with this start-up and crawl time), "
                f"LLM phase {r['llm_speedup']:.2f}x "
                f"({'met' if r['llm_speedup'] >= target else 'NOT met'})."
            )
    worst = min(rows, key=lambda r: r["efficiency"]) if rows else None
    if worst is not None:
        checks.append(
            f"- efficiency >= 90% at every level: lowest {worst['efficiency']:.0%} at "
            f"{worst['label']} ({'met' if worst['efficiency'] >= 0.9 else 'NOT met'}). Above "
            "100% means the run beat 'crawl, then LLM': crawling overlaps the LLM work."
        )
        strict = min(rows, key=lambda r: r["llm_ideal_s"] / r["llm_span_s"])
        share = strict["llm_ideal_s"] / strict["llm_span_s"]
        checks.append(
            f"- LLM phase alone (ideal ceil(N/c) x latency, no start-up or crawl): lowest "
            f"{share:.0%} at {strict['label']} ({'met' if share >= 0.9 else 'NOT met'})."
        )
    return "\n".join(
        [
            f"# Concurrency sweep: {PAGES} pages, provider latency {latency:g} s, no rate limit",
            "",
            f"Machine: {machine_note(before, after)}",
            f"Median of {repeats} run(s) per level. Wall time = CLI process start to exit "
            f"(interpreter start, imports, crawl, LLM, writing). Crawl only (`--no-llm`, same "
            f"start-up): {crawl_s:.2f} s. Ideal = ceil({PAGES}/c) x {latency:g} s + crawl only; "
            "efficiency = ideal / wall. LLM phase = first request received to last answer sent, "
            "from the provider's stats; its ideal is ceil(N/c) x latency. 'pool N' sets "
            f"parallel.max_connections_per_host (default {DEFAULT_POOL}) to N: the HTTP pool "
            "holds requests in flight to its size whatever --max-concurrent says.",
            "",
            table,
            "",
            "Targets:",
            *checks,
        ]
    )


def plot(rows: list[dict[str, Any]], latency: float, name: str) -> None:
    plt = pyplot()
    rows = [r for r in rows if r["pool"] is None]
    if plt is None or not rows:
        return
    levels = [r["max_concurrent"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(levels, [r["wall_s"] for r in rows], "o-", label="measured")
    left.plot(levels, [r["ideal_s"] for r in rows], "--", label="ideal")
    left.set(
        xlabel="--max-concurrent", ylabel="wall time (s)", title=f"{PAGES} pages, {latency:g} s"
    )
    left.legend()
    right.plot(levels, [r["speedup"] for r in rows], "o-", label="end to end")
    right.plot(levels, [r["llm_speedup"] for r in rows], "s-", label="LLM phase")
    right.plot(levels, [r["ideal_speedup"] for r in rows], "--", label="ideal end to end")
    right.set(xlabel="--max-concurrent", ylabel="speed-up over c=1", title="speed-up")
    for axes in (left, right):
        axes.set_xticks(levels)
    right.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / f"{name}.png", dpi=100)


if __name__ == "__main__":
    main()
