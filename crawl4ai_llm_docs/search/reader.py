"""Reading the docs index: search, whole pages, docs sets, and pages one listing page at a
time. What ``search`` prints and what ``serve`` answers both come from here.

Blocking SQLite calls: ``serve`` runs them in worker threads, each with a connection of its
own from a small pool (a connection is never used by two threads at once). Nothing here
holds more than one answer's rows: listings are keyset-paginated, so memory stays flat in
the number of pages.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgspec

from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.search.database import IndexFileError, open_for_reading
from crawl4ai_llm_docs.search.excerpts import best_excerpt, page_window
from crawl4ai_llm_docs.search.names import (
    RESOURCE_SCHEME,
    page_id,
    page_path,
    resource_uri,
    section_id,
)
from crawl4ai_llm_docs.search.query import parse_query
from crawl4ai_llm_docs.search.ranking import TermCounts, rank_pages
from crawl4ai_llm_docs.search.sections import PATH_SEPARATOR

MIN_SHARE_TOKENS = 48  # a search result's text is never cut below this
POOL_SIZE = 4


class Hit(msgspec.Struct, kw_only=True):
    """One search result: the best section of a page that matched."""

    id: str  # the section: SET/PATH#anchor (fetch_doc takes it)
    page_id: str  # SET/PATH
    docs_set: str
    title: str  # the page's title
    heading_path: str  # "Page title > Section > Subsection"
    url: str  # the page's source URL
    uri: str  # docs://SET/PATH, the page's MCP resource
    crawled_at: str  # when the page was last fetched (ISO 8601, UTC)
    score: float
    tokens: int  # of the whole section
    text: str  # the section, or its part that matched best when over the budget
    truncated: bool
    also: list[str] = msgspec.field(default_factory=list)  # other matching sections' ids


class SearchResult(msgspec.Struct, kw_only=True):
    query: str
    results: list[Hit]
    prefix_fallback: bool = False  # no word matched whole: they were tried as prefixes


class PageText(msgspec.Struct, kw_only=True):
    """A page, or the part of it that fits, and where to continue."""

    id: str
    docs_set: str
    title: str
    url: str
    uri: str
    crawled_at: str
    changed_at: str
    tokens: int  # of the whole page
    text: str
    start_line: int
    end_line: int  # first line not included
    total_lines: int
    next_offset: int | None  # pass as offset to read on; None when the end is included


class DocsSet(msgspec.Struct, kw_only=True):
    name: str
    pages: int
    sections: int
    tokens: int
    last_crawled_at: str
    last_indexed_at: str


class PageEntry(msgspec.Struct, kw_only=True):
    row: int  # the listing's cursor
    id: str
    docs_set: str
    title: str
    url: str
    uri: str
    description: str


class UnknownDocsSet(Exception):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = list(known)


def unknown_set_message(error: UnknownDocsSet, path: Path) -> str:
    holds = ", ".join(error.known) if error.known else "no docs set yet"
    return (
        f"Unknown docs set {error.name!r}: the docs index {path} holds {holds}. "
        "Give one of those to --docs-set, or leave it out to search every set."
    )


def open_docs_index(
    path: Path, *, docs_sets: Sequence[str] = (), pool_size: int = POOL_SIZE
) -> DocsIndex:
    """The index at ``path`` for reading; a missing, foreign or unusable file, or an unknown
    docs set, is an ``InputError`` that says what to do."""
    if not path.is_file():
        raise InputError(
            f"No docs index at {path} yet. Every run builds and updates it: run "
            "`crawl4ai-llm-docs URLS_FILE` (or `crawl4ai-llm-docs ROOT_URL`) first, with "
            "the same --index FILE (output.index_path) if you gave one."
        )
    try:
        index = DocsIndex(path, pool_size=pool_size)
    except IndexFileError as exc:
        raise InputError(
            f"The docs index {path} cannot be read: {exc.problem}. Give another --index FILE."
        ) from None
    try:
        index.check_sets(docs_sets)
    except UnknownDocsSet as exc:
        index.close()
        raise InputError(unknown_set_message(exc, path)) from None
    return index


class ConnectionPool:
    """Read-only connections for worker threads: at most ``size``, each used by one thread
    at a time (a caller that finds none free waits)."""

    def __init__(self, path: Path, size: int = POOL_SIZE) -> None:
        self.path = path
        self.size = size
        self._free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[sqlite3.Connection] = []
        self._counts: dict[int, TermCounts] = {}  # per connection: its own cache
        self._lock = threading.Lock()
        self._free.put(self._open())  # fail now, not at the first request

    def _open(self) -> sqlite3.Connection:
        connection = open_for_reading(self.path)
        with self._lock:
            self._all.append(connection)
            self._counts[id(connection)] = TermCounts()
        return connection

    def term_counts(self, connection: sqlite3.Connection) -> TermCounts:
        return self._counts[id(connection)]

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._slots:
            try:
                connection = self._free.get_nowait()
            except queue.Empty:
                connection = self._open()
            try:
                yield connection
            finally:
                self._free.put(connection)

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
            self._counts.clear()


class DocsIndex:
    """The read side of one index file."""

    def __init__(self, path: Path, *, pool_size: int = POOL_SIZE) -> None:
        self.path = path
        self.pool = ConnectionPool(path, pool_size)

    def close(self) -> None:
        self.pool.close()

    # ------------------------------------------------------------ docs sets

    def docs_sets(self) -> list[DocsSet]:
        with self.pool.connection() as db:
            rows = db.execute(
                "SELECT p.docs_set, count(*), coalesce(sum(p.tokens), 0), max(p.crawled_at), "
                "max(p.indexed_at), (SELECT count(*) FROM sections s JOIN pages q "
                "ON q.id = s.page_id WHERE q.docs_set = p.docs_set) "
                "FROM pages p GROUP BY p.docs_set ORDER BY p.docs_set"
            ).fetchall()
        return [
            DocsSet(
                name=row[0],
                pages=row[1],
                tokens=row[2],
                last_crawled_at=row[3] or "",
                last_indexed_at=row[4] or "",
                sections=row[5],
            )
            for row in rows
        ]

    def check_sets(self, names: Sequence[str]) -> None:
        """Raise ``UnknownDocsSet`` for the first of ``names`` the index does not hold."""
        if not names:
            return
        with self.pool.connection() as db:
            known = [row[0] for row in db.execute("SELECT DISTINCT docs_set FROM pages")]
        for name in names:
            if name not in known:
                raise UnknownDocsSet(name, sorted(known))

    # ------------------------------------------------------------ search

    def search(
        self,
        text: str,
        *,
        docs_sets: Sequence[str] = (),
        limit: int = 5,
        max_tokens: int | None = None,
    ) -> SearchResult:
        """The best sections for ``text``, one per page, best first; their texts together
        within ``max_tokens`` (each gets an equal share, at least ``MIN_SHARE_TOKENS``)."""
        self.check_sets(docs_sets)
        query = parse_query(text)
        with self.pool.connection() as db:
            pages, fallback = rank_pages(db, query, docs_sets, limit, self.pool.term_counts(db))
            hits = [self._hit(db, page.sections, page.page_id, page.score) for page in pages]
        share = None
        if max_tokens is not None and hits:
            share = max(max_tokens // len(hits), MIN_SHARE_TOKENS)
        words = query.words()
        for hit in hits:
            if share is not None and hit.tokens > share:
                excerpt = best_excerpt(hit.text, words, share)
                hit.text, hit.truncated = excerpt.text, excerpt.truncated
        return SearchResult(query=text, results=hits, prefix_fallback=fallback)

    def _hit(
        self, db: sqlite3.Connection, sections: list[tuple[int, float]], page: int, score: float
    ) -> Hit:
        if sections:
            best = sections[0][0]
        else:  # matched by its title or description only: its first section
            row = db.execute(
                "SELECT id FROM sections WHERE page_id = ? ORDER BY position LIMIT 1", (page,)
            ).fetchone()
            best = int(row[0]) if row else -1
        row = db.execute(
            "SELECT p.docs_set, p.path, p.title, p.url, p.crawled_at, s.anchor, s.headings, "
            "s.tokens, s.text FROM pages p LEFT JOIN sections s ON s.id = ? WHERE p.id = ?",
            (best, page),
        ).fetchone()
        docs_set, path, title, url, crawled_at = row[0], row[1], row[2], row[3], row[4]
        anchor, headings = row[5] or "", row[6] or ""
        also: list[str] = []
        for other, _ in sections[1:4]:
            found = db.execute("SELECT anchor FROM sections WHERE id = ?", (other,)).fetchone()
            if found is not None:
                also.append(section_id(docs_set, path, found[0]))
        return Hit(
            id=section_id(docs_set, path, anchor),
            page_id=page_id(docs_set, path),
            docs_set=docs_set,
            title=title,
            heading_path=PATH_SEPARATOR.join(filter(None, (title, headings))),
            url=url,
            uri=resource_uri(docs_set, path),
            crawled_at=crawled_at,
            score=round(score, 3),
            tokens=row[7] or 0,
            text=row[8] or "",
            truncated=False,
            also=list(dict.fromkeys(also)),
        )

    # ------------------------------------------------------------ pages

    def _locate(
        self, db: sqlite3.Connection, ref: str, docs_sets: Sequence[str]
    ) -> tuple[int, str] | None:
        """The page ``ref`` names and the section anchor it points at ("" for none): a URL
        (with or without #fragment), a docs:// URI, or an id (SET/PATH, SET/PATH#anchor)."""
        ref = ref.strip()
        base, _, anchor = ref.partition("#")
        if base.startswith(RESOURCE_SCHEME):
            base = base[len(RESOURCE_SCHEME) :]
        candidates: list[tuple[str, tuple[str, ...]]] = []
        if base.startswith(("http://", "https://")):
            candidates.append(("url = ?", (base,)))
            candidates.append(("path = ?", (page_path(base),)))
        elif "/" in base:
            docs_set, path = base.split("/", 1)
            candidates.append(("docs_set = ? AND path = ?", (docs_set, path)))
        in_sets = f" AND docs_set IN ({', '.join('?' * len(docs_sets))})" if docs_sets else ""
        for where, args in candidates:
            row = db.execute(
                f"SELECT id FROM pages WHERE {where}{in_sets} ORDER BY indexed_at DESC LIMIT 1",
                (*args, *docs_sets),
            ).fetchone()
            if row is not None:
                return int(row[0]), anchor
        return None

    def fetch(
        self,
        ref: str,
        *,
        max_tokens: int | None = None,
        offset: int | None = None,
        docs_sets: Sequence[str] = (),
    ) -> PageText | None:
        """The page ``ref`` names, from line ``offset`` (else from the section ``ref``
        points at, else from its start), as much as fits ``max_tokens``."""
        with self.pool.connection() as db:
            located = self._locate(db, ref, docs_sets)
            if located is None:
                return None
            page, anchor = located
            meta = db.execute(
                "SELECT docs_set, path, title, url, crawled_at, changed_at, tokens "
                "FROM pages WHERE id = ?",
                (page,),
            ).fetchone()
            lines: list[str] = []
            section_start: int | None = None
            for section_anchor, text in db.execute(
                "SELECT anchor, text FROM sections WHERE page_id = ? ORDER BY position", (page,)
            ):
                if lines:
                    lines.append("")
                if anchor and section_anchor == anchor and section_start is None:
                    section_start = len(lines)
                lines.extend(text.split("\n"))
        start = offset if offset is not None else (section_start or 0)
        start = min(max(start, 0), max(len(lines) - 1, 0))
        window = page_window(lines, start, max_tokens) if lines else None
        docs_set, path = meta[0], meta[1]
        return PageText(
            id=page_id(docs_set, path),
            docs_set=docs_set,
            title=meta[2],
            url=meta[3],
            uri=resource_uri(docs_set, path),
            crawled_at=meta[4],
            changed_at=meta[5],
            tokens=meta[6],
            text=window.text if window else "",
            start_line=start,
            end_line=window.end if window else 0,
            total_lines=len(lines),
            next_offset=window.end if window and window.end < len(lines) else None,
        )

    def pages_after(self, row: int, size: int, docs_sets: Sequence[str] = ()) -> list[PageEntry]:
        """Up to ``size`` pages after the listing cursor ``row`` (keyset: never OFFSET)."""
        in_sets = f"AND docs_set IN ({', '.join('?' * len(docs_sets))})" if docs_sets else ""
        with self.pool.connection() as db:
            rows = db.execute(
                "SELECT id, docs_set, path, title, url, description FROM pages "
                f"WHERE id > ? {in_sets} ORDER BY id LIMIT ?",
                (row, *docs_sets, size),
            ).fetchall()
        return [
            PageEntry(
                row=r[0],
                id=page_id(r[1], r[2]),
                docs_set=r[1],
                title=r[3],
                url=r[4],
                uri=resource_uri(r[1], r[2]),
                description=r[5],
            )
            for r in rows
        ]
