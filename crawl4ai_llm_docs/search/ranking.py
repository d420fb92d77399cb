"""Ranking: pages scored by what they are about and by their best sections.

Two BM25 rankings (FTS5's ``bm25``), added up per page:

- the page's own fields, scored once per page: its title, its description (the LLM's one
  line, the page's meta description or its first sentence) and the words of its URL;
- its sections, heading path weighted above text (a word in a heading says what the section
  is about, the same word in running text may be an aside). The best section counts whole
  and the next ones less and less (``PAGE_DECAY``): a page that answers from several sections
  edges out one lucky paragraph elsewhere, but one strong section still beats many weak ones.
  A section that is mostly link text (a table of contents) is scaled down: it names many
  topics and explains none.

Scoring the title once per page, not once per section, keeps a page whose title has a query
word from filling every place with its sections. Results are each page's best section
(its first, when only the page's own fields matched), best page first.

Speed: FTS5 computes bm25 for every row that matches, so the cost grows with how many
sections hold the query's words. The words are therefore taken rarest first while the
sections holding them add up to at most ``MAX_SCORED_SECTIONS``; the most common words,
whose BM25 weight is the smallest (near none for a word in half the sections), are left out
of a query that would otherwise score most of a large index. On an index smaller than that
bound nothing is left out.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from crawl4ai_llm_docs.search.excerpts import stem_matcher, stems
from crawl4ai_llm_docs.search.query import Query, quote

# bm25() weights, one per FTS column in declaration order.
PAGE_WEIGHTS = (2.0, 1.0, 1.0)  # title, description, URL words
SECTION_WEIGHTS = (2.0, 1.0)  # heading path, text
PAGE_FIELDS_SHARE = 1.0  # the page fields' score, against its sections'
# How much a page's 2nd, 3rd ... best sections add to its best one's score.
PAGE_DECAY = (1.0, 0.5, 0.25)
# Link lists: 1 up to LINK_SHARE_FROM of a section's words in links, then down in a
# straight line to LINK_LIST_FLOOR for a section of links only.
LINK_SHARE_FROM = 0.5
LINK_LIST_FLOOR = 0.3
SECTION_CANDIDATES = 200  # best sections ranked before grouping them by page
PAGE_CANDIDATES = 100
MAX_SCORED_SECTIONS = 4_000  # bound on the sections bm25 scores per query (see above)
_WORD = re.compile(r"[^\W_]+")


@dataclass
class PageHit:
    page_id: int
    score: float = 0.0
    sections: list[tuple[int, float]] = field(default_factory=list)  # best first


class TermCounts:
    """How many sections hold each query part, per connection, until the index changes."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._counts: dict[str, int] = {}

    def refresh(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._version:  # another connection committed: counts may differ
            self._counts.clear()
            self._version = version

    def get(self, db: sqlite3.Connection, part: str) -> int:
        """Sections holding ``part``, counted up to one past ``MAX_SCORED_SECTIONS`` (past
        that, only "too many" matters, and counting on would cost what bounding saves)."""
        count = self._counts.get(part)
        if count is None:
            row = db.execute(
                "SELECT count(*) FROM (SELECT rowid FROM sections_fts WHERE sections_fts "
                "MATCH ? LIMIT ?)",
                (quote(part), MAX_SCORED_SECTIONS + 1),
            ).fetchone()
            count = self._counts[part] = int(row[0])
        return count


def bounded(db: sqlite3.Connection, query: Query, counts: TermCounts) -> Query | None:
    """``query`` with its most common parts left out, so that the sections to score stay
    within ``MAX_SCORED_SECTIONS`` (the rarest part is always kept); None when even its
    rarest part is in more sections than that (see ``rank_pages``)."""
    counts.refresh(db)
    held = sorted((counts.get(db, part), part) for part in query.parts())
    held = [(count, part) for count, part in held if count]  # no match: no cost, no score
    if not held:
        return query
    if held[0][0] > MAX_SCORED_SECTIONS:
        return None
    keep: set[str] = set()
    total = 0
    for count, part in held:
        if total + count > MAX_SCORED_SECTIONS:
            break
        keep.add(part)
        total += count
    return query.narrowed(frozenset(keep))


def _weights(weights: Sequence[float]) -> str:
    return ", ".join(str(weight) for weight in weights)


def _link_prior(share: float) -> float:
    if share <= LINK_SHARE_FROM:
        return 1.0
    return 1.0 - (share - LINK_SHARE_FROM) / (1 - LINK_SHARE_FROM) * (1 - LINK_LIST_FLOOR)


def ranked_sections(
    db: sqlite3.Connection,
    expression: str,
    docs_sets: Sequence[str],
    limit: int,
    page: int | None = None,
) -> list[tuple[int, int, float]]:
    """(section id, page id, score) of the best ``limit`` sections (of ``page`` only, when
    given), best first."""
    bm25 = f"bm25(sections_fts, {_weights(SECTION_WEIGHTS)})"
    if page is not None:  # a page's sections have consecutive ids: FTS5 seeks to the range
        low, high = db.execute(
            "SELECT min(id), max(id) FROM sections WHERE page_id = ?", (page,)
        ).fetchone()
        rows = db.execute(
            f"SELECT rowid, -{bm25} FROM sections_fts WHERE sections_fts MATCH ? "
            "AND rowid BETWEEN ? AND ? ORDER BY 2 DESC LIMIT ?",
            (expression, low or 0, high or -1, limit),
        ).fetchall()
    elif docs_sets:
        marks = ", ".join("?" * len(docs_sets))
        rows = db.execute(
            f"SELECT f.rowid, -{bm25} FROM sections_fts f JOIN sections s ON s.id = f.rowid "
            f"JOIN pages p ON p.id = s.page_id WHERE sections_fts MATCH ? "
            f"AND p.docs_set IN ({marks}) ORDER BY 2 DESC LIMIT ?",
            (expression, *docs_sets, limit),
        ).fetchall()
    else:
        rows = db.execute(
            f"SELECT rowid, -{bm25} FROM sections_fts WHERE sections_fts MATCH ? "
            "ORDER BY 2 DESC LIMIT ?",
            (expression, limit),
        ).fetchall()
    if not rows:
        return []
    scores = {int(row[0]): float(row[1]) for row in rows}
    marks = ", ".join("?" * len(scores))
    details = db.execute(
        f"SELECT id, page_id, link_share FROM sections WHERE id IN ({marks})", tuple(scores)
    ).fetchall()
    ranked = [
        (int(row[0]), int(row[1]), scores[int(row[0])] * _link_prior(float(row[2])))
        for row in details
        if page is None or int(row[1]) == page
    ]
    return sorted(ranked, key=lambda item: (-item[2], item[0]))


def ranked_pages(
    db: sqlite3.Connection, expression: str, docs_sets: Sequence[str], limit: int
) -> list[tuple[int, float]]:
    """(page id, score) of the ``limit`` pages whose own fields match best."""
    bm25 = f"bm25(pages_fts, {_weights(PAGE_WEIGHTS)})"
    if docs_sets:
        rows = db.execute(
            f"SELECT p.id, -{bm25} FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
            f"WHERE pages_fts MATCH ? AND p.docs_set IN ({', '.join('?' * len(docs_sets))}) "
            "ORDER BY 2 DESC LIMIT ?",
            (expression, *docs_sets, limit),
        ).fetchall()
    else:  # no join: it looked up every matching page's row (the triggers keep one per rowid)
        rows = db.execute(
            f"SELECT rowid, -{bm25} FROM pages_fts WHERE pages_fts MATCH ? ORDER BY 2 DESC LIMIT ?",
            (expression, limit),
        ).fetchall()
    return [(int(row[0]), float(row[1])) for row in rows]


def _combine(
    sections: Sequence[tuple[int, int, float]], pages: Sequence[tuple[int, float]]
) -> list[PageHit]:
    hits: dict[int, PageHit] = {}
    for section, page, score in sections:
        hit = hits.get(page)
        if hit is None:  # not setdefault: that builds a PageHit for every section
            hit = hits[page] = PageHit(page)
        if len(hit.sections) < len(PAGE_DECAY):
            hit.score += PAGE_DECAY[len(hit.sections)] * score
        hit.sections.append((section, score))
    for page, score in pages:
        hit = hits.get(page)
        if hit is None:
            hit = hits[page] = PageHit(page)
        hit.score += PAGE_FIELDS_SHARE * score
    return sorted(hits.values(), key=lambda hit: (-hit.score, hit.page_id))


def rank_pages(
    db: sqlite3.Connection,
    query: Query,
    docs_sets: Sequence[str],
    limit: int,
    counts: TermCounts | None = None,
) -> tuple[list[PageHit], bool]:
    """The best ``limit`` pages for ``query``, and whether the prefix fallback found them."""
    if query.empty:
        return [], False
    narrowed = bounded(db, query, counts or TermCounts())
    if narrowed is None:
        return _by_page_fields(db, query, docs_sets, limit), False
    for prefix in (False, True):  # words as prefixes only when they found nothing
        expression = (query if prefix else narrowed).expression(prefix=prefix)
        if not expression:
            continue
        sections = ranked_sections(db, expression, docs_sets, SECTION_CANDIDATES)
        pages = ranked_pages(db, expression, docs_sets, PAGE_CANDIDATES)
        if sections or pages:
            return _combine(sections, pages)[:limit], prefix
    return [], False


def _by_page_fields(
    db: sqlite3.Connection, query: Query, docs_sets: Sequence[str], limit: int
) -> list[PageHit]:
    """A query of words that many sections have: scoring all those sections would cost
    more than the answer is worth. Pages whose title or URL has the words (a page's name
    says what it is about) are ranked instead, each answered by its section that holds most
    of the words; failing any, the first ``MAX_SCORED_SECTIONS`` sections that match."""
    parts = " OR ".join(quote(part) for part in query.parts())
    pages = ranked_pages(db, f"{{title url_words}} : ({parts})", docs_sets, limit)
    if not pages:
        in_sets = ""  # the sets asked for bound this fallback too
        if docs_sets:
            in_sets = (
                " AND s.page_id IN (SELECT id FROM pages WHERE docs_set IN "
                f"({', '.join('?' * len(docs_sets))}))"
            )
        rows = db.execute(
            "SELECT f.rowid, s.page_id FROM sections_fts f JOIN sections s ON s.id = f.rowid "
            f"WHERE sections_fts MATCH ?{in_sets} LIMIT ?",
            (query.expression(), *docs_sets, MAX_SCORED_SECTIONS),
        ).fetchall()
        return _combine([(int(r[0]), int(r[1]), 0.0) for r in rows], [])[:limit]
    wanted = stem_matcher(stems(query.words()))
    sections = []
    for page, score in pages:
        rows = db.execute(
            "SELECT id, headings, body FROM sections WHERE page_id = ? ORDER BY position",
            (page,),
        ).fetchall()
        if rows:
            best = max(rows, key=lambda row: _overlap(f"{row[1]} {row[1]} {row[2]}", wanted))
            sections.append((int(best[0]), page, score))
    return _combine(sections, [])[:limit]


def _overlap(text: str, wanted: dict[str, str]) -> int:
    """How many of the wanted words (a ``stem_matcher``) ``text`` has, distinct stems, for
    choosing a section."""
    found = set(_WORD.findall(text.lower())) & wanted.keys()
    return len({wanted[word] for word in found})
