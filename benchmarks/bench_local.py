"""Local-style servers: the real CLI against fake providers with 1, 2 and 4 slots.

A slot serves one request at a time; requests beyond the slots wait server-side in arrival
order, as on llama.cpp, Ollama, LM Studio or one vLLM replica. Every answer takes a few
seconds (3 s by default) and ``request_timeout`` is 10 s, the case of issue 15. For each
server the table compares:

- ``adaptive`` (the defaults: streaming, the queue-aware limit inside the AIMD cap) at the
  default ``--max-concurrent 4``, and at 8;
- ``static K``: ``--max-concurrent K`` with the queue-aware limit off
  (``parallel.queue_aware_concurrency = false``), K = 1, 2, 4, 8; the best of them is the
  setting a user would have had to find by hand;
- ``before``: what the tool did before streaming (plain requests, queue-aware limit off) at
  ``--max-concurrent 4``: requests time out in the server's queue and are sent again.

Columns: the CLI's own wall time, its ratio to the best static run and to the serial run
(static 1), pages cleaned by the LLM, requests sent, requests the client abandoned and the
server time spent on them (from the provider's stats), and the most requests served at once.

    uv run python benchmarks/bench_local.py [--quick] [--latency S] [--slots 1 2 4]

Writes benchmarks/results/local.json and local.md.
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
    provider_subprocess,
    run_record,
    site_subprocess,
    write_results,
)

SLOTS = (1, 2, 4)
PAGES_PER_SLOT = 8  # pages = 8 x slots: the same number of rounds for every server
REQUEST_TIMEOUT_S = 10.0
QUEUE_ENV = "CRAWL4AI_LLM_DOCS_PARALLEL__QUEUE_AWARE_CONCURRENCY"
STREAM_ENV = "CRAWL4AI_LLM_DOCS_LLM__STREAM"
TIMEOUT_ENV = "CRAWL4AI_LLM_DOCS_PARALLEL__REQUEST_TIMEOUT"
STATIC = (1, 2, 4, 8)
Case = tuple[str, int]  # (kind, --max-concurrent)


def cases(quick: bool) -> list[Case]:
    static = (1, 2, 4) if quick else STATIC
    adaptive = [("adaptive", 4)] if quick else [("adaptive", 4), ("adaptive", 8)]
    return [*adaptive, *(("static", k) for k in static), ("before", 4)]


def case_env(kind: str) -> dict[str, str]:
    env = {TIMEOUT_ENV: f"{REQUEST_TIMEOUT_S:g}"}
    if kind in ("static", "before"):
        env[QUEUE_ENV] = "false"
    if kind == "before":
        env[STREAM_ENV] = "false"
    return env


def label(case: Case) -> str:
    kind, level = case
    return f"{kind} {level}" if kind != "adaptive" else f"adaptive (max {level})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s answers, fewer cases")
    parser.add_argument("--latency", type=float, help="seconds per answer [3, quick 1]")
    parser.add_argument("--slots", type=int, nargs="+", help="servers to try [1 2 4]")
    args = parser.parse_args()
    latency: float = args.latency if args.latency is not None else (1.0 if args.quick else 3.0)
    slot_counts: tuple[int, ...] = tuple(args.slots or SLOTS)
    before = machine()
    workspace = Workspace()
    results: dict[int, dict[Case, CliRun]] = {}
    try:
        for slots in slot_counts:
            pages = PAGES_PER_SLOT * slots
            provider_flags = ["--latency", f"{latency:g}", "--slots", str(slots)]
            provider_flags += ["--header-dialect", "none"]
            with (
                site_subprocess(pages, workspace.path) as site,
                provider_subprocess(provider_flags) as provider,
            ):
                if slots == slot_counts[0]:
                    workspace.warm_up(site.urls_file)
                results[slots] = {}
                for case in cases(args.quick):
                    run = workspace.run_cli(
                        site.urls_file,
                        base_url=provider.base_url,
                        max_concurrent=case[1],
                        provider=provider,
                        env=case_env(case[0]),
                        ok_codes=(0, 1),
                    )
                    results[slots][case] = run
                    stats = run.provider
                    progress(
                        f"{slots} slot(s), {label(case)}: {run.run_wall_s:.1f} s, "
                        f"{stats['requests']} requests, {stats['abandoned']} abandoned, "
                        f"load {run.load_before:.1f}"
                    )
    finally:
        workspace.close()
    after = machine()
    rows = summarise(results, latency)
    data = {
        "benchmark": "local",
        "latency_s": latency,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "pages_per_slot": PAGES_PER_SLOT,
        "machine_before": before,
        "machine_after": after,
        "rows": rows,
        "runs": {
            f"{slots} slots, {label(case)}": run_record(run)
            for slots, runs in results.items()
            for case, run in runs.items()
        },
    }
    write_results("local", data, render(rows, latency, before, after))


def summarise(results: dict[int, dict[Case, CliRun]], latency: float) -> list[dict[str, Any]]:
    rows = []
    for slots, runs in results.items():
        static = {case: run for case, run in runs.items() if case[0] == "static"}
        best_case = min(static, key=lambda case: static[case].run_wall_s)
        best = static[best_case].run_wall_s
        serial = static.get(("static", 1))
        for case, run in runs.items():
            stats = run.provider
            pages = PAGES_PER_SLOT * slots
            rows.append(
                {
                    "slots": slots,
                    "case": label(case),
                    "pages": pages,
                    "exit_code": run.exit_code,
                    "wall_s": run.run_wall_s,
                    "vs_best_static": run.run_wall_s / best,
                    "vs_serial": run.run_wall_s / serial.run_wall_s if serial else float("nan"),
                    "best_static": label(best_case),
                    "cleaned": pages - run.documents_lost,
                    "requests": stats["requests"],
                    "abandoned": stats["abandoned"],
                    "abandoned_queued": stats["abandoned_queued"],
                    "abandoned_work_s": stats["abandoned_work_s"],
                    "max_serving": stats["max_serving"],
                    "max_in_flight": stats["max_in_flight"],
                    "retries": run.report.get("run_finished", {}).get("retries"),
                    "ideal_llm_s": -(-pages // slots) * latency,
                }
            )
    return rows


def render(
    rows: list[dict[str, Any]], latency: float, before: dict[str, Any], after: dict[str, Any]
) -> str:
    table = md_table(
        [
            "slots",
            "run",
            "wall s",
            "/ best static",
            "/ serial",
            "cleaned",
            "requests",
            "abandoned (queued)",
            "wasted server s",
            "served at once",
        ],
        [
            [
                r["slots"],
                r["case"],
                r["wall_s"],
                r["vs_best_static"],
                r["vs_serial"],
                f"{r['cleaned']}/{r['pages']}",
                r["requests"],
                f"{r['abandoned']} ({r['abandoned_queued']})",
                r["abandoned_work_s"],
                r["max_serving"],
            ]
            for r in rows
        ],
    )
    best = {r["slots"]: r["best_static"] for r in rows}
    best_line = ", ".join(f"{slots} slot(s): {case}" for slots, case in best.items())
    return f"""# Local-style servers: slots, streaming and the queue-aware limit

Fake provider with N slots (later requests wait server-side, in order), {latency:g} s per
answer, no rate-limit headers; {PAGES_PER_SLOT} pages per slot; `request_timeout` =
{REQUEST_TIMEOUT_S:g} s. One run per row (wall times move by a few tenths of a second between
runs on this machine). "wall s" is the CLI's own wall time (crawl included); "/ best static"
compares it with the fastest `static K` row of the same server ({best_line}); "/ serial"
with `static 1`. "abandoned" counts requests the client gave up on before the whole answer
arrived (in brackets: while still queued), "wasted server s" the slot time the server spent on
them.

{table}

Machine: {machine_note(before, after)}
"""


if __name__ == "__main__":
    main()
