"""Per-request overhead of the real CLI, and where its trio thread spends the time.

The provider answers instantly (latency 0), so a full run at --max-concurrent 20 is pure
overhead: ours, the provider's and the loopback's. The overhead per request is

    (full run - crawl-only run) / requests

for wall time and for the CLI's own CPU time (user + system, from ``wait4``). Then both runs
are repeated under cProfile (``python -m cProfile -m crawl4ai_llm_docs ...``), and the
per-function time the full run adds over the crawl-only run is ranked: that is the LLM stage,
chunking, collecting and writing, per request. cProfile sees the trio thread only (crawl4ai
works in its own asyncio thread), which is where our pipeline runs; it roughly doubles
Python-heavy code, so its milliseconds are relative, the unprofiled ones absolute.

    uv run python benchmarks/profile_hot_path.py [--quick] [--pages N]

Writes benchmarks/results/profile.json and profile.md.
"""

from __future__ import annotations

import argparse
import pstats
import re
import tempfile
import timeit
from collections import defaultdict
from collections.abc import Callable
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
    site_subprocess,
    write_results,
)

CONCURRENCY = 20
TOP = 25
MICRO_PAGE = 3  # a typical generated page (~9-10 KB of Markdown)
_SITE_PACKAGES = re.compile(r"site-packages/([^/]+)")
Key = tuple[str, int, str]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 pages, one run each")
    parser.add_argument("--pages", type=int, help="pages (= requests) per run [300, quick 100]")
    parser.add_argument("--repeats", type=int, help="unprofiled runs per case [3, quick 1]")
    args = parser.parse_args()
    pages: int = args.pages or (100 if args.quick else 300)
    repeats: int = args.repeats or (1 if args.quick else 3)

    before = machine()
    workspace = Workspace()
    plain: dict[str, list[CliRun]] = {"crawl only": [], "full": []}
    profiles: dict[str, pstats.Stats] = {}
    try:
        with (
            site_subprocess(pages, workspace.path) as site,
            provider_subprocess(provider_args(latency=0.0)) as provider,
        ):
            workspace.warm_up(site.urls_file)
            for attempt in range(repeats):
                for name, no_llm in (("crawl only", True), ("full", False)):
                    run = workspace.run_cli(
                        site.urls_file,
                        base_url=provider.base_url,
                        max_concurrent=CONCURRENCY,
                        no_llm=no_llm,
                        provider=provider,
                    )
                    plain[name].append(run)
                    progress(
                        f"{name} run {attempt + 1}/{repeats}: {run.wall_s:.2f} s, "
                        f"CPU {run.cpu_s:.2f} s, load {run.load_before:.1f}"
                    )
            for name, no_llm in (("crawl only", True), ("full", False)):
                output = workspace.path / f"{name.replace(' ', '-')}.prof"
                workspace.run_cli(
                    site.urls_file,
                    base_url=provider.base_url,
                    max_concurrent=CONCURRENCY,
                    no_llm=no_llm,
                    provider=provider,
                    python_args=["-m", "cProfile", "-o", str(output)],
                )
                profiles[name] = pstats.Stats(str(output))
                progress(f"{name} profiled")
    finally:
        workspace.close()
    after = machine()
    requests = median([float(r.provider["requests"]) for r in plain["full"]])
    overhead = per_request(plain, requests)
    added = added_per_request(profiles["crawl only"], profiles["full"], requests)
    ours = our_functions(profiles["full"], requests)
    packages = by_package(profiles["crawl only"], profiles["full"], requests)
    steps = micro_steps()
    data = {
        "benchmark": "profile",
        "pages": pages,
        "max_concurrent": CONCURRENCY,
        "requests": requests,
        "repeats": repeats,
        "machine_before": before,
        "machine_after": after,
        "overhead": overhead,
        "added_by_function": added,
        "our_functions_cumulative": ours,
        "added_by_package": packages,
        "steps_ms": steps,
        "runs": {name: [run_record(r) for r in rs] for name, rs in plain.items()},
    }
    write_results(
        "profile",
        data,
        render(pages, requests, repeats, overhead, added, ours, packages, steps, before, after),
    )


