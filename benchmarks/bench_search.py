"""The docs index: how fast it is built, how big it is, how fast and how well it answers.

1. A generated docs set of ``--pages`` pages (10,000; Zipf-distributed vocabulary, headings,
   code, identifiers): index build time per page and database size per page (through the
   same ``write_index`` a run calls), a refresh with 1 % of the pages changed, and search
   latency p50/p95 of 300 queries drawn from the pages' own words (the full search path:
   ranking, result rows, excerpts within a 2,000-token budget).
2. A real docs set: Debian's python3.11-doc (tutorial/, howto/, library/) served on loopback
   and crawled by the real CLI with ``--no-llm``; the same figures, and retrieval quality
   on ``benchmarks/search/python311_queries.json`` (40 questions written before any ranking
   code, see QUERIES.md): recall@1 and recall@5 (a query counts when one of its expected
   pages is the first result, or among the first five), with and without the thesaurus.
3. A held-out set: the Rust book (Debian rust-doc), with 30 questions in
   ``benchmarks/search/rust_book_queries.json`` written after the ranking was done by someone
   who never saw it: recall@1 and recall@5, to show whether the ranking generalises.
4. ``serve`` memory: the real command over stdio, driven by the MCP SDK's client, over the
   generated set at 1/10 and at full size: every resource listed (cursor after cursor), 100
   searches, 50 fetches; the server's peak RSS at each size.

    uv run python benchmarks/bench_search.py [--quick] [--pages N] [--no-real]

Writes benchmarks/results/search.json and benchmarks/results/search.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psutil
import trio
from common import code_version, machine, machine_note, md_table, progress, write_results
from search_corpus import Generator, generated

from crawl4ai_llm_docs.cache.page_state import PageState
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.descriptions import describe
from crawl4ai_llm_docs.outputs.llms_txt import page_title
from crawl4ai_llm_docs.outputs.site_structure import survey
from crawl4ai_llm_docs.search import thesaurus
from crawl4ai_llm_docs.search.reader import DocsIndex
from crawl4ai_llm_docs.search.update import IndexRequest, IndexStats, write_index
from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

DOCS = Path("/usr/share/doc/python3.11/html")
REAL_SECTIONS = ("tutorial", "howto", "library")
QUERIES = Path(__file__).resolve().parent / "search" / "python311_queries.json"
HELDOUT_DOCS = Path("/usr/share/doc/rust-doc/html/book")
HELDOUT = Path(__file__).resolve().parent / "search" / "rust_book_queries.json"
SEARCH_BUDGET = 2000  # tokens of section text per answer, as search_docs' default
GENERATED_QUERIES = 300
NOW = datetime(2026, 12, 7, tzinfo=UTC)


# ---------------------------------------------------------------- a generated docs set


def _build(
    path: Path, documents: list[Document], source: str = "bench"
) -> tuple[float, IndexStats]:
    started = time.perf_counter()
    _, stats = write_index(
        documents,
        IndexRequest(path=path, docs_set="bench", source=source, urls=[d.url for d in documents]),
        site_name="Bench",
        title_of=lambda d: d.title,
        describe=lambda d, title: describe(d, title=title),
        generated_at=NOW,
    )
    return time.perf_counter() - started, stats


def _queries_from(documents: list[Document], count: int, seed: int = 11) -> list[str]:
    """Queries as a user might type them: 2-5 words of one page, rarer and common mixed."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        words = rng.choice(documents).markdown.replace("#", " ").split()
        picked = rng.sample(words, k=min(len(words), rng.randint(2, 5)))
        queries.append(" ".join(word.strip(".,`()=") for word in picked))
    return queries


def _latencies(index: DocsIndex, queries: list[str]) -> dict[str, float]:
    index.search("warm up", max_tokens=SEARCH_BUDGET)
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.search(query, limit=5, max_tokens=SEARCH_BUDGET)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "queries": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
        "max_ms": round(timings[-1], 2),
    }


def _size_figures(path: Path, pages: int, seconds: float, stats: IndexStats) -> dict[str, Any]:
    size = path.stat().st_size
    return {
        "pages": pages,
        "sections": stats.sections,
        "build_s": round(seconds, 2),
        "build_ms_per_page": round(seconds / pages * 1000, 2),
        "db_bytes": size,
        "db_kb_per_page": round(size / pages / 1024, 1),
    }


