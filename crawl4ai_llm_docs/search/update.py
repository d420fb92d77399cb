"""Bring the docs index up to date with a run's documents, and write ``--chunks-jsonl``.

One transaction per run: a page whose title and text hash like the indexed copy only has its
crawl times moved on; a new or changed page gets its sections (re)written; and once the run
has seen its whole list, pages that no source of the set lists any more leave the set (a
page is listed by the sources, URL files or root URLs, whose runs had it: two URL files
indexed into one set do not remove each other's pages). Failed pages keep what the index
had. A run killed mid-way leaves the previous index whole (SQLite's own atomic commit).
Blocking I/O: run it from a worker thread.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import msgspec
import structlog

from crawl4ai_llm_docs.files import atomic_text
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.search.database import IndexFileError, open_for_writing
from crawl4ai_llm_docs.search.names import docs_set_slug, page_path, section_id, url_words
from crawl4ai_llm_docs.search.sections import PATH_SEPARATOR, Section, split_sections

log = structlog.get_logger()

# FTS5 segments (see ``_Writer.compact``): a write that (re)wrote at least this share of the
# index's pages merges each FTS index into one; a smaller one merges up to this many pages.
COMPACT_SHARE = 0.2
MERGE_PAGES = 256


class IndexRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a run asks of the index (``output.index*``, ``--docs-set``, ``--chunks-jsonl``)."""

    path: Path | None  # the SQLite index; None: not kept (--no-index)
    chunks_jsonl: Path | None = None
    docs_set: str = ""  # "" = from the site's name
    source: str  # what the run read its URLs from: the URL file, or the root URLs
    urls: Sequence[str] = ()  # every URL of the run, failed ones included
    complete: bool = True  # the run saw its whole list: pages no longer on it leave the set


class IndexStats(msgspec.Struct, kw_only=True):
    docs_set: str
    new_pages: int = 0
    changed_pages: int = 0
    unchanged_pages: int = 0
    removed_pages: int = 0
    sections: int = 0  # sections written (of new and changed pages)


class _ChunkLine(msgspec.Struct, kw_only=True):
    id: str
    set: str
    url: str
    title: str
    heading_path: str
    tokens: int
    text: str
    crawled_at: str


def source_key(urls_file: Path | None, roots: Sequence[str]) -> str:
    """The source a run's pages are listed by: ``roots:`` and its root URLs, or the URL file."""
    if roots:
        return "roots:" + " ".join(sorted(roots))
    return f"file:{urls_file.resolve() if urls_file else ''}"


