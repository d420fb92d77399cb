"""Queries (``search/query.py``), ranking (``search/ranking.py``) and excerpts
(``search/excerpts.py``).

Whatever a person types becomes a query SQLite's FTS5 accepts (checked by running it against a
real FTS5 table, for any text hypothesis makes up). Ranking is checked on a small index built
through the real update path: title and headings count more than a passing mention, a page
that answers from several sections beats one lucky paragraph, a table of contents does not
win by naming everything, words run together and other spellings are found, and a word cut
short falls back to prefixes. Excerpts always fit their budget (counted with tiktoken) and
close every code block they open (checked by markdown-it, a CommonMark parser).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.search.excerpts import (
    ELLIPSIS,
    _stem,
    best_excerpt,
    page_window,
    stem_matcher,
    stems,
)
from crawl4ai_llm_docs.search.query import parse_query
from crawl4ai_llm_docs.search.reader import DocsIndex
from crawl4ai_llm_docs.search.update import IndexRequest, write_index

FILLER_TOPICS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(a, b, tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.execute("INSERT INTO t VALUES ('some text', 'more C++ text with foo-bar and AND OR NOT')")
    return db


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_a_valid_fts5_query(fts: sqlite3.Connection, text: str) -> None:
    query = parse_query(text)
    for prefix in (False, True):
        expression = query.expression(prefix=prefix)
        if expression:
            fts.execute("SELECT count(*) FROM t WHERE t MATCH ?", (expression,)).fetchone()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(['"', "(", ")", "*", "^", ":", "-", "+", "NEAR", "AND", "OR", "NOT", "x"]),
        max_size=12,
    ).map(" ".join)
)
def test_fts5_syntax_typed_by_a_user_is_only_words(fts: sqlite3.Connection, text: str) -> None:
    expression = parse_query(text).expression()
    if expression:
        fts.execute("SELECT count(*) FROM t WHERE t MATCH ?", (expression,)).fetchone()


def test_function_words_go_identifiers_and_quotes_stay() -> None:
    query = parse_query('how do I read a CSV file with csv.DictReader "header row"')
    assert query.terms == ("read", "csv", "file", "dictreader")
    assert "csv dictreader" in query.extras  # the identifier's parts, as a phrase
    assert "csvfile" in query.extras  # neighbours run together
    assert query.phrases == ("header row",)
    assert parse_query("how to").terms == ("how", "to")  # nothing but function words: kept
    assert "dictionary" in parse_query("dict of lists").extras  # another spelling
    assert parse_query("   ").empty


def _doc(number: int, url: str, title: str, markdown: str) -> Document:
    return Document(index=number, url=url, title=title, markdown=markdown)


def _filler(number: int) -> Document:
    topic = FILLER_TOPICS[number % len(FILLER_TOPICS)]
    text = (
        f"# {topic} {number}\n\nThe {topic} module handles {topic} records and values.\n\n"
        f"## Reading {topic}\n\nRead a {topic} record from a stream of values.\n"
    )
    return _doc(
        number, f"https://d.example/filler/{topic}-{number}.html", f"{topic} {number}", text
    )


PAGES = [
    _doc(
        100,
        "https://d.example/lib/tempfile.html",
        "tempfile — Generate temporary files and directories",
        "# tempfile\n\nThis module creates temporary files and directories.\n\n"
        "## TemporaryDirectory\n\nA temporary directory is removed when the context ends.\n\n"
        "## Examples\n\nCreate a temporary directory and use it.\n",
    ),
    _doc(
        101,
        "https://d.example/lib/unittest.html",
        "unittest — Unit testing framework",
        "# unittest\n\nThe unittest module runs tests.\n\n## Test cases\n\nWrite a TestCase.\n",
    ),
    _doc(
        102,
        "https://d.example/lib/shutil.html",
        "shutil — High-level file operations",
        "# shutil\n\nCopy files. A directory tree can be removed with rmtree; "
        "see also the temporary module.\n",
    ),
    _doc(
        103,
        "https://d.example/lib/index.html",
        "Library index",
        "# Library index\n\n"
        + "\n".join(
            f"* [{name}](https://d.example/lib/{name}.html)"
            for name in ("tempfile temporary directory", "unittest", "shutil", "memoize cache")
        ),
    ),
    _doc(
        104,
        "https://d.example/lib/functools.html",
        "functools — Higher-order functions",
        "# functools\n\n## lru_cache\n\nDecorator to memoize a function with a cache.\n",
    ),
]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> DocsIndex:
    path = tmp_path_factory.mktemp("index") / "index.sqlite"
    documents = [*PAGES, *(_filler(n) for n in range(40))]
    write_index(
        documents,
        IndexRequest(path=path, docs_set="lib", source="test", urls=[d.url for d in documents]),
        site_name="Lib",
        title_of=lambda d: d.title,
        describe=lambda d, title: title,
        generated_at=datetime(2026, 12, 7, tzinfo=UTC),
    )
    return DocsIndex(path)


def _urls(docs: DocsIndex, text: str, limit: int = 3) -> list[str]:
    return [hit.url.rsplit("/", 1)[1] for hit in docs.search(text, limit=limit).results]


def test_the_page_about_it_comes_first(docs: DocsIndex) -> None:
    assert _urls(docs, "temporary directory")[0] == "tempfile.html"
    assert _urls(docs, "temporary folder")[0] == "tempfile.html"  # folder: a directory
    assert _urls(docs, "unit test framework")[0] == "unittest.html"  # unit test: unittest
    assert _urls(docs, "memoize a function")[0] == "functools.html"


def test_a_table_of_contents_does_not_win_by_naming_everything(docs: DocsIndex) -> None:
    # The index names "memoize cache" word for word; functools explains it.
    assert _urls(docs, "memoize cache")[0] == "functools.html"
    assert _urls(docs, "temporary directory")[0] == "tempfile.html"


def test_a_word_cut_short_falls_back_to_prefixes(docs: DocsIndex) -> None:
    result = docs.search("tempf")
    assert result.prefix_fallback
    assert result.results[0].url.endswith("tempfile.html")
    nothing = docs.search("zzzqqq")
    assert nothing.results == []
    assert not nothing.prefix_fallback


@pytest.mark.parametrize(
    "text", ["temporary directory", "memoize", "unit test", "records values stream", "the"]
)
def test_naming_the_only_docs_set_changes_nothing(docs: DocsIndex, text: str) -> None:
    # Without a docs set the page fields are ranked without joining pages (faster): the
    # same pages, scores and sections as the query that joins to filter by set.
    assert docs.search(text, limit=10) == docs.search(text, docs_sets=["lib"], limit=10)


def test_a_hit_names_its_section_source_and_other_matches(docs: DocsIndex) -> None:
    hit = docs.search("temporary directory removed").results[0]
    assert (
        hit.heading_path
        == "tempfile — Generate temporary files and directories > TemporaryDirectory"
    )
    assert hit.id == "lib/d.example/lib/tempfile.html#temporarydirectory"
    assert hit.uri == "docs://lib/d.example/lib/tempfile.html"
    assert hit.url == "https://d.example/lib/tempfile.html"
    assert hit.also  # the other sections of the page that matched
    page = docs.fetch(hit.id, max_tokens=100)
    assert page is not None
    # From the section the id names; the marker says the page's start was left out.
    assert page.text.split("\n")[:2] == [ELLIPSIS, "## TemporaryDirectory"]
    assert page.start_line > 0


# ---------------------------------------------------------------- excerpts

CODE_LINE = st.text(alphabet="abcdefghij =()", min_size=1, max_size=30)


@st.composite
def _markdown(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            lines = draw(st.lists(CODE_LINE, min_size=1, max_size=15))
            parts.append("```python\n" + "\n".join(lines) + "\n```")
        else:
            words = draw(
                st.lists(
                    st.sampled_from(["alpha", "csv", "reader", "dict", "zeta"]),
                    min_size=1,
                    max_size=40,
                )
            )
            parts.append(" ".join(words))
    return "\n\n".join(parts)


def _fences_closed(text: str) -> bool:
    tokens = MarkdownIt().parse(text)
    fences = [t for t in tokens if t.type == "fence"]
    # An unclosed fence runs to the end of the text: its content would swallow the markers.
    return all(not t.content.rstrip().endswith(ELLIPSIS) for t in fences)


@settings(max_examples=150, deadline=None)
@given(_markdown(), st.integers(16, 300))
def test_an_excerpt_fits_its_budget_and_closes_its_code(text: str, budget: int) -> None:
    excerpt = best_excerpt(text, frozenset({"csv", "reader"}), budget)
    assert excerpt.tokens == count_tokens(excerpt.text)
    assert excerpt.tokens <= budget
    assert excerpt.truncated == (count_tokens(text) > budget)
    assert _fences_closed(excerpt.text)
    if not excerpt.truncated:
        assert excerpt.text == text


@settings(max_examples=100, deadline=None)
@given(_markdown(), st.integers(16, 200))
def test_reading_a_page_window_by_window_gives_every_line_once(text: str, budget: int) -> None:
    lines = text.split("\n")
    start, seen = 0, []
    while True:
        window = page_window(lines, start, budget)
        assert window.tokens <= budget or window.end == window.start + 1
        assert _fences_closed(window.text)
        seen.extend(range(window.start, window.end))
        if window.end >= len(lines):
            break
        assert window.end > start
        start = window.end
    assert seen == list(range(len(lines)))


def test_the_excerpt_is_where_the_words_are() -> None:
    text = "\n\n".join(
        ["filler words here"] * 80 + ["the csv reader is here"] + ["more filler"] * 80
    )
    excerpt = best_excerpt(text, frozenset({"csv", "reader"}), 40)
    assert "the csv reader is here" in excerpt.text
    assert excerpt.text.startswith(ELLIPSIS)
    assert excerpt.text.endswith(ELLIPSIS)


_STEM_WORDS = st.text(st.sampled_from("aeisdlnyg\u0130K\u00e9"), min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(st.lists(_STEM_WORDS, max_size=5), st.lists(_STEM_WORDS, max_size=30))
def test_the_stem_matcher_answers_as_stemming_every_word(query: list[str], text: list[str]) -> None:
    # Words made of the suffixes' letters (and letters whose lower case differs), so that
    # suffixes and near-suffixes come up often.
    wanted = stems(query + [word + "es" for word in query])
    matcher = stem_matcher(wanted)
    for word in text + query + [word + "ies" for word in query]:
        assert (word.lower() in matcher) == (_stem(word) in wanted)
        if word.lower() in matcher:
            assert matcher[word.lower()] == _stem(word)


def test_a_path_beyond_the_fixture_is_refused(docs: DocsIndex, tmp_path: Path) -> None:
    assert docs.fetch("lib/d.example/lib/nope.html") is None
    assert docs.fetch("https://elsewhere.example/x.html") is None
    assert docs.fetch("docs://lib/d.example/lib/tempfile.html") is not None


def test_common_words_are_left_out_rarest_first_and_pages_answer_all_common_queries(
    docs: DocsIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound on sections scored, exercised on the small index with a small bound: the
    rarer words decide, and a query of only common words is answered page by page."""
    from crawl4ai_llm_docs.search import ranking

    baseline = _urls(docs, "temporary directory record", limit=1)
    monkeypatch.setattr(ranking, "MAX_SCORED_SECTIONS", 12)
    with docs.pool.connection() as db:
        counts = ranking.TermCounts()
        narrowed = ranking.bounded(db, parse_query("temporary directory record"), counts)
        assert narrowed is not None
        assert "record" not in narrowed.terms  # in every filler page: left out
        assert "temporary" in narrowed.terms
        assert ranking.bounded(db, parse_query("values record"), counts) is None
    assert _urls(docs, "temporary directory record", limit=1) == baseline
    # "values record" is in 40 filler pages: their titles do not have it, so the first
    # matching sections answer, one per page, and nothing fails.
    hits = docs.search("values record", limit=3).results
    assert len(hits) == 3
    assert all("/filler/" in hit.url for hit in hits)
    # "reading" is in the filler pages' headings; "charlie" names some of them.
    assert _urls(docs, "charlie record", limit=1)[0].startswith("charlie-")


def test_common_words_answer_only_from_the_docs_sets_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crawl4ai_llm_docs.search import ranking

    path = tmp_path / "index.sqlite"
    sets = {
        "lib": [_filler(n) for n in range(40)],
        "other": [_doc(900, "https://o.example/intro.html", "Intro", "# Intro\n\nWelcome.\n")],
    }
    for name, documents in sets.items():
        write_index(
            documents,
            IndexRequest(path=path, docs_set=name, source=name, urls=[d.url for d in documents]),
            site_name=name,
            title_of=lambda d: d.title,
            describe=lambda d, title: title,
            generated_at=datetime(2026, 12, 7, tzinfo=UTC),
        )
    monkeypatch.setattr(ranking, "MAX_SCORED_SECTIONS", 12)
    index = DocsIndex(path)
    assert index.search("values record", docs_sets=["lib"], limit=3).results  # answered...
    assert (
        index.search("values record", docs_sets=["other"], limit=3).results == []
    )  # ...there only