def generated_set(workdir: Path, pages: int) -> dict[str, Any]:
    progress(f"generating {pages} pages")
    documents = generated(pages)
    path = workdir / "generated.sqlite"
    progress("building the index")
    seconds, stats = _build(path, documents)
    figures = _size_figures(path, pages, seconds, stats)
    changed = random.Random(3).sample(range(pages), k=max(1, pages // 100))
    generator = Generator(seed=99)
    revised = list(documents)
    for number in changed:
        revised[number] = msgspec.structs.replace(
            documents[number],
            markdown=documents[number].markdown + "\n\n" + generator.sentence(20, 40),
        )
    progress(f"refresh: {len(changed)} pages changed")
    refresh_s, refresh = _build(path, revised)
    figures["refresh"] = {
        "changed_pages": refresh.changed_pages,
        "unchanged_pages": refresh.unchanged_pages,
        "seconds": round(refresh_s, 2),
        "vs_full_build": round(refresh_s / seconds, 3),
    }
    index = DocsIndex(path)
    try:
        progress("searching")
        figures["latency"] = _latencies(index, _queries_from(documents, GENERATED_QUERIES))
    finally:
        index.close()
    return figures


# ---------------------------------------------------------------- the real docs set


def _crawl_real(
    workdir: Path, docs: Path = DOCS, paths: list[str] | None = None, name: str = "python"
) -> tuple[Path, list[str], float]:
    if paths is None:
        paths = sorted(
            f"/{path.relative_to(docs).as_posix()}"
            for section in REAL_SECTIONS
            for path in (docs / section).glob("*.html")
        )
    workdir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CRAWL4AI_LLM_DOCS_", "OPENAI_"))
    }
    env.update(
        XDG_CACHE_HOME=str(workdir / "cache"),
        XDG_CONFIG_HOME=str(workdir / "config"),
        XDG_DATA_HOME=str(workdir / "data"),
        CRAWL4AI_NO_CLOUD_NOTICE="1",
    )
    with run_site_in_thread(SiteConfig(directory=str(docs))) as site:
        urls = [site.url(path) for path in paths]
        urls_file = workdir / f"{name}.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        command = [sys.executable, "-m", "crawl4ai_llm_docs", str(urls_file), "--no-llm"]
        command += ["-o", str(workdir / f"{name}.md"), "--crawler", "http", "--no-progress"]
        progress(f"crawling {len(urls)} pages of {docs} with the real CLI (--no-llm)")
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1800
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the crawl failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return workdir / "cache" / "crawl4ai-llm-docs", urls, wall


def _documents_from_cache(cache: Path, urls: list[str]) -> list[Document]:
    """The crawled pages as the run's documents (``--no-llm``: the crawled Markdown)."""
    decoder = msgspec.json.Decoder(PageState)
    states = {}
    for file in (cache / "pages").glob("*/*.json"):
        state = decoder.decode(file.read_bytes())
        states[state.url] = state
    return [
        Document(
            index=number,
            url=url,
            title=states[url].title,
            markdown=states[url].markdown,
            fetched_at=states[url].fetched_at,
            changed_at=states[url].changed_at,
            site_name=states[url].site_name,
            meta_description=states[url].meta_description,
        )
        for number, url in enumerate(urls)
        if url in states
    ]


def _recall(index: DocsIndex, queries: list[dict[str, Any]]) -> dict[str, Any]:
    first = five = 0
    misses = []
    for entry in queries:
        results = index.search(entry["query"], limit=5, max_tokens=SEARCH_BUDGET).results
        found = [hit.url.split("/", 3)[3] for hit in results]
        expected = set(entry["expected"])
        first += bool(found[:1] and found[0] in expected)
        five += bool(expected & set(found))
        if not expected & set(found[:1]):
            rank = next((n + 1 for n, url in enumerate(found) if url in expected), None)
            misses.append(
                {
                    "query": entry["query"],
                    "expected": entry["expected"],
                    "rank": rank,
                    "got": found[:3],
                }
            )
    return {
        "queries": len(queries),
        "recall_at_1": round(first / len(queries), 3),
        "recall_at_5": round(five / len(queries), 3),
        "not_first": misses,
    }


def real_set(workdir: Path) -> dict[str, Any]:
    cache, urls, crawl_wall = _crawl_real(workdir)
    documents = _documents_from_cache(cache, urls)
    site = survey(documents)
    path = workdir / "python.sqlite"
    started = time.perf_counter()
    _, stats = write_index(
        documents,
        IndexRequest(path=path, source="bench", urls=urls),
        site_name=site.name,
        title_of=lambda d: page_title(d, site),
        describe=lambda d, title: describe(d, title=title),
        generated_at=NOW,
    )
    seconds = time.perf_counter() - started
    figures = _size_figures(path, len(documents), seconds, stats)
    figures["docs_set"] = stats.docs_set
    figures["crawl_and_index_wall_s"] = round(crawl_wall, 1)
    queries = json.loads(QUERIES.read_text())
    index = DocsIndex(path)
    try:
        figures["latency"] = _latencies(index, [entry["query"] for entry in queries] * 3)
        figures["retrieval"] = _recall(index, queries)
        saved = thesaurus.ALTERNATIVES
        thesaurus.ALTERNATIVES = {}  # the same ranking without the thesaurus, for comparison
        try:
            figures["retrieval_without_thesaurus"] = _recall(index, queries)
        finally:
            thesaurus.ALTERNATIVES = saved
    finally:
        index.close()
    return figures


def heldout_set(workdir: Path) -> dict[str, Any]:
    """Recall on a second set the ranking was never tuned on: the Rust book (Debian rust-doc)
    and 30 questions written for it after the ranking was done, by someone who never saw it."""
    paths = sorted(
        f"/{page.name}"
        for page in HELDOUT_DOCS.glob("*.html")
        if page.name.startswith(("ch", "appendix-0")) and page.name != "appendix-00.html"
    )
    cache, urls, _ = _crawl_real(workdir, HELDOUT_DOCS, paths, "rust-book")
    documents = _documents_from_cache(cache, urls)
    site = survey(documents)
    path = workdir / "rust-book.sqlite"
    write_index(
        documents,
        IndexRequest(path=path, source="bench", urls=urls),
        site_name=site.name,
        title_of=lambda d: page_title(d, site),
        describe=lambda d, title: describe(d, title=title),
        generated_at=NOW,
    )
    index = DocsIndex(path)
    try:
        return {"pages": len(documents), **_recall(index, json.loads(HELDOUT.read_text()))}
    finally:
        index.close()


# ---------------------------------------------------------------- serve's memory


async def _serve_session(path: Path, queries: list[str], fetch_ids: list[str]) -> dict[str, Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp import types as mcp_types
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "crawl4ai_llm_docs", "serve", "--index", str(path)]
    )
    peak = 0
    resources = 0
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        server = _server_process(path)

        def sample() -> None:
            nonlocal peak
            peak = max(peak, server.memory_info().rss)

        cursor: str | None = None
        while True:
            listing = await session.list_resources(
                params=mcp_types.PaginatedRequestParams(cursor=cursor)
            )
            resources += len(listing.resources)
            sample()
            if listing.next_cursor is None:
                break
            cursor = listing.next_cursor
        for query in queries:
            await session.call_tool("search_docs", {"query": query})
            sample()
        for ref in fetch_ids:
            await session.call_tool("fetch_doc", {"url_or_id": ref})
            sample()
    return {"resources_listed": resources, "peak_rss_mb": round(peak / 2**20, 1)}