def content_hash(title: str, markdown: str) -> str:
    data = f"{title}\0{markdown}".encode("utf-8", errors="surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Writer:
    """The statements of one update, in the caller's transaction."""

    def __init__(self, connection: sqlite3.Connection, docs_set: str, now: str) -> None:
        self.db = connection
        self.docs_set = docs_set
        self.now = now
        self.stats = IndexStats(docs_set=docs_set)

    def known(self, url: str) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT id, content_hash FROM pages WHERE docs_set = ? AND url = ?",
            (self.docs_set, url),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def touch(self, page: int, crawled_at: str, changed_at: str) -> None:
        self.db.execute(
            "UPDATE pages SET crawled_at = ?, changed_at = ? WHERE id = ?",
            (crawled_at, changed_at, page),
        )
        self.stats.unchanged_pages += 1

    def _free_path(self, url: str) -> str:
        path = page_path(url)
        row = self.db.execute(
            "SELECT url FROM pages WHERE docs_set = ? AND path = ?", (self.docs_set, path)
        ).fetchone()
        if row is None or row[0] == url:
            return path
        return f"{path}~{hashlib.sha1(url.encode()).hexdigest()[:8]}"  # http vs https of one page

    def write(
        self,
        known: int | None,
        *,
        url: str,
        title: str,
        description: str,
        digest: str,
        crawled_at: str,
        changed_at: str,
        sections: Sequence[Section],
    ) -> None:
        tokens = sum(section.tokens for section in sections)
        if known is None:
            cursor = self.db.execute(
                "INSERT INTO pages(docs_set, url, path, title, description, url_words, "
                "content_hash, crawled_at, changed_at, indexed_at, tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.docs_set, url, self._free_path(url), title, description, url_words(url),
                 digest, crawled_at, changed_at, self.now, tokens),
            )  # fmt: skip
            page = int(cursor.lastrowid or 0)
            self.stats.new_pages += 1
        else:
            page = known
            self.db.execute("DELETE FROM sections WHERE page_id = ?", (page,))
            self.db.execute(
                "UPDATE pages SET title = ?, description = ?, content_hash = ?, crawled_at = ?, "
                "changed_at = ?, indexed_at = ?, tokens = ? WHERE id = ?",
                (title, description, digest, crawled_at, changed_at, self.now, tokens, page),
            )
            self.stats.changed_pages += 1
        self.db.executemany(
            "INSERT INTO sections(page_id, position, anchor, headings, body, text, tokens, "
            "link_share) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (page, position, s.anchor, PATH_SEPARATOR.join(s.headings), s.body, s.text,
                 s.tokens, round(s.link_share, 3))
                for position, s in enumerate(sections)
            ],
        )  # fmt: skip
        self.stats.sections += len(sections)

    def list_source(self, source: str, urls: Iterable[str], *, complete: bool) -> None:
        """Record that ``source`` lists ``urls``; a complete run also unlists the rest."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS run_urls(url TEXT PRIMARY KEY)")
        self.db.execute("DELETE FROM run_urls")
        self.db.executemany("INSERT OR IGNORE INTO run_urls VALUES (?)", ((u,) for u in urls))
        self.db.execute(
            "INSERT OR IGNORE INTO sources(docs_set, source, url) SELECT ?, ?, url FROM run_urls",
            (self.docs_set, source),
        )
        if complete:
            self.db.execute(
                "DELETE FROM sources WHERE docs_set = ? AND source = ? "
                "AND url NOT IN (SELECT url FROM run_urls)",
                (self.docs_set, source),
            )
        self.db.execute("DROP TABLE run_urls")

    def remove_unlisted(self) -> None:
        """Pages of the set that no source lists any more leave it."""
        gone = self.db.execute(
            "SELECT id FROM pages WHERE docs_set = ? AND NOT EXISTS (SELECT 1 FROM sources "
            "WHERE sources.docs_set = pages.docs_set AND sources.url = pages.url)",
            (self.docs_set,),
        ).fetchall()
        for (page,) in gone:
            self.db.execute("DELETE FROM sections WHERE page_id = ?", (page,))
            self.db.execute("DELETE FROM pages WHERE id = ?", (page,))
        self.stats.removed_pages = len(gone)

    def compact(self) -> None:
        """Fewer FTS5 segments, so that a search walks fewer of them. A write leaves its
        terms in new segments (a refresh many small ones: each page's sections are deleted
        and rewritten); FTS5's automerge folds them in only little by little, and every
        search looks each of its words up in every segment. A large write (a first build)
        merges all into one (~1 s for 10,000 pages); a smaller one merges the small
        segments (bounded work, milliseconds). What a search finds and how it scores
        is the same either way."""
        written = self.stats.new_pages + self.stats.changed_pages + self.stats.removed_pages
        if not written:
            return
        pages = int(self.db.execute("SELECT count(*) FROM pages").fetchone()[0])
        for table in ("sections_fts", "pages_fts"):
            if written >= COMPACT_SHARE * pages:
                self.db.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
            else:
                self.db.execute(
                    f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)", (MERGE_PAGES,)
                )


def _write_chunks(
    out: IO[str], encoder: msgspec.json.Encoder, docs_set: str, document: Document,
    title: str, crawled_at: str, sections: Sequence[Section],
) -> None:  # fmt: skip
    path = page_path(document.url)
    for section in sections:
        line = _ChunkLine(
            id=section_id(docs_set, path, section.anchor),
            set=docs_set,
            url=document.url,
            title=title,
            heading_path=section.heading_path(title),
            tokens=section.tokens,
            text=section.text,
            crawled_at=crawled_at,
        )
        out.write(encoder.encode(line).decode() + "\n")


def write_index(
    documents: Iterable[Document],
    request: IndexRequest,
    *,
    site_name: str,
    title_of: Callable[[Document], str],
    describe: Callable[[Document, str], str],
    generated_at: datetime,
) -> tuple[list[str], IndexStats]:
    """Update the index and write the JSONL; returns the files written and what changed."""
    docs_set = request.docs_set or docs_set_slug(site_name)
    try:
        stats = _write(documents, request, docs_set, title_of, describe, generated_at)
    except sqlite3.Error as exc:  # disk full, I/O error: the transaction is rolled back
        assert request.path is not None
        raise IndexFileError(request.path, f"cannot be written ({exc})") from exc
    written = [str(path) for path in (request.path, request.chunks_jsonl) if path is not None]
    if request.path is not None:
        log.info(
            "index_updated",
            path=str(request.path),
            docs_set=docs_set,
            new_pages=stats.new_pages,
            changed_pages=stats.changed_pages,
            unchanged_pages=stats.unchanged_pages,
            removed_pages=stats.removed_pages,
            sections=stats.sections,
        )
    return written, stats


def _write(
    documents: Iterable[Document],
    request: IndexRequest,
    docs_set: str,
    title_of: Callable[[Document], str],
    describe: Callable[[Document, str], str],
    generated_at: datetime,
) -> IndexStats:
    crawled_default = generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    encoder = msgspec.json.Encoder()
    with ExitStack() as stack:
        chunks: IO[str] | None = None
        if request.chunks_jsonl is not None:  # renamed into place only once all is written
            chunks = stack.enter_context(atomic_text(request.chunks_jsonl))
        writer: _Writer | None = None
        if request.path is not None:
            connection = stack.enter_context(open_for_writing(request.path))
            stack.enter_context(_transaction(connection))
            writer = _Writer(connection, docs_set, _now())
        for document in documents:
            if not document.ok:
                continue  # a failed page keeps what the index had
            title = title_of(document)
            crawled_at = document.fetched_at or crawled_default
            changed_at = document.changed_at or crawled_at
            digest = content_hash(title, document.markdown)
            known = writer.known(document.url) if writer is not None else None
            unchanged = known is not None and known[1] == digest
            if writer is not None and known is not None and unchanged:
                writer.touch(known[0], crawled_at, changed_at)
                if chunks is None:
                    continue  # nothing else to do: its sections stay as they are
            sections = split_sections(document.markdown, title=title)
            if writer is not None and not unchanged:
                writer.write(
                    known[0] if known else None, url=document.url, title=title,
                    description=describe(document, title), digest=digest,
                    crawled_at=crawled_at, changed_at=changed_at, sections=sections,
                )  # fmt: skip
            if chunks is not None:
                _write_chunks(chunks, encoder, docs_set, document, title, crawled_at, sections)
        if writer is None:
            return IndexStats(docs_set=docs_set)
        writer.list_source(request.source, request.urls, complete=request.complete)
        if request.complete:
            writer.remove_unlisted()
        writer.compact()
        return writer.stats


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; any error rolls back, so the previous index stays whole."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full)
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