def micro_steps() -> list[dict[str, Any]]:
    """The pure per-page steps of the LLM path, timed in this process without a profiler."""
    import msgspec

    from crawl4ai_llm_docs.cache.results import ResultCache
    from crawl4ai_llm_docs.config import load_config
    from crawl4ai_llm_docs.crawl.extract import extract
    from crawl4ai_llm_docs.llm import prompts
    from crawl4ai_llm_docs.llm.provider.client import decode_completion
    from crawl4ai_llm_docs.markdown.chunking import split_page
    from crawl4ai_llm_docs.markdown.tokens import count_tokens
    from crawl4ai_llm_docs.models import Page
    from crawl4ai_llm_docs.testing.provider.answers import ChatRequest, answer
    from crawl4ai_llm_docs.testing.site.server import generated_page

    with tempfile.TemporaryDirectory() as empty:  # no user or project config file
        llm = load_config(environ={}, cwd=Path(empty)).config.llm
    url = f"http://127.0.0.1/docs/page-{MICRO_PAGE:03d}.html"
    extracted = extract(generated_page(MICRO_PAGE), url)
    page = Page(
        index=0,
        url=url,
        final_url=url,
        title=extracted.title,
        markdown=extracted.markdown,
        status=200,
        error=None,
        elapsed=0.0,
        bytes=0,
    )
    count_tokens("warm up")  # the encoder loads once per run; timed apart below
    chunk = split_page(page, max_tokens=llm.chunk_max_tokens)[0]
    messages = prompts.build_messages(chunk, llm)
    body = msgspec.json.encode(
        {"model": llm.model, "messages": messages, "max_tokens": llm.max_tokens}
    )
    reply = answer(msgspec.json.decode(body, type=ChatRequest), None)
    response = msgspec.json.encode(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": llm.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
    _, cleaned = prompts.parse_answer(reply.content)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("split_page (token count + chunking)", lambda: split_page(page, max_tokens=6000)),
        ("ResultCache.key_for (sha256)", lambda: ResultCache.key_for(chunk, llm)),
        ("build_messages", lambda: prompts.build_messages(chunk, llm)),
        ("request body (msgspec encode)", lambda: msgspec.json.encode({"messages": messages})),
        ("decode_completion", lambda: decode_completion(response)),
        ("parse_answer", lambda: prompts.parse_answer(reply.content)),
        ("check_faithful", lambda: prompts.check_faithful(chunk.text, cleaned, min_ratio=0.35)),
        (
            "  of which _non_space x2",
            lambda: (prompts._non_space(chunk.text), prompts._non_space(cleaned)),
        ),
        (
            "  alternative: len(''.join(s.split())) x2",
            lambda: (len("".join(chunk.text.split())), len("".join(cleaned.split()))),
        ),
    ]
    return [
        {"step": name, "ms": _best_ms(call), "page_chars": len(chunk.text)} for name, call in steps
    ]


def _best_ms(call: Callable[[], object], number: int = 50) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) * 1000 / number


def per_request(plain: dict[str, list[CliRun]], requests: float) -> dict[str, float]:
    crawl_wall = median([r.wall_s for r in plain["crawl only"]])
    full_wall = median([r.wall_s for r in plain["full"]])
    crawl_cpu = median([r.cpu_s for r in plain["crawl only"]])
    full_cpu = median([r.cpu_s for r in plain["full"]])
    return {
        "crawl_only_wall_s": crawl_wall,
        "full_wall_s": full_wall,
        "crawl_only_cpu_s": crawl_cpu,
        "full_cpu_s": full_cpu,
        "wall_ms_per_request": (full_wall - crawl_wall) * 1000 / requests,
        # Best against best: the least disturbed estimate on a shared machine.
        "wall_ms_per_request_best": (
            min(r.wall_s for r in plain["full"]) - min(r.wall_s for r in plain["crawl only"])
        )
        * 1000
        / requests,
        "cpu_ms_per_request": (full_cpu - crawl_cpu) * 1000 / requests,
        "full_wall_ms_per_page": full_wall * 1000 / requests,
    }


def _label(key: Key) -> str:
    path, line, name = key
    if path == "~":
        return name  # a built-in, e.g. <method 'acquire' of '_thread.lock' objects>
    if "/crawl4ai_llm_docs/" in path:
        module = path.split("/crawl4ai_llm_docs/", 1)[1].removesuffix(".py").replace("/", ".")
        return f"crawl4ai_llm_docs.{module}:{line} {name}"
    found = _SITE_PACKAGES.search(path)
    where = found.group(1) if found else Path(path).name
    return f"{where}/{Path(path).name}:{line} {name}"


def _package(key: Key) -> str:
    path = key[0]
    if path == "~":
        return "(built-ins)"
    if "/crawl4ai_llm_docs/" in path:
        return "crawl4ai_llm_docs." + path.split("/crawl4ai_llm_docs/", 1)[1].split("/")[
            0
        ].removesuffix(".py")
    found = _SITE_PACKAGES.search(path)
    return found.group(1) if found else "(standard library)"


def _table(stats: pstats.Stats) -> dict[Key, tuple[int, float, float]]:
    """key -> (calls, own seconds, cumulative seconds)."""
    raw: dict[Key, Any] = stats.stats  # type: ignore[attr-defined]
    return {key: (value[1], value[2], value[3]) for key, value in raw.items()}


