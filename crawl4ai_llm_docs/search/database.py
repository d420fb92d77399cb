"""The docs index file: one SQLite database, its schema, and opening it to write or to read.

    pages     one row per page of a docs set: URL, PATH, title, description, crawl times,
              content hash
    sections  the page's sections (``sections.py``): heading path, Markdown, plain body, tokens
    pages_fts, sections_fts   FTS5 over each page's title, description and URL words, and
              over each section's heading path and body: external content, kept in step by
              triggers; porter stemming over unicode61
    sources   which source (a URL file, or root URLs) listed which page of a set: a page
              leaves its set when no source of the set lists it any more

Writes happen in one transaction (``update.py``), in WAL mode: a reader (``serve``) keeps
its snapshot while a run writes, and a run killed mid-way leaves the previous index whole.
``PRAGMA user_version`` is the schema version: a file of another version is refused with a
message, never half-read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from crawl4ai_llm_docs.files import FILE_MODE, mkdir_private

SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000  # another run writing the same index: wait for it, then say so

SCHEMA = """
CREATE TABLE IF NOT EXISTS pages(
    id INTEGER PRIMARY KEY,
    docs_set TEXT NOT NULL,
    url TEXT NOT NULL,
    path TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    url_words TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    crawled_at TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    UNIQUE(docs_set, url),
    UNIQUE(docs_set, path)
);
CREATE TABLE IF NOT EXISTS sections(
    id INTEGER PRIMARY KEY,
    page_id INTEGER NOT NULL REFERENCES pages(id),
    position INTEGER NOT NULL,
    anchor TEXT NOT NULL,
    headings TEXT NOT NULL,
    body TEXT NOT NULL,
    text TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    link_share REAL NOT NULL,
    UNIQUE(page_id, position)
);
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(
    title, description, url_words,
    content='pages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS pages_ai AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts(rowid, title, description, url_words)
    VALUES (new.id, new.title, new.description, new.url_words);
END;
CREATE TRIGGER IF NOT EXISTS pages_ad AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, description, url_words)
    VALUES ('delete', old.id, old.title, old.description, old.url_words);
END;
CREATE TRIGGER IF NOT EXISTS pages_au AFTER UPDATE OF title, description, url_words ON pages
BEGIN
    INSERT INTO pages_fts(pages_fts, rowid, title, description, url_words)
    VALUES ('delete', old.id, old.title, old.description, old.url_words);
    INSERT INTO pages_fts(rowid, title, description, url_words)
    VALUES (new.id, new.title, new.description, new.url_words);
END;
CREATE VIRTUAL TABLE IF NOT EXISTS sections_fts USING fts5(
    headings, body,
    content='sections', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS sections_ai AFTER INSERT ON sections BEGIN
    INSERT INTO sections_fts(rowid, headings, body) VALUES (new.id, new.headings, new.body);
END;
CREATE TRIGGER IF NOT EXISTS sections_ad AFTER DELETE ON sections BEGIN
    INSERT INTO sections_fts(sections_fts, rowid, headings, body)
    VALUES ('delete', old.id, old.headings, old.body);
END;
CREATE TABLE IF NOT EXISTS sources(
    docs_set TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY(docs_set, source, url)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sources_by_url ON sources(docs_set, url);
"""


class IndexFileError(OSError):
    """The index file cannot be used: not SQLite, another schema version, locked, corrupt.

    An ``OSError``, so the run reports it as it does any output it could not write."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(errno.EIO, problem, str(path))
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"docs index {self.path}: {self.problem}"


def check_index_file(path: Path) -> str | None:
    """What is wrong with ``path`` as a docs index to write, or None (missing is fine)."""
    if path.is_dir():
        return "is a directory"
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head and head != SQLITE_MAGIC:
        return "is not a SQLite database (another file is in the way)"
    return None


def _create_private(path: Path) -> None:
    mkdir_private(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def _check_version(connection: sqlite3.Connection, path: Path, *, writing: bool) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version == 0 and tables == 0 and writing:
        connection.executescript(SCHEMA)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return
    raise IndexFileError(
        path,
        f"schema version {version} is not this version's ({SCHEMA_VERSION}); "
        "move the file away (or give another --index) and run again to build a new one",
    )


@contextlib.contextmanager
def open_for_writing(path: Path) -> Iterator[sqlite3.Connection]:
    """The index, created (0o600, WAL) if missing; the caller runs one transaction in it."""
    problem = check_index_file(path)
    if problem:
        raise IndexFileError(path, problem)
    try:
        _create_private(path)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise IndexFileError(path, f"cannot be opened ({exc})") from exc
    try:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            _check_version(connection, path, writing=True)
        except sqlite3.Error as exc:
            raise IndexFileError(path, f"cannot be used ({exc})") from exc
        yield connection
    finally:
        connection.close()


def open_for_reading(path: Path) -> sqlite3.Connection:
    """A connection that only reads (``serve`` and ``search``); usable from any one thread
    at a time (``check_same_thread=False``: a pool hands it from thread to thread)."""
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise IndexFileError(path, f"cannot be opened ({exc})") from exc
    try:
        connection.execute("PRAGMA query_only = 1")
        _check_version(connection, path, writing=False)
    except sqlite3.Error as exc:
        connection.close()
        raise IndexFileError(path, f"cannot be read ({exc})") from exc
    except IndexFileError:
        connection.close()
        raise
    connection.row_factory = sqlite3.Row
    return connection
