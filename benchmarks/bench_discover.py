"""Discovery memory: peak RSS of ``map`` over a generated 1,000-page and 100,000-page site.

The site (``crawl4ai_llm_docs.testing.site``) publishes every page in a sitemap (for 100,000
pages a sitemap index of two gzip files) and links each page to its neighbours, so discovery
has to walk about 5,000 link levels breadth-first and also carries 100,000 sitemap seeds.
``map`` crawls every page (``--max-pages`` above the site size) to read its links; the
frontier and the seeds spill to disk and the seen set keeps 8-byte fingerprints, so peak RSS
should hardly grow with the site (target: 100,000 pages within 1.3x of 1,000).

Peak RSS is the ``map`` process's own ``ru_maxrss`` (exact, from ``wait4``).

    uv run python benchmarks/bench_discover.py [--quick] [--sizes 1000 100000]

``--quick`` runs 1,000 and 10,000 pages. Writes benchmarks/results/discover.json and .md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
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

SIZES = (1_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
CONCURRENCY = 8
TARGET_RATIO = 1.3


def _site(pages: int) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "crawl4ai_llm_docs.testing.site",
        "--port",
        "0",
        "--pages",
        str(pages),
        "--sections",
        "1",
        "--paragraphs",
        "1",
        "--sitemap",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    match = _LISTENING.fullmatch(_first_line(process, 60).strip())
    if match is None:
        _stop(process)
        raise RuntimeError("the local site did not start")
    return process, match.group(1)


def measure(workspace: Workspace, pages: int) -> dict[str, Any]:
    process, base = _site(pages)
    try:
        out = workspace.path / f"map-{pages}.txt"
        log = workspace.path / f"map-{pages}.log"
        args = [
            "map",
            f"{base}/docs/page-000.html",
            "-o",
            str(out),
            "--max-pages",
            str(pages * 2),
            "--crawl-concurrency",
            str(CONCURRENCY),
            "--log-level",
            "warning",
        ]
        with log.open("w") as log_file:
            code, wall, usage = _run_measured(
                [sys.executable, "-m", "crawl4ai_llm_docs", *args],
                cwd=workspace.path,
                env=workspace.env(),
                stdout=log_file,
                timeout_s=6 * 3600,
            )
        if code != 0:
            raise RuntimeError(f"map exited {code}:\n{log.read_text()[-3000:]}")
        listed = _listed(out)
    finally:
        _stop(process)
    return {
        "pages": pages,
        "listed": listed,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "pages_per_s": round(listed / wall, 1) if wall else None,
    }


def _listed(path: Path) -> int:
    with path.open() as handle:
        return sum(1 for line in handle if line.startswith("http"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 pages")
    parser.add_argument("--sizes", type=int, nargs="+", help="site sizes to run")
    args = parser.parse_args()
    sizes: tuple[int, ...] = tuple(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    before = machine()
    workspace = Workspace()
    rows: list[dict[str, Any]] = []
    try:
        for pages in sizes:
            progress(f"map of a {pages:,}-page site")
            rows.append(measure(workspace, pages))
            progress(f"  {rows[-1]}")
    finally:
        workspace.close()
    after = machine()
    smallest, largest = rows[0], rows[-1]
    ratio = largest["peak_rss_mb"] / smallest["peak_rss_mb"]
    complete = all(row["listed"] == row["pages"] for row in rows)
    verdict = "holds" if ratio <= TARGET_RATIO and complete else "MISSED"
    table = md_table(
        ["site pages", "listed", "peak RSS MB", "wall s", "CPU s", "pages/s"],
        [
            [r["pages"], r["listed"], r["peak_rss_mb"], r["wall_s"], r["cpu_s"], r["pages_per_s"]]
            for r in rows
        ],
    )
    markdown = (
        "# Discovery memory (`map`)\n\n"
        f"{table}\n\n"
        f"Peak RSS {largest['pages']:,} pages / {smallest['pages']:,} pages: **{ratio:.2f}x** "
        f"(target <= {TARGET_RATIO}x: {verdict}); every page listed: {complete}.\n\n"
        f"{machine_note(before, after)}\n"
    )
    write_results(
        "discover",
        {"rows": rows, "ratio": ratio, "target": TARGET_RATIO, "machine": before},
        markdown,
    )
    print(markdown)


if __name__ == "__main__":
    main()
