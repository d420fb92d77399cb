"""The docs index a run keeps (``search/update.py``, ``search/database.py``), read back with
plain SQL and through ``search/reader.py``.

A refresh rewrites only the pages whose text changed (their section rows, compared by id and
text before and after); pages leave a set only when no source of the set lists them any
more; a failed or interrupted update leaves the previous index whole, also after ``kill -9``
mid-transaction (a real subprocess killing itself); the file is private; the JSONL has the
same sections; a foreign file or another schema version is refused by name.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.search.database import IndexFileError
from crawl4ai_llm_docs.search.reader import open_docs_index
from crawl4ai_llm_docs.search.sections import split_sections
from crawl4ai_llm_docs.search.update import IndexRequest, IndexStats, _Writer, write_index

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TOPICS = ["parsing", "sockets", "threads", "archives", "logging", "timers", "paths", "codecs"]


def page(number: int, *, revision: int = 0, failed: bool = False) -> Document:
    topic = TOPICS[number % len(TOPICS)]
    markdown = (
        f"# Page {number}: {topic}\n\nThis page {number} explains {topic} in depth.\n\n"
        f"## Using {topic}\n\nCall `{topic}.open()` to start with {topic}; revision {revision}.\n\n"
        f"## Errors of {topic}\n\nA {topic}Error is raised when {topic} fails.\n"
    )
    return Document(
        index=number,
        url=f"https://docs.example.org/guide/page-{number:03d}.html",
        title=f"Page {number}: {topic}",
        markdown="" if failed else markdown,
        error="HTTP 500" if failed else None,
        fetched_at=f"2026-12-0{1 + revision}T10:00:00Z",
    )


def update(
    index: Path,
    documents: Iterable[Document],
    *,
    source: str = "file:/urls.txt",
    urls: list[str] | None = None,
    complete: bool = True,
    docs_set: str = "guide",
    jsonl: Path | None = None,
) -> IndexStats:
    if urls is None:
        documents = list(documents)
        urls = [d.url for d in documents]
    request = IndexRequest(
        path=index,
        chunks_jsonl=jsonl,
        docs_set=docs_set,
        source=source,
        urls=urls,
        complete=complete,
    )
    _, stats = write_index(
        documents,
        request,
        site_name="Guide",
        title_of=lambda d: d.title,
        describe=lambda d, title: title,
        generated_at=NOW,
    )
    return stats


def section_rows(index: Path) -> dict[str, set[tuple[int, str]]]:
    """url -> {(section row id, text)}: what changed, independently of the code under test."""
    with sqlite3.connect(index) as db:
        rows = db.execute(
            "SELECT p.url, s.id, s.text FROM sections s JOIN pages p ON p.id = s.page_id"
        ).fetchall()
    found: dict[str, set[tuple[int, str]]] = {}
    for url, row, text in rows:
        found.setdefault(url, set()).add((row, text))
    return found


def fts_matches(index: Path, word: str) -> set[str]:
    with sqlite3.connect(index) as db:
        rows = db.execute(
            "SELECT DISTINCT p.url FROM sections_fts f JOIN sections s ON s.id = f.rowid "
            "JOIN pages p ON p.id = s.page_id WHERE sections_fts MATCH ?",
            (f'"{word}"',),
        ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Path]:
    return tmp_path / "data" / "docs-index.sqlite"


def test_a_refresh_rewrites_only_the_pages_that_changed(index: Path) -> None:
    first = [page(n) for n in range(20)]
    assert update(index, first).new_pages == 20
    before = section_rows(index)
    changed = {2, 7, 15}
    second = [page(n, revision=1 if n in changed else 0) for n in range(20)]
    stats = update(index, second)
    after = section_rows(index)
    assert (stats.new_pages, stats.changed_pages, stats.unchanged_pages) == (0, 3, 17)
    assert stats.sections == sum(len(split_sections(page(n).markdown)) for n in changed)
    moved = {url for url in after if after[url] != before[url]}
    assert moved == {page(n).url for n in changed}
    # The full-text index follows: the new text is found, and only there.
    with sqlite3.connect(index) as db:
        revised = db.execute(
            "SELECT count(*) FROM sections_fts WHERE sections_fts MATCH '\"revision 1\"'"
        ).fetchone()[0]
        (check,) = db.execute("PRAGMA integrity_check").fetchone()
        db.execute("INSERT INTO sections_fts(sections_fts) VALUES ('integrity-check')")
        db.execute("INSERT INTO pages_fts(pages_fts) VALUES ('integrity-check')")
    assert revised == len(changed)
    assert check == "ok"


def test_crawl_times_move_on_for_unchanged_pages_without_rewriting_them(index: Path) -> None:
    update(index, [page(0)])
    before = section_rows(index)
    unchanged = msgspec.structs.replace(page(0), fetched_at="2026-12-09T10:00:00Z")
    assert update(index, [unchanged]).unchanged_pages == 1
    assert section_rows(index) == before
    docs = open_docs_index(index)
    try:
        fetched = docs.fetch(page(0).url)
    finally:
        docs.close()
    assert fetched is not None
    assert fetched.crawled_at == "2026-12-09T10:00:00Z"


def test_pages_leave_a_set_only_when_no_source_lists_them(index: Path) -> None:
    a = [page(n) for n in range(0, 4)]
    b = [page(n) for n in range(3, 6)]  # page 3 is in both URL files
    update(index, a, source="file:/a.txt")
    update(index, b, source="file:/b.txt")
    assert set(section_rows(index)) == {page(n).url for n in range(6)}
    # a.txt now lists 0 and 1 only: 2 leaves; 3 stays, b.txt still lists it.
    stats = update(index, [page(0), page(1)], source="file:/a.txt")
    assert stats.removed_pages == 1
    assert set(section_rows(index)) == {page(n).url for n in (0, 1, 3, 4, 5)}
    assert fts_matches(index, "archives") == {page(3).url}  # page 3: archives; page 11 absent


def test_an_interrupted_run_removes_nothing_and_failed_pages_keep_their_sections(
    index: Path,
) -> None:
    update(index, [page(n) for n in range(4)])
    before = section_rows(index)
    # Interrupted after page 0: the rest are not in this run's documents.
    assert update(index, [page(0)], complete=False).removed_pages == 0
    assert section_rows(index) == before
    # Complete, but page 1 failed this time: it is still listed, so it keeps what it had.
    urls = [page(n).url for n in range(4)]
    stats = update(index, [page(0), page(1, failed=True), page(2), page(3)], urls=urls)
    assert stats.removed_pages == 0
    assert section_rows(index) == before


def _fts_rows(index: Path) -> int:
    with sqlite3.connect(index) as db:
        return int(db.execute("SELECT count(*) FROM sections_fts_data").fetchone()[0])


def test_merging_the_fts_segments_changes_no_search_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [
        [page(n) for n in range(60)],  # a first build: merged into one segment
        [page(n, revision=1 if n % 15 == 0 else 0) for n in range(60)],  # small ones merged
        [page(n, revision=2 if n % 20 == 1 else 0) for n in range(60)],
    ]
    merged, plain = tmp_path / "merged.sqlite", tmp_path / "plain.sqlite"
    for documents in runs:
        update(merged, documents)
    monkeypatch.setattr(_Writer, "compact", lambda self: None)
    for documents in runs:
        update(plain, documents)
    assert _fts_rows(merged) < _fts_rows(plain)  # fewer segments
    with sqlite3.connect(merged) as db:
        db.execute("INSERT INTO sections_fts(sections_fts) VALUES ('integrity-check')")
        db.execute("INSERT INTO pages_fts(pages_fts) VALUES ('integrity-check')")
    first, second = open_docs_index(merged), open_docs_index(plain)
    try:
        for text in ["sockets", "revision 1", "threads errors", "page 42", "open", "revis"]:
            assert first.search(text, limit=10) == second.search(text, limit=10)
    finally:
        first.close()
        second.close()


def test_docs_sets_are_separate(index: Path) -> None:
    update(index, [page(0), page(1)], docs_set="lib-1.0")
    update(index, [page(0, revision=1)], docs_set="lib-2.0")
    docs = open_docs_index(index)
    try:
        assert [(s.name, s.pages) for s in docs.docs_sets()] == [("lib-1.0", 2), ("lib-2.0", 1)]
        hits = docs.search("revision", docs_sets=["lib-1.0"]).results
        assert {hit.docs_set for hit in hits} == {"lib-1.0"}
        with pytest.raises(Exception, match="nope"):
            docs.search("x", docs_sets=["nope"])
    finally:
        docs.close()


def test_a_failed_update_leaves_the_previous_index_whole(index: Path) -> None:
    update(index, [page(n) for n in range(5)])
    before = section_rows(index)

    def documents() -> Iterator[Document]:
        yield page(0, revision=1)
        yield page(1, revision=1)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        update(index, documents(), urls=[])
    assert section_rows(index) == before


def test_kill_9_mid_update_leaves_the_previous_index_whole(index: Path, tmp_path: Path) -> None:
    update(index, [page(n) for n in range(8)])
    before = section_rows(index)
    # A real process that starts an update and SIGKILLs itself half-way through it.
    script = tmp_path / "killed.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_search_index import page, update
            def documents():
                for n in range(8):
                    yield page(n, revision=2)
                    if n == 5:
                        os.kill(os.getpid(), signal.SIGKILL)
            urls = [page(n).url for n in range(8)]
            update(__import__("pathlib").Path({str(index)!r}), documents(), urls=urls)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    assert section_rows(index) == before
    with sqlite3.connect(index) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert update(index, [page(n, revision=2) for n in range(8)]).changed_pages == 8


def test_the_index_file_is_private_and_its_jsonl_has_the_same_sections(
    index: Path, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    try:
        jsonl = tmp_path / "out" / "chunks.jsonl"
        update(index, [page(0), page(1, failed=True), page(2)], jsonl=jsonl)
    finally:
        os.umask(old)
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    assert stat.S_IMODE(index.parent.stat().st_mode) == 0o700
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert set(lines[0]) == {
        "id", "set", "url", "title", "heading_path", "tokens", "text", "crawled_at",
    }  # fmt: skip
    assert [line["url"] for line in lines] == sorted([page(0).url] * 3 + [page(2).url] * 3)
    with sqlite3.connect(index) as db:
        texts = [row[0] for row in db.execute("SELECT text FROM sections ORDER BY id")]
    assert [line["text"] for line in lines] == texts
    assert lines[1]["heading_path"] == "Page 0: parsing > Using parsing"
    assert lines[1]["id"] == "guide/docs.example.org/guide/page-000.html#using-parsing"


def test_a_foreign_file_or_another_schema_is_refused_by_name(tmp_path: Path) -> None:
    foreign = tmp_path / "notes.sqlite"
    foreign.write_text("my notes, not an index\n")
    with pytest.raises(IndexFileError, match="not a SQLite database"):
        update(foreign, [page(0)])
    assert foreign.read_text() == "my notes, not an index\n"
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t(x)")
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(IndexFileError, match="schema version 7"):
        update(other, [page(0)])
    with pytest.raises(InputError, match="cannot be read: schema version 7"):
        open_docs_index(other)
    with pytest.raises(InputError, match=r"No docs index at .* yet"):
        open_docs_index(tmp_path / "missing.sqlite")


def test_a_reader_sees_what_a_later_run_committed(index: Path) -> None:
    """``serve`` keeps its connections open across runs: word counts it cached for ranking
    are dropped when another connection commits, and new pages are found."""
    update(index, [page(n) for n in range(8)])
    docs = open_docs_index(index)
    try:
        assert {hit.url for hit in docs.search("archives").results} == {page(3).url}
        update(index, [page(n) for n in range(12)])  # pages 8-11 new; 11 is about archives
        assert {hit.url for hit in docs.search("archives").results} == {page(3).url, page(11).url}
    finally:
        docs.close()
