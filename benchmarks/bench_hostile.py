"""Hostile sites (issue 25, the network and discovery half): each case of
``crawl4ai_llm_docs.testing.hostile.sites`` through the real CLI, with its exit code, wall
time, peak RSS, the pages it listed and the paths it should never have asked for.

The site runs as its own process (``python -m crawl4ai_llm_docs.testing.hostile.server``),
so the CLI's peak RSS (``wait4``, exact) is not inflated by the payloads. With
``--compare-with DIR`` the cases in ``--compare`` also run with the package imported from
another checkout (e.g. ``git archive <commit> | tar -x -C DIR``), side by side, in the same
session; the cases that drive the old code to gigabytes (the bombs) are not compared.

    uv run python benchmarks/bench_hostile.py [--cases ...] [--compare-with DIR]

Writes benchmarks/results/hostile.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import (
    _LISTENING,
    Workspace,
    _first_line,
    _run_measured,
    _stop,
    machine,
    machine_note,
    md_table,
    progress,
    write_results,
)

from crawl4ai_llm_docs.testing.hostile import sites

BOMBS = list(sites.PAGE_BOMBS)
# case -> (the CLI's arguments given the site's address and the run's directory, the paths
# it must never ask for)
Command = Callable[[str, Path], list[str]]


def _run_from_root(root: str) -> Command:
    return lambda base, d: [base + root, "-o", str(d / "out.md"), "--no-llm", "--crawler", "http"]


def _map(root: str, *extra: str) -> Command:
    return lambda base, d: ["map", base + root, "-o", str(d / "urls.txt"), *extra]


def _bomb_pages(base: str, d: Path) -> list[str]:
    urls = [base + "/docs/ok.html", *(base + p for p in BOMBS)]
    (d / "urls.txt").write_text("\n".join(urls) + "\n")
    return ["urls.txt", "-o", str(d / "out.md"), "--no-llm", "--crawler", "http"]


CASES: dict[str, tuple[Command, tuple[str, ...]]] = {
    "page-bombs": (_bomb_pages, ()),
    "site-file-bombs": (_map("/docs/"), ()),
    "dripping-sitemaps": (_map("/docs/"), ()),
    "wildcard-robots": (_map("/docs/", "--sources", "links"), ("/docs/private/x.html",)),
    "redirects": (_run_from_root("/docs/"), sites.NEVER_FETCHED),
    "docs-tree": (_map("/en/5.0/"), ()),
}
COMPARE = ["wildcard-robots", "dripping-sitemaps", "redirects", "docs-tree"]


@contextmanager
def hostile_site(case: str, workdir: Path) -> Iterator[str]:
    command = [sys.executable, "-m", "crawl4ai_llm_docs.testing.hostile.server", case]
    process = subprocess.Popen(
        [*command, "--port", "0"], cwd=workdir, stdout=subprocess.PIPE, text=True
    )
    try:
        line = _first_line(process, 60.0)
        found = _LISTENING.search(line)
        if found is None:
            raise RuntimeError(f"the hostile site did not start: {line!r}")
        yield found.group(1)
    finally:
        _stop(process)


def _hits(base: str) -> dict[str, int]:
    with urllib.request.urlopen(base + "/_hits", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def measure(case: str, space: Workspace, package: str) -> dict[str, Any]:
    command, never = CASES[case]
    run_dir = space.path / f"{case}-{'before' if package else 'after'}"
    run_dir.mkdir()
    env = space.env({"PYTHONPATH": package} if package else None)
    with hostile_site(case, space.path) as base:
        args = [*command(base, run_dir), "--no-progress"]
        with (run_dir / "cli.log").open("w") as log:
            code, wall, usage = _run_measured(
                [sys.executable, "-m", "crawl4ai_llm_docs", *args],
                cwd=run_dir,
                env=env,
                stdout=log,
                timeout_s=400.0,
            )
        hits = _hits(base)
    listed = 0
    if (run_dir / "urls.txt").exists() and args[0] == "map":
        text = (run_dir / "urls.txt").read_text()
        listed = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    elif (run_dir / "out.report.json").exists():
        report = json.loads((run_dir / "out.report.json").read_text())
        listed = int(report["run_finished"]["documents"])
    return {
        "case": case,
        "code": "before" if package else "after",
        "exit": code,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "listed": listed,
        "never_fetched_asked": sum(hits.get(path, 0) for path in never),
        "log_tail": (run_dir / "cli.log").read_text(errors="replace")[-1500:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--compare-with", default="", help="a checkout of the code before")
    parser.add_argument("--compare", nargs="*", default=COMPARE, choices=list(CASES))
    args = parser.parse_args()
    before_dir = str(Path(args.compare_with).resolve()) if args.compare_with else ""
    space = Workspace()
    start = machine()
    runs: list[dict[str, Any]] = []
    try:
        for case in args.cases:
            variants = [""] + ([before_dir] if before_dir and case in args.compare else [])
            for package in variants:
                progress(f"{case} ({'before' if package else 'after'})")
                runs.append(measure(case, space, package))
    finally:
        space.close()
    end = machine()
    rows = [
        [
            r["case"],
            r["code"],
            r["exit"],
            r["wall_s"],
            r["peak_rss_mb"],
            r["listed"],
            r["never_fetched_asked"],
        ]
        for r in runs
    ]
    headers = ["case", "code", "exit", "wall s", "peak RSS MB", "pages listed", "forbidden asked"]
    markdown = "\n\n".join(
        [
            "# Hostile sites: the network and discovery cases of issue 25",
            f"Machine: {machine_note(start, end)}",
            "Each case of `crawl4ai_llm_docs.testing.hostile.sites` through the real CLI "
            "(`benchmarks/bench_hostile.py`), once. *before*: the package of "
            f"`{args.compare_with or '-'}` (the code before the fix), same session. "
            "*forbidden asked*: requests for paths a correct crawler never asks for (a "
            "redirect target robots.txt disallows, another host's sitemap or page, ...).",
            md_table(headers, rows),
        ]
    )
    write_results("hostile", {"machine": start, "machine_after": end, "runs": runs}, markdown)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
