"""Markdown first: what taking a site's own Markdown costs next to converting its HTML.

The local site serves generated pages that offer their Markdown (a ``<link rel="alternate">``
in the head, or Accept negotiation); the real CLI crawls them with ``--no-llm --no-cache``
(crawling only: the LLM is the same either way) under ``--prefer-markdown never`` (the HTML
converted, one request a page) and ``auto`` (the Markdown checked and taken, two requests a
page). Runs alternate, ``--rounds`` times each, so a busy machine weighs on both alike. For
each: the CLI's wall time, the CPU time of its process, requests the site answered, and the
tokens (cl100k) of the written document.

    uv run python benchmarks/bench_markdown_first.py [--pages N] [--rounds N]

Writes benchmarks/results/markdown_first.json and benchmarks/results/markdown_first.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import code_version, machine, machine_note, md_table, progress, write_results

from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

SECTIONS, PARAGRAPHS = 6, 4  # a page of about 2,500 words with six code blocks


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "crawl4ai_llm_docs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"exit {done.returncode}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    before = machine()
    samples: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="c4ld-mdfirst-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWL4AI_", "OPENAI_"))}
        env.update(XDG_CACHE_HOME=str(tmp / "cache"), XDG_CONFIG_HOME=str(tmp / "config"))
        for offer in ("link", "negotiate"):
            site_config = SiteConfig(
                pages=options.pages, sections=SECTIONS, paragraphs=PARAGRAPHS, markdown=offer
            )
            with run_site_in_thread(site_config) as site:
                urls_file = tmp / "urls.txt"
                urls_file.write_text("\n".join(site.page_urls()) + "\n")
                for number in range(options.rounds):
                    for prefer in ("never", "auto"):
                        name = f"{offer}: --prefer-markdown {prefer}"
                        output = tmp / f"{offer}-{prefer}.md"
                        args = [str(urls_file), "-o", str(output), "--no-llm", "--no-cache"]
                        args += ["--crawler", "http", "--no-progress", "--prefer-markdown", prefer]
                        site.request_log.clear()
                        progress(f"{name}, round {number + 1}")
                        wall, cpu = _run(args, env, tmp)
                        report = json.loads(output.with_suffix(".report.json").read_text())
                        samples.setdefault(name, []).append(
                            {
                                "wall_s": round(wall, 2),
                                "run_wall_s": report["run_finished"]["wall_s"],
                                "cpu_s": round(cpu, 2),
                                "requests": len(site.request_log),
                                "documents": report["run_finished"]["documents"],
                                "tokens": count_tokens(output.read_text()),
                            }
                        )
    after = machine()
    rows = []
    for name, runs in samples.items():
        rows.append(
            {
                "run": name,
                "run_wall_s": statistics.median(r["run_wall_s"] for r in runs),
                "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                "requests": runs[0]["requests"],
                "documents": runs[0]["documents"],
                "tokens": runs[0]["tokens"],
                "samples": runs,
            }
        )
    table_rows = []
    for row in rows:
        html = next(r for r in rows if r["run"] == row["run"].replace("auto", "never"))
        table_rows.append(
            [
                row["run"],
                row["documents"],
                row["requests"],
                row["run_wall_s"],
                f"{row['run_wall_s'] / html['run_wall_s']:.2f}x",
                row["cpu_s"],
                f"{row['cpu_s'] / html['cpu_s']:.2f}x",
                row["tokens"],
                f"{row['tokens'] / html['tokens']:.2f}x",
            ]
        )
    table = md_table(
        [
            "site offers / run",
            "pages",
            "requests",
            "wall s (median)",
            "vs never",
            "CPU s (median)",
            "vs never",
            "document tokens",
            "vs never",
        ],
        table_rows,
    )
    markdown = (
        "# Markdown first\n\n"
        f"{options.pages} generated pages ({SECTIONS} sections of {PARAGRAPHS} paragraphs, a "
        "code block and a table each) on loopback; the real CLI with --no-llm --no-cache "
        f"--crawler http; medians of {options.rounds} alternating runs. Wall time is the CLI's "
        "own (its report); CPU time is the whole process's, start-up included.\n\n"
        f"{table}\n\n{machine_note(before, after)}\n"
    )
    write_results(
        "markdown_first",
        {"code": code_version(), "machine": [before, after], "rows": rows},
        markdown,
    )
    print(markdown)


if __name__ == "__main__":
    main()