def added_per_request(
    base: pstats.Stats, full: pstats.Stats, requests: float
) -> list[dict[str, Any]]:
    """Functions ranked by the own time the full run adds over the crawl-only run."""
    before, after = _table(base), _table(full)
    rows: list[dict[str, Any]] = []
    for key, (calls, own, _) in after.items():
        base_calls, base_own, _ = before.get(key, (0, 0.0, 0.0))
        rows.append(
            {
                "function": _label(key),
                "own_ms_per_request": (own - base_own) * 1000 / requests,
                "calls_per_request": (calls - base_calls) / requests,
            }
        )
    rows.sort(key=lambda row: row["own_ms_per_request"], reverse=True)
    return rows[:TOP]


def our_functions(full: pstats.Stats, requests: float) -> list[dict[str, Any]]:
    """Our package's functions by cumulative time per request (includes what they call)."""
    rows: list[dict[str, Any]] = [
        {
            "function": _label(key),
            "cumulative_ms_per_request": cumulative * 1000 / requests,
            "own_ms_per_request": own * 1000 / requests,
            "calls_per_request": calls / requests,
        }
        for key, (calls, own, cumulative) in _table(full).items()
        if "/crawl4ai_llm_docs/" in key[0]
    ]
    rows.sort(key=lambda row: row["cumulative_ms_per_request"], reverse=True)
    return rows[:TOP]


def by_package(base: pstats.Stats, full: pstats.Stats, requests: float) -> list[dict[str, Any]]:
    added: dict[str, float] = defaultdict(float)
    for key, (_, own, _) in _table(full).items():
        added[_package(key)] += own
    for key, (_, own, _) in _table(base).items():
        added[_package(key)] -= own
    rows: list[dict[str, Any]] = [
        {"package": name, "own_ms_per_request": seconds * 1000 / requests}
        for name, seconds in added.items()
    ]
    rows.sort(key=lambda row: row["own_ms_per_request"], reverse=True)
    return rows[:15]


def render(
    pages: int,
    requests: float,
    repeats: int,
    overhead: dict[str, float],
    added: list[dict[str, Any]],
    ours: list[dict[str, Any]],
    packages: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    before: dict[str, Any],
    after: dict[str, Any],
) -> str:
    summary = md_table(
        ["run", "wall s", "CLI CPU s"],
        [
            ["crawl only (--no-llm)", overhead["crawl_only_wall_s"], overhead["crawl_only_cpu_s"]],
            [
                f"full, --max-concurrent {CONCURRENCY}",
                overhead["full_wall_s"],
                overhead["full_cpu_s"],
            ],
            [
                "added per request, ms",
                overhead["wall_ms_per_request"],
                overhead["cpu_ms_per_request"],
            ],
        ],
    )
    ok = overhead["wall_ms_per_request"] < 5
    return "\n".join(
        [
            f"# Hot path: {pages} pages, zero-latency provider, --max-concurrent {CONCURRENCY}",
            "",
            f"Machine: {machine_note(before, after)}",
            f"Median of {repeats} unprofiled run(s) per case; {requests:.0f} requests per full run.",
            "",
            summary,
            "",
            f"Per-request overhead (wall): {overhead['wall_ms_per_request']:.1f} ms "
            f"(target < 5 ms: {'met' if ok else 'NOT met'}; best run against best run: "
            f"{overhead['wall_ms_per_request_best']:.1f} ms); the CLI's own CPU: "
            f"{overhead['cpu_ms_per_request']:.1f} ms per request. With a zero-latency provider "
            "on 2 cores the wall figure also contains the provider's and the site's CPU.",
            "",
            f"## Pure per-page steps of the LLM path (page {MICRO_PAGE}, "
            f"{steps[0]['page_chars'] if steps else 0} characters of Markdown; timeit "
            "in-process, no profiler, best of 5)",
            "",
            md_table(
                ["step", "microseconds per page"],
                [[r["step"], round(r["ms"] * 1000, 1)] for r in steps],
            ),
            "",
            "## What the full run adds over crawl only, by package (cProfile, trio thread, "
            "ms per request)",
            "",
            md_table(
                ["package", "own ms/request"],
                [[r["package"], r["own_ms_per_request"]] for r in packages],
            ),
            "",
            f"## Top {TOP} functions by own time added per request (cProfile)",
            "",
            md_table(
                ["function", "own ms/request", "calls/request"],
                [[r["function"], r["own_ms_per_request"], r["calls_per_request"]] for r in added],
            ),
            "",
            "## Our functions by cumulative time per request, full run (cProfile)",
            "",
            md_table(
                ["function", "cumulative ms/request", "own ms/request", "calls/request"],
                [
                    [
                        r["function"],
                        r["cumulative_ms_per_request"],
                        r["own_ms_per_request"],
                        r["calls_per_request"],
                    ]
                    for r in ours
                ],
            ),
        ]
    )


if __name__ == "__main__":
    main()
