"""Time and memory of the write stage: every output from N finished documents.

Unlike the other benchmarks this one runs in-process (``publish.write_outputs``, the call the
run makes), because with the real command the crawl would dominate: it isolates the writers.
Documents are synthetic (~27 KB of Markdown each, 12 directories, a shared title suffix) and
come from a ``DocumentSpool`` on disk, as in a run. Each size is written three ways: the
consolidated document alone; plus llms.txt / llms-full.txt and ``--pages-dir``; and all of
them with ``--max-file-tokens 50000``. Peak memory is tracemalloc's, in a separate pass (it
slows the code down, so the times come from passes without it).

    uv run python benchmarks/bench_outputs.py [--quick] [--sizes 500 2000]

Writes benchmarks/results/outputs.json and outputs.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import machine, machine_note, md_table, progress, write_results

from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.markdown.tokens import preload_encoder
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.publish import OutputRequest, write_outputs

PARAGRAPH = "Some words of documentation that make up a sentence of ordinary length. " * 30


def _document(index: int) -> Document:
    body = "\n\n".join(f"## Part {part}\n\n{PARAGRAPH}" for part in range(12))
    return Document(
        index=index,
        url=f"https://docs.example.org/v1/s{index % 12}/page-{index}.html",
        title=f"Page {index} — Example 1.0 documentation",
        markdown=f"# Page {index}\n\n{PARAGRAPH}\n\n{body}",
    )


MODES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "document only": lambda d: {},
    "+ llms.txt + pages dir": lambda d: {"llms_dir": d / "llms", "pages_dir": d / "pages"},
    "all, split at 50k tokens": lambda d: {
        "llms_dir": d / "llms",
        "pages_dir": d / "pages",
        "max_file_tokens": 50_000,
    },
}


def _measure(size: int, mode: str, *, trace: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        spool = DocumentSpool(root / "spool")
        spool.open()
        try:
            for index in range(size):
                spool.add_sync(_document(index))
            request = OutputRequest(
                markdown=root / "out" / "docs.md",
                generated_at=datetime.now(UTC),
                **MODES[mode](root / "out"),
            )
            if trace:
                tracemalloc.start()
            started = time.perf_counter()
            written = write_outputs(spool, request)
            seconds = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1] if trace else 0
            if trace:
                tracemalloc.stop()
            size_mb = sum(p.stat().st_size for p in (root / "out").rglob("*") if p.is_file()) / 1e6
        finally:
            spool.close()
    return {
        "pages": size,
        "mode": mode,
        "seconds": seconds,
        "peak_mb": peak / 1e6,
        "written_mb": size_mb,
        "outputs": len(written),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one size of 300 pages")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    args = parser.parse_args()
    sizes = [300] if args.quick else args.sizes
    preload_encoder()
    before = machine()
    runs: list[dict[str, Any]] = []
    for size in sizes:
        for mode in MODES:
            progress(f"{size} pages, {mode}")
            timed = _measure(size, mode, trace=False)
            timed["peak_mb"] = _measure(size, mode, trace=True)["peak_mb"]
            runs.append(timed)
    after = machine()
    rows = [
        [
            r["pages"],
            r["mode"],
            r["seconds"],
            r["pages"] / r["seconds"],
            r["written_mb"],
            r["peak_mb"],
        ]
        for r in runs
    ]
    table = md_table(
        ["pages", "outputs", "seconds", "pages/s", "MB written", "peak traced MB"], rows
    )
    markdown = f"# Write stage\n\n{machine_note(before, after)}\n\n{table}\n"
    write_results("outputs", {"machine": before, "machine_after": after, "runs": runs}, markdown)


if __name__ == "__main__":
    main()
