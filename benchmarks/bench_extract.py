"""The CPU ``extract()`` costs per real page, for ``bench_crawl.py --extract`` (see there).

Each run is a child process of ``bench_crawl.py`` (``--extract-child``), so that another
checkout's extractor can be imported instead (``--compare-with``, via PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def extract_child(pages_file: Path, cache_dir: Path) -> dict[str, Any]:
    """CPU milliseconds of ``extract()`` per page, in this process (imports done first)."""
    from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai

    prepare_crawl4ai(cache_dir)
    import crawl4ai_llm_docs
    from crawl4ai_llm_docs.crawl.extract import extract
    from crawl4ai_llm_docs.fetch.http import decode_html

    paths = [Path(line) for line in pages_file.read_text().split()]
    pages = [(f"http://127.0.0.1:8000/{p.name}", decode_html(p.read_bytes(), None)) for p in paths]
    extract(pages[0][1], pages[0][0])  # the first call imports what the converter needs
    costs, chars = [], 0
    for url, html in pages:
        started = time.process_time()
        chars += len(extract(html, url).markdown)
        costs.append((time.process_time() - started) * 1000)
    return {
        "tree": str(Path(crawl4ai_llm_docs.__file__).resolve().parent.parent),
        "pages": len(pages),
        "cpu_ms_mean": round(statistics.mean(costs), 2),
        "cpu_ms_median": round(statistics.median(costs), 2),
        "cpu_ms_total": round(sum(costs), 1),
        "markdown_chars_per_page": chars // len(pages),
        "html_kb_mean": round(statistics.mean(len(h) for _, h in pages) / 1000, 1),
    }


def run_extract(docs: Path, compare_with: str, repeats: int, script: Path) -> None:
    """The extraction figures, this tree and another side by side, alternating run by run."""
    paths = sorted(p for p in docs.glob("*.html") if p.is_file())
    if not paths:
        raise SystemExit(f"no pages under {docs}: apt-get install python3.11-doc, or --docs DIR")
    variants = ["", *([str(Path(compare_with).resolve())] if compare_with else [])]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        pages_file = Path(tmp) / "pages.txt"
        pages_file.write_text("\n".join(map(str, paths)) + "\n")
        for _ in range(repeats):
            for variant in variants:
                env = dict(os.environ)
                if variant:
                    env["PYTHONPATH"] = os.pathsep.join(
                        filter(None, (variant, env.get("PYTHONPATH")))
                    )
                command = [sys.executable, str(script), "--extract-child", str(pages_file), tmp]
                done = subprocess.run(
                    command, capture_output=True, text=True, env=env, timeout=1800, check=True
                )
                row = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(row), flush=True)
                runs[variant].append(row)
    rows = []
    for variant in variants:
        best = min(runs[variant], key=lambda row: row["cpu_ms_mean"])
        best["code"] = variant or "this tree"
        best["runs_cpu_ms_mean"] = [row["cpu_ms_mean"] for row in runs[variant]]
        rows.append(best)
    write_extract(rows, docs, repeats)


def write_extract(rows: list[dict[str, Any]], docs: Path, repeats: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.system()} {platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}"
    load = ", ".join(f"{value:.1f}" for value in psutil.getloadavg())
    commit = subprocess.run(
        ["git", "-C", str(RESULTS.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    (RESULTS / "extract.json").write_text(
        json.dumps(
            {"machine": machine, "commit": commit, "docs": str(docs), "load": load, "rows": rows},
            indent=2,
        )
        + "\n"
    )
    lines = [
        f"extract() on the {rows[0]['pages']} pages of {docs} ({machine}), commit {commit}.",
        f"CPU time of each page's call, one thread; the fastest of {repeats} runs per tree "
        "(every run's mean in the last column), the trees alternating run by run.",
        f"Load average (1, 5, 15 min) at the end: {load}.",
        "",
        "| code | pages | mean HTML KB | CPU ms/page (mean) | median | total s "
        "| Markdown chars/page | mean of each run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['code']} | {row['pages']} | {row['html_kb_mean']} | {row['cpu_ms_mean']} "
            f"| {row['cpu_ms_median']} | {row['cpu_ms_total'] / 1000:.1f} "
            f"| {row['markdown_chars_per_page']} "
            f"| {', '.join(str(v) for v in row['runs_cpu_ms_mean'])} |"
        )
    if len(rows) == 2:
        lines += [
            "",
            f"Ratio this tree / other: {rows[0]['cpu_ms_mean'] / rows[1]['cpu_ms_mean']:.2f}",
        ]
    (RESULTS / "extract.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