def _server_process(path: Path) -> psutil.Process:
    me = psutil.Process()
    for child in me.children(recursive=True):
        if "serve" in child.cmdline() and str(path) in child.cmdline():
            return child
    raise RuntimeError("the serve process was not found")


def serve_memory(workdir: Path, pages: int, full_index: Path) -> list[dict[str, Any]]:
    rows = []
    documents = generated(pages)
    queries = _queries_from(documents, 100)
    for size in (max(pages // 10, 1), pages):
        path = full_index
        if size < pages:
            path = workdir / f"serve-{size}.sqlite"
            _build(path, documents[:size])
        fetch_ids = [d.url for d in random.Random(5).sample(documents[:size], k=min(50, size))]
        progress(f"serve over {size} pages")
        figures = trio.run(_serve_session, path, queries, fetch_ids)
        rows.append({"pages": size, **figures})
    return rows


# ---------------------------------------------------------------- report


def _markdown(data: dict[str, Any]) -> str:
    gen = data["generated"]
    lines = [
        "# Docs index and search",
        "",
        f"Machine: {data['machine_note']} The machine was shared with other work while this ran.",
        "",
        "## Build, size, latency",
        "",
    ]
    rows = [
        ["generated", gen["pages"], gen["sections"], gen["build_ms_per_page"], gen["db_kb_per_page"],
         gen["latency"]["p50_ms"], gen["latency"]["p95_ms"]],
    ]  # fmt: skip
    real = data.get("real")
    if real:
        rows.append(
            [f"Python 3.11 docs ({real['docs_set']})", real["pages"], real["sections"],
             real["build_ms_per_page"], real["db_kb_per_page"], real["latency"]["p50_ms"],
             real["latency"]["p95_ms"]]
        )  # fmt: skip
    lines.append(
        md_table(
            [
                "docs set",
                "pages",
                "sections",
                "build ms/page",
                "DB KB/page",
                "search p50 ms",
                "search p95 ms",
            ],
            rows,
        )
    )
    refresh = gen["refresh"]
    lines += [
        "",
        f"Refresh of the generated set with {refresh['changed_pages']} pages changed: "
        f"{refresh['seconds']} s, {refresh['vs_full_build']}x the full build "
        f"({refresh['unchanged_pages']} pages unchanged, not re-indexed).",
        "",
        f"Latency: {gen['latency']['queries']} searches through `DocsIndex.search` (ranking, result "
        f"rows and excerpts within {SEARCH_BUDGET} tokens), one at a time, after one warm-up.",
    ]
    if real:
        retrieval, plain = real["retrieval"], real["retrieval_without_thesaurus"]
        lines += [
            "",
            "## Retrieval quality (Python 3.11 docs, 40 questions written before the ranking)",
            "",
            md_table(
                ["ranking", "recall@1", "recall@5"],
                [
                    ["as shipped", retrieval["recall_at_1"], retrieval["recall_at_5"]],
                    ["without the thesaurus", plain["recall_at_1"], plain["recall_at_5"]],
                ],
            ),
            "",
            "Questions whose expected page was not first (rank: where it came, if in the top 5):",
            "",
            md_table(
                ["question", "expected", "rank", "first results"],
                [
                    [m["query"], ", ".join(m["expected"]), m["rank"] or "-", ", ".join(m["got"])]
                    for m in retrieval["not_first"]
                ],
            ),
        ]
    heldout = data.get("heldout")
    if heldout:
        lines += [
            "",
            f"## Held-out retrieval (the Rust book, {heldout['pages']} pages, "
            f"{heldout['queries']} questions written after the ranking was done)",
            "",
            md_table(["recall@1", "recall@5"], [[heldout["recall_at_1"], heldout["recall_at_5"]]]),
            "",
            md_table(
                ["question", "expected", "rank", "first results"],
                [
                    [m["query"], ", ".join(m["expected"]), m["rank"] or "-", ", ".join(m["got"])]
                    for m in heldout["not_first"]
                ],
            ),
        ]
    lines += [
        "",
        "## serve: memory against pages served",
        "",
        md_table(
            ["pages", "resources listed", "peak RSS MB"],
            [[row["pages"], row["resources_listed"], row["peak_rss_mb"]] for row in data["serve"]],
        ),
        "",
        "Every resource listed with the cursor, then 100 `search_docs` and 50 `fetch_doc` calls, "
        "through the MCP SDK's client over stdio; RSS of the `serve` process sampled after each.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 generated pages")
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--no-real", action="store_true", help="skip the Python docs")
    args = parser.parse_args()
    pages = 2_000 if args.quick else args.pages
    before = machine()
    data: dict[str, Any] = {"code": code_version()}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as temp:
        workdir = Path(temp)
        data["generated"] = generated_set(workdir, pages)
        if not args.no_real and (DOCS / "library" / "index.html").is_file():
            data["real"] = real_set(workdir)
        if not args.no_real and HELDOUT_DOCS.is_dir():
            data["heldout"] = heldout_set(workdir)
        data["serve"] = serve_memory(workdir, pages, workdir / "generated.sqlite")
    after = machine()
    data["machine"] = {"before": before, "after": after}
    data["machine_note"] = machine_note(before, after)
    write_results("search", data, _markdown(data))


if __name__ == "__main__":
    main()
