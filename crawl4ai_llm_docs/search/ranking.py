"""Ranking: pages scored by what they are about and by their best sections.

Two BM25 rankings (FTS5's ``bm25``), added up per page:

- the page's own fields, scored once per page: its title, its description (the LLM's one
  line, the page's meta description or its first sentence) and the words of its URL;
- its sections, heading path weighted above text (a word in a heading says what the section
  is about, the same word in running text may be an aside). The best section counts whole
  and the next ones less and less (``PAGE_DECAY``): a page that answers from several sections
  edges out one lucky paragraph elsewhere, but one strong section still beats many weak ones.

Scoring the title once per page, not once per section, keeps a page whose title has a query
word from filling every place with its sections. Results are each page's best section
(its first, when only the page's own fields matched), best page first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from crawl4ai_llm_docs.search.query import Query

# bm25() weights, one per FTS column in declaration order.
PAGE_WEIGHTS = (2.0, 1.0, 1.0)  # title, description, URL words
SECTION_WEIGHTS = (2.0, 1.0)  # heading path, text
PAGE_FIELDS_SHARE = 1.0  # the page fields' score, against its sections'
# How much a page's 2nd, 3rd ... best sections add to its best one's score.
PAGE_DECAY = (1.0, 0.5, 0.25)
# A section that is mostly link text (a table of contents, a "see also" list) names many
# topics and explains none: its score is scaled down, to LINK_LIST_FLOOR for one all links.
LINK_SHARE_FROM = 0.5
LINK_LIST_FLOOR = 0.3
SECTION_CANDIDATES = 400  # best sections ranked before grouping them by page
PAGE_CANDIDATES = 100


@dataclass
class PageHit:
    page_id: int
    score: float = 0.0
    sections: list[tuple[int, float]] = field(default_factory=list)  # best first


def _in_sets(docs_sets: Sequence[str], alias: str) -> str:
    return f"AND {alias}.docs_set IN ({', '.join('?' * len(docs_sets))})" if docs_sets else ""


def _weights(weights: Sequence[float]) -> str:
    return ", ".join(str(weight) for weight in weights)


# 1 up to LINK_SHARE_FROM, then down in a straight line to LINK_LIST_FLOOR at all links.
_LINK_PRIOR = (
    f"(CASE WHEN s.link_share <= {LINK_SHARE_FROM} THEN 1.0 ELSE 1.0 - "
    f"(s.link_share - {LINK_SHARE_FROM}) / {1 - LINK_SHARE_FROM} * {1 - LINK_LIST_FLOOR} END)"
)


def ranked_sections(
    db: sqlite3.Connection, expression: str, docs_sets: Sequence[str], limit: int
) -> list[tuple[int, int, float]]:
    """(section id, page id, score) of the best ``limit`` sections, best first."""
    bm25 = f"bm25(sections_fts, {_weights(SECTION_WEIGHTS)})"
    join = "JOIN pages p ON p.id = s.page_id" if docs_sets else ""
    rows = db.execute(
        f"SELECT s.id, s.page_id, -{bm25} * {_LINK_PRIOR} FROM sections_fts "
        f"JOIN sections s ON s.id = sections_fts.rowid {join} "
        f"WHERE sections_fts MATCH ? {_in_sets(docs_sets, 'p')} ORDER BY 3 DESC LIMIT ?",
        (expression, *docs_sets, limit),
    ).fetchall()
    return [(int(row[0]), int(row[1]), float(row[2])) for row in rows]


def ranked_pages(
    db: sqlite3.Connection, expression: str, docs_sets: Sequence[str], limit: int
) -> list[tuple[int, float]]:
    """(page id, score) of the ``limit`` pages whose own fields match best."""
    bm25 = f"bm25(pages_fts, {_weights(PAGE_WEIGHTS)})"
    rows = db.execute(
        f"SELECT p.id, -{bm25} FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid "
        f"WHERE pages_fts MATCH ? {_in_sets(docs_sets, 'p')} ORDER BY {bm25} LIMIT ?",
        (expression, *docs_sets, limit),
    ).fetchall()
    return [(int(row[0]), float(row[1])) for row in rows]


def _combine(
    sections: Sequence[tuple[int, int, float]], pages: Sequence[tuple[int, float]]
) -> list[PageHit]:
    hits: dict[int, PageHit] = {}
    for section, page, score in sections:
        hit = hits.setdefault(page, PageHit(page))
        if len(hit.sections) < len(PAGE_DECAY):
            hit.score += PAGE_DECAY[len(hit.sections)] * score
        hit.sections.append((section, score))
    for page, score in pages:
        hits.setdefault(page, PageHit(page)).score += PAGE_FIELDS_SHARE * score
    return sorted(hits.values(), key=lambda hit: (-hit.score, hit.page_id))


def rank_pages(
    db: sqlite3.Connection, query: Query, docs_sets: Sequence[str], limit: int
) -> tuple[list[PageHit], bool]:
    """The best ``limit`` pages for ``query``, and whether the prefix fallback found them."""
    if query.empty:
        return [], False
    for prefix in (False, True):  # words as prefixes only when they found nothing
        expression = query.expression(prefix=prefix)
        sections = ranked_sections(db, expression, docs_sets, SECTION_CANDIDATES)
        pages = ranked_pages(db, expression, docs_sets, PAGE_CANDIDATES)
        if sections or pages:
            return _combine(sections, pages)[:limit], prefix
    return [], False
