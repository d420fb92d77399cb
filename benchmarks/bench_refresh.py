"""Refresh: what a re-run costs when nothing changed, and when a few pages did.

Real documentation (Debian's python3.11-doc: the library, tutorial, howto and reference
pages) is served on loopback by the local site with ETag and Last-Modified, honouring
conditional requests; the fake provider answers every chunk after a fixed latency. The real
CLI runs three times with one cache directory, as a user re-running the same job would:

1. first run: every page is new;
2. the same command again, nothing changed;
3. after ``--changes`` pages were edited on the server;

then, with a cache directory of its own, the same from a root URL (discovery from
``library/index.html``, ``--max-pages`` the same page count): a first run and an unchanged
re-run, which the stored links let 304s answer too.

For each: wall time, pages answered 200 / 304, LLM requests, and the new / changed /
unchanged counts the run reports.

    uv run python benchmarks/bench_refresh.py [--quick] [--pages N] [--changes N]

Writes benchmarks/results/refresh.json and benchmarks/results/refresh.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import code_version, machine, machine_note, md_table, progress, write_results

from crawl4ai_llm_docs.testing.provider.server import make_config, run_in_thread
from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

DOCS = Path("/usr/share/doc/python3.11/html")
SECTIONS = ("library", "tutorial", "howto", "reference")
LATENCY_S = 0.2
CONCURRENCY = 8


def _page_paths(limit: int) -> list[str]:
    paths = sorted(
        str(path.relative_to(DOCS))
        for section in SECTIONS
        for path in (DOCS / section).rglob("*.html")
    )
    return paths[:limit]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float, str]:
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
    return done.returncode, time.monotonic() - started, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 pages instead of 300")
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--changes", type=int, default=5)
    options = parser.parse_args()
    if not DOCS.is_dir():
        sys.exit(f"{DOCS} is missing: apt-get install python3.11-doc")
    pages = 60 if options.quick else options.pages
    before = machine()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="c4ld-refresh-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWL4AI_", "OPENAI_"))}
        env.update(
            OPENAI_API_KEY="bench-key",
            XDG_CACHE_HOME=str(tmp / "cache"),
            XDG_CONFIG_HOME=str(tmp / "config"),
        )
        site_config = SiteConfig(directory=str(DOCS), validators="both")
        provider_config = make_config({"latency": LATENCY_S})
        with run_site_in_thread(site_config) as site, run_in_thread(provider_config) as provider:
            paths = _page_paths(pages)
            urls_file = tmp / "urls.txt"
            urls_file.write_text("\n".join(site.url(p) for p in paths) + "\n")
            output = tmp / "out" / "docs.md"
            args = [str(urls_file), "-o", str(output), "--crawler", "http", "--no-progress"]
            args += ["--base-url", provider.base_url, "--max-concurrent", str(CONCURRENCY)]
            step = max(len(paths) // max(options.changes, 1), 1)
            edited = paths[::step][: options.changes]
            runs = {
                # The yardstick: what crawling alone costs, with no state and no LLM.
                "crawl only (--no-llm --no-cache)": [*args[:5], "--no-llm", "--no-cache"],
                "first run": args,
                "unchanged re-run": args,
                f"{len(edited)} pages changed": args,
            }
            root_args = [site.url("/library/index.html"), *args[1:]]
            root_args += ["--max-pages", str(len(paths))]
            runs["from a root: first run"] = root_args
            runs["from a root: unchanged re-run"] = root_args
            root_env = {**env, "XDG_CACHE_HOME": str(tmp / "cache-root")}
            for name, run_args in runs.items():
                if name.startswith("from a root"):
                    env = root_env
                if name.endswith("changed"):
                    for path in edited:
                        site.change("/" + path)
                provider.reset()
                site.statuses.clear()
                progress(f"{name}: {len(paths)} pages")
                code, wall, stderr = _run(run_args, env, tmp)
                if code != 0:
                    sys.exit(f"{name}: exit {code}\n{stderr[-3000:]}")
                report = json.loads(output.with_suffix(".report.json").read_text())
                finished = report["run_finished"]
                rows.append(
                    {
                        "run": name,
                        "pages": finished["documents"],
                        "wall_s": round(wall, 2),
                        "run_wall_s": finished["wall_s"],
                        "http_200": site.statuses[200],
                        "http_304": site.statuses[304],
                        "llm_requests": provider.stats().requests,
                        "cached_chunks": finished["cached_chunks"],
                        "new": finished["new_pages"],
                        "changed": finished["changed_pages"],
                        "unchanged": finished["unchanged_pages"],
                    }
                )
    after = machine()
    crawl = rows[0]["run_wall_s"]
    table = md_table(
        [
            "run",
            "pages",
            "wall s",
            "vs crawl only",
            "HTTP 200",
            "HTTP 304",
            "LLM requests",
            "new / changed / unchanged",
        ],
        [
            [
                r["run"],
                r["pages"],
                r["run_wall_s"],
                f"{r['run_wall_s'] / crawl:.2f}x",
                r["http_200"],
                r["http_304"],
                r["llm_requests"],
                f"{r['new']} / {r['changed']} / {r['unchanged']}",
            ]
            for r in rows
        ],
    )
    markdown = (
        "# Refresh\n\n"
        f"{pages} pages of Debian's python3.11-doc ({', '.join(SECTIONS)}) on loopback with "
        f"ETag + Last-Modified; fake provider at {LATENCY_S:g} s per answer, "
        f"--max-concurrent {CONCURRENCY}; one cache directory for the three URL-file runs, another "
        "for the two runs from a root URL. Wall time "
        "is the CLI's own (its report), without interpreter start-up.\n\n"
        f"{table}\n\n{machine_note(before, after)}\n"
    )
    write_results(
        "refresh",
        {"code": code_version(), "machine": [before, after], "rows": rows},
        markdown,
    )
    print(markdown)


if __name__ == "__main__":
    main()
