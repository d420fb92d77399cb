"""Cost of the faithfulness check (``llm/faithful.py``) on 10 KB chunks of real page Markdown.

The chunks are cut (by the pipeline's own ``split_text``) from the extractor's Markdown of
Debian's Sphinx pages in ``tests/fixtures/markdown``; each is judged against answers a model
gives: the chunk itself, a harmless rewrite (headings re-levelled, paragraphs reflowed, list
markers changed), and three corrupted ones (half replaced by filler, a repetition loop,
identifiers renamed). ``judge`` is timed as the stage calls it, from the two strings (both
parsed), and with the chunk parsed once already (a retry's second answer). Times are CPU
time of this process (``time.process_time``: other work on a shared machine does not count),
best of 7 repeats, scaled to 10 KB (10,240 characters).

    uv run python benchmarks/bench_faithful.py [--quick]

Target: under 1 ms per 10 KB chunk. Writes benchmarks/results/faithful.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, machine_note, md_table, write_results

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faithful_support import (
    FILLER_WORDS,
    FIXTURES,
    change_list_markers,
    loop_candidates,
    reflow_paragraphs,
    relevel_headings,
    rename,
    repetition_loop,
    replace_half,
    span_identifiers,
)

from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts
from crawl4ai_llm_docs.llm.faithfulness.judge import FaithfulSettings, judge
from crawl4ai_llm_docs.markdown.chunking import split_text

TEN_KB = 10_240
TARGET_MS = 1.0
SETTINGS = FaithfulSettings()


def chunks_of_10kb() -> list[str]:
    """Every fixture page, joined, cut into chunks of about 10 KB at the pipeline's cuts."""
    text = "\n\n".join(path.read_text(encoding="utf-8") for path in sorted(FIXTURES.glob("*.md")))
    pieces = [piece for piece, _ in split_text(text, max_tokens=2_700)]
    return [piece for piece in pieces if len(piece) >= 6_000]


def answers(chunk: str) -> dict[str, str]:
    rewrite = change_list_markers(reflow_paragraphs(relevel_headings(chunk, 1), 72), "-", False)
    looped = loop_candidates(chunk)
    names = span_identifiers(chunk)[:2]
    found = {
        "the chunk itself": chunk,
        "harmless rewrite": rewrite,
        "half replaced by filler": replace_half(chunk, 0.5, FILLER_WORDS),
    }
    if looped:
        found["repetition loop"] = repetition_loop(
            chunk, looped[0], 12, numbered=True, at_end=False
        )
    if names:
        found["identifiers renamed"] = rename(chunk, names, "_v2")
    return found


def best_ms(work: Callable[[], object], number: int, repeat: int) -> float:
    times = timeit.repeat(work, number=number, repeat=repeat, timer=time.process_time)
    return min(times) / number * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    number = 20 if args.quick else 200
    before = machine()
    chunks = chunks_of_10kb()
    rows: list[dict[str, Any]] = []
    for index, chunk in enumerate(chunks):
        facts = MarkdownFacts.of(chunk)
        for kind, answer in answers(chunk).items():
            verdict = judge(chunk, answer, SETTINGS)
            full = best_ms(lambda c=chunk, a=answer: judge(c, a, SETTINGS), number, 7)
            parsed = best_ms(lambda f=facts, a=answer: judge(f, a, SETTINGS), number, 7)
            scale = TEN_KB / len(chunk)
            rows.append(
                {
                    "chunk": index,
                    "characters": len(chunk),
                    "answer": kind,
                    "verdict": "pass"
                    if verdict.ok
                    else ",".join(p.check for p in verdict.problems),
                    "ms": round(full, 3),
                    "ms_per_10kb": round(full * scale, 3),
                    "ms_per_10kb_chunk_parsed": round(parsed * scale, 3),
                }
            )
    after = machine()
    worst = max(row["ms_per_10kb"] for row in rows)
    typical = sorted(row["ms_per_10kb"] for row in rows)[len(rows) // 2]
    met = "met" if worst < TARGET_MS else "NOT met"
    by_kind: dict[str, list[float]] = {}
    for row in rows:
        by_kind.setdefault(row["answer"], []).append(row["ms_per_10kb"])
    table = md_table(
        ["answer", "verdict (chunk 0)", "ms per 10 KB (median of chunks)", "worst"],
        [
            [
                kind,
                next(r["verdict"] for r in rows if r["answer"] == kind),
                sorted(values)[len(values) // 2],
                max(values),
            ]
            for kind, values in by_kind.items()
        ],
    )
    markdown = "\n\n".join(
        [
            "# Faithfulness check: cost per 10 KB chunk",
            f"Machine: {machine_note(before, after)}",
            f"{len(chunks)} chunks of {min(len(c) for c in chunks):,}-"
            f"{max(len(c) for c in chunks):,} characters cut from the fixture pages; "
            f"CPU time (process_time), best of 7 x {number} calls, scaled to 10,240 characters.",
            table,
            f"Median {typical:.3f} ms, worst {worst:.3f} ms per 10 KB chunk, both texts parsed "
            f"(target < {TARGET_MS:g} ms: {met}). With the chunk parsed once already (a "
            "retry's answer): median "
            f"{sorted(r['ms_per_10kb_chunk_parsed'] for r in rows)[len(rows) // 2]:.3f} ms.",
        ]
    )
    write_results(
        "faithful",
        {"machine_before": before, "machine_after": after, "target_ms": TARGET_MS, "rows": rows},
        markdown,
    )


if __name__ == "__main__":
    main()
