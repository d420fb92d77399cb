"""A page's Markdown cut into heading-path sections (``search/sections.py``) and the names
built from it (``search/names.py``).

Properties over generated Markdown (headings at any level, paragraphs, code blocks whose
lines start with ``#``): the sections are the page, line for line and in order; none is
blank; a ``#`` line inside code never starts a section; each section's path is the chain of
headings above it; every section fits the budget unless one line alone is longer. The
indexed body keeps the words and drops link targets, checked against CommonMark's own
reading of the same text (markdown-it, as rich ships it).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.search.names import (
    Anchors,
    anchor_slug,
    docs_set_slug,
    is_docs_set,
    page_path,
    url_words,
)
from crawl4ai_llm_docs.search.sections import (
    heading_text,
    indexed_line,
    link_share,
    split_sections,
)

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9)
SENTENCE = st.lists(WORDS, min_size=1, max_size=12).map(" ".join)


@st.composite
def _blocks(draw: st.DrawFn) -> list[tuple[str, int, str]]:
    """(kind, level, text): headings, paragraphs and code blocks with '#' lines."""
    blocks: list[tuple[str, int, str]] = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["heading", "paragraph", "paragraph", "code"]))
        if kind == "heading":
            blocks.append(("heading", draw(st.integers(1, 4)), draw(SENTENCE)))
        elif kind == "code":
            body = draw(st.lists(SENTENCE.map(lambda s: f"# {s}"), min_size=1, max_size=4))
            blocks.append(("code", 0, "```python\n" + "\n".join(body) + "\n```"))
        else:
            blocks.append(("paragraph", 0, draw(SENTENCE)))
    return blocks


def _markdown(blocks: list[tuple[str, int, str]]) -> str:
    return "\n\n".join(
        f"{'#' * level} {text}" if kind == "heading" else text for kind, level, text in blocks
    )


def _nonblank(text: str) -> list[str]:
    return [line.rstrip() for line in text.split("\n") if line.strip()]


@settings(max_examples=150, deadline=None)
@given(_blocks())
def test_sections_are_the_page_in_order_and_never_blank(blocks: list[tuple[str, int, str]]) -> None:
    markdown = _markdown(blocks)
    sections = split_sections(markdown, max_tokens=100_000)
    assert _nonblank("\n\n".join(section.text for section in sections)) == _nonblank(markdown)
    assert all(section.text.strip() for section in sections)
    anchors = [section.anchor for section in sections]
    assert len(set(anchors)) == len(anchors)


@settings(max_examples=150, deadline=None)
@given(_blocks())
def test_heading_paths_follow_the_headings_outside_code(
    blocks: list[tuple[str, int, str]],
) -> None:
    markdown = _markdown(blocks)
    code_lines = {
        line.removeprefix("# ")
        for kind, _, text in blocks
        if kind == "code"
        for line in text.split("\n")
    }
    # The expected path of each heading, computed independently from the block list.
    expected: dict[str, list[tuple[str, ...]]] = {}
    stack: list[tuple[int, str]] = []
    for kind, level, text in blocks:
        if kind != "heading":
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        expected.setdefault(text, []).append(tuple(t for _, t in stack))
    for section in split_sections(markdown, max_tokens=100_000):
        if not section.headings:
            continue
        assert section.headings[-1] not in code_lines - set(expected)
        paths = expected[section.headings[-1]]
        # The page's own leading H1 is left out of the paths (the title holds it).
        assert any(section.headings in (path, path[1:]) for path in paths), (section, paths)


@settings(max_examples=60, deadline=None)
@given(_blocks(), st.integers(20, 200))
def test_every_section_fits_the_budget_unless_one_line_cannot(
    blocks: list[tuple[str, int, str]], budget: int
) -> None:
    for section in split_sections(_markdown(blocks), max_tokens=budget):
        assert section.tokens == count_tokens(section.text)
        longest_line = max(count_tokens(line) for line in section.text.split("\n"))
        assert section.tokens <= budget or longest_line + 8 > budget, section


def test_a_real_page_gets_heading_paths_and_a_title_root() -> None:
    markdown = (
        "# secrets — Generate secure random numbers\n\nIntro text.\n\n"
        "## Generating tokens\n\nThe module provides functions.\n\n"
        "### How many bytes should tokens use?\n\n32 bytes.\n\n"
        "```python\n# not a heading\nimport secrets\n```\n\n"
        "## Other functions\n\n## Recipes\n\nRecipes here.\n"
    )
    sections = split_sections(markdown, title="secrets — Generate secure random numbers")
    assert [(s.anchor, s.headings) for s in sections] == [
        ("", ()),
        ("generating-tokens", ("Generating tokens",)),
        (
            "how-many-bytes-should-tokens-use",
            ("Generating tokens", "How many bytes should tokens use?"),
        ),
        ("recipes", ("Recipes",)),  # "Other functions" has no text: it opens "Recipes"
    ]
    assert sections[3].text.startswith("## Other functions\n\n## Recipes")
    assert "not a heading" in sections[2].text


def test_the_indexed_body_has_the_words_a_reader_sees_and_not_the_link_targets() -> None:
    line = (
        'See [`csv.DictReader`](https://docs.example.org/library/csv.html#csv.DictReader "csv'
        ' reader") and ![diagram](img/flow.png) or <https://example.org/x>, then <b>bold</b>.'
    )
    rendered = MarkdownIt().render(line)  # what a reader sees, as HTML (images: their alt)
    shown = re.sub(r"<[^>]+>", " ", rendered) + " ".join(re.findall(r'alt="([^"]*)"', rendered))
    visible = set(re.findall(r"[a-z]+", shown.lower()))
    indexed = set(re.findall(r"[a-z]+", indexed_line(line).lower()))
    assert {"see", "csv", "dictreader", "diagram", "then", "bold"} <= indexed
    assert "library" not in indexed
    assert "png" not in indexed
    assert "img" not in indexed
    # Every indexed word is one the reader sees, or a part of a camelCase name it shows.
    assert indexed - visible <= {"dict", "reader"}


def test_camel_case_names_are_indexed_with_their_words_too() -> None:
    assert "TemporaryDirectory (Temporary Directory)" in indexed_line("`TemporaryDirectory()`")
    assert "getLogger (get Logger)" in indexed_line("logging.getLogger(name)")
    assert "HTTPServer (HTTP Server)" in indexed_line("class HTTPServer")
    assert indexed_line("plain words only") == "plain words only"


def test_heading_text_is_what_a_reader_sees() -> None:
    line = '#  [`getpass`](file:///x/getpass.html#module-getpass "t") — Portable input¶'
    assert heading_text(line) == "getpass — Portable input"
    assert heading_text("## **Bold** `code` heading ##") == "Bold code heading"


def test_link_share_tells_a_table_of_contents_from_prose() -> None:
    toc = [f"* [Chapter {n}](ch{n}.html)" for n in range(8)]
    prose = ["Some text that explains a thing, with [one link](x.html) in it."]
    assert link_share(toc) > 0.9
    assert link_share(prose) < 0.3
    assert link_share([]) == 0.0


@given(st.text(max_size=80))
def test_a_docs_set_slug_is_always_a_valid_set_name(name: str) -> None:
    assert is_docs_set(docs_set_slug(name))


def test_docs_set_slugs_from_site_names() -> None:
    assert docs_set_slug("Python 3.11.2 documentation") == "python-3.11.2"
    assert docs_set_slug("Trio 0.27 — Docs") == "trio-0.27"
    assert docs_set_slug("Ünïcode Guide") == "unicode"
    assert docs_set_slug("", fallback="urls") == "urls"
    assert not is_docs_set("Has Space")
    assert not is_docs_set("-x")
    assert not is_docs_set("a" * 65)


def test_page_paths_and_url_words() -> None:
    assert page_path("https://Docs.Example.org/en/latest/api.html#x") == (
        "docs.example.org/en/latest/api.html"
    )
    assert page_path("http://h:8000/a?page=2") == "h:8000/a?page=2"
    assert url_words("https://h/library/logging.handlers.html") == "library logging handlers"
    anchors = Anchors()
    assert [anchors.unique(anchor_slug(h)) for h in ("Usage", "Usage", "C++ API")] == [
        "usage",
        "usage-2",
        "c-api",
    ]
