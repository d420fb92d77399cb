"""What the pages say about their site: its name, title suffix, sections; and page descriptions."""

from __future__ import annotations

import pytest

from crawl4ai_llm_docs.crawl.metadata import read_metadata
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.descriptions import MAX_CHARS, clean, describe, first_sentence
from crawl4ai_llm_docs.outputs.site_structure import (
    OPTIONAL_SECTION,
    ROOT_SECTION,
    SiteSurvey,
    is_secondary,
    survey,
)

SUFFIX = " — Python 3.11.2 documentation"
BASE = "https://docs.example.org/3"


def page(
    index: int, path: str, title: str, *, site_name: str = "", markdown: str = "Text."
) -> Document:
    return Document(
        index=index, url=f"{BASE}/{path}", title=title, markdown=markdown, site_name=site_name
    )


def sphinx_site() -> list[Document]:
    return [
        page(0, "index.html", "3.11.2 Documentation"),
        page(1, "tutorial/index.html", f"The Python Tutorial{SUFFIX}"),
        page(2, "tutorial/appetite.html", f"1. Whetting Your Appetite{SUFFIX}"),
        page(3, "howto/index.html", f"Python HOWTOs{SUFFIX}"),
        page(4, "howto/sorting.html", f"Sorting HOW TO{SUFFIX}"),
        page(5, "library/os.html", f"os — Miscellaneous operating system interfaces{SUFFIX}"),
        page(6, "whatsnew/3.11.html", f"What\u2019s New In Python 3.11{SUFFIX}"),
        page(7, "genindex.html", f"Index{SUFFIX}"),
        page(8, "glossary.html", f"Glossary{SUFFIX}"),
    ]


def test_the_common_title_suffix_names_the_site_and_is_stripped() -> None:
    site = survey(sphinx_site())
    assert site.name == "Python 3.11.2 documentation"
    assert site.clean_title(f"Sorting HOW TO{SUFFIX}") == "Sorting HOW TO"
    # A " — " inside the page's own title stays: only the site's suffix goes.
    assert (
        site.clean_title(f"os — Miscellaneous operating system interfaces{SUFFIX}")
        == "os — Miscellaneous operating system interfaces"
    )
    assert site.clean_title("3.11.2 Documentation") == "3.11.2 Documentation"
    assert site.clean_title("Python 3.11.2 documentation") == "Python 3.11.2 documentation"


def test_sections_follow_url_directories_named_by_their_index_page() -> None:
    site = survey(sphinx_site())
    sections = [site.section(d.url, d.title) for d in sphinx_site()]
    assert sections == [
        ROOT_SECTION,
        "The Python Tutorial",
        "The Python Tutorial",
        "Python HOWTOs",
        "Python HOWTOs",
        "Library",  # no index page crawled: the directory's name
        OPTIONAL_SECTION,  # release notes
        OPTIONAL_SECTION,  # the index
        ROOT_SECTION,
    ]
    assert site.sections == 5  # Docs, Tutorial, HOWTOs, Library, Optional


@pytest.mark.parametrize(
    ("path", "title", "secondary"),
    [
        ("changes.html", "Changes", True),
        ("changelog/", "Changelog", True),
        ("news/2024.html", "Release 2024", True),
        ("release-notes.html", "Release notes", True),
        ("genindex-A.html", "Index \u2013 A", True),
        ("py-modindex.html", "Python Module Index", True),
        ("search.html", "Search", True),
        ("license.html", "License", True),
        ("misc/whats_new.html", "What's new in 2.0 | Site", True),
        ("guide/indexing.html", "Indexing data", False),
        ("guide/history-api.html", "The History API", False),
        ("index.html", "Overview", False),
        ("api.html", "API reference", False),
    ],
)
def test_secondary_pages(path: str, title: str, secondary: bool) -> None:
    assert is_secondary(f"{BASE}/{path}", title) is secondary


def test_og_site_name_wins_over_the_suffix_and_output_title_over_both() -> None:
    documents = [page(i, f"p{i}.html", f"Page {i} | Acme Docs", site_name="Acme") for i in range(3)]
    site = survey(documents)
    assert site.name == "Acme"
    # The shared affix is stripped even though the site's name is another text.
    assert site.clean_title("Page 1 | Acme Docs") == "Page 1"
    assert survey(documents, title="My Title").name == "My Title"
    # The site's name is cut from a title that no other page shares, before or after.
    assert site.clean_title("Acme | Lone page") == "Lone page"
    assert site.clean_title("Lone page · Acme") == "Lone page"


def test_a_site_name_as_prefix_and_the_root_title_as_last_resort() -> None:
    prefixed = [page(i, f"p{i}", f"Acme - Page {i}") for i in range(4)]
    site = survey(prefixed)
    assert (site.name, site.clean_title("Acme - Page 2")) == ("Acme", "Page 2")
    untitled = [page(0, "", "Welcome to Foo"), page(1, "a", "Alpha"), page(2, "b", "Beta")]
    assert survey(untitled).name == "Welcome to Foo"
    assert survey([page(0, "a", "Alpha"), page(1, "b", "Beta")]).name == ""


def test_one_suffix_on_a_minority_of_titles_is_not_the_sites() -> None:
    documents = [page(0, "a", "A - B"), page(1, "b", "C"), page(2, "c", "D"), page(3, "d", "E")]
    site = survey(documents)
    assert site.affix is None
    assert site.clean_title("A - B") == "A - B"


def test_section_names_never_collide_nor_claim_optional() -> None:
    documents = [
        page(0, "a/index.html", "Guide"),
        page(1, "b/index.html", "Guide"),
        page(2, "optional/x.html", "X"),
        page(3, "docs/index.html", "Docs"),
    ]
    site = survey(documents)
    names = [site.section(d.url, d.title) for d in documents]
    assert names == ["Guide", "B", "Optional pages", "Docs"]
    # A "/docs/" directory beside the root page: the root's pages take another name.
    rooted = [page(0, "index.html", "Home"), page(1, "docs/a.html", "A"), page(2, "b.html", "B")]
    site = survey(rooted)
    assert [site.section(d.url, d.title) for d in rooted] == ["Overview", "Docs", "Overview"]


def test_survey_memory_is_per_directory_not_per_page() -> None:
    pages = SiteSurvey()
    for index in range(5_000):
        pages.add(f"{BASE}/guide/p{index}.html", f"Page {index} - {index % 3}")
    assert len(pages._primary_dirs) == 1
    assert len(pages._index_titles) == 0
    assert pages.finish().affix is None  # no shared suffix among 3 alternatives of 1/3 each


# ---------------------------------------------------------------- descriptions


def test_description_prefers_the_llm_then_the_meta_then_the_first_sentence() -> None:
    base = Document(index=0, url="u", title="T", markdown="# T\n\nFirst one here. Second.")
    assert describe(base) == "First one here."
    with_meta = Document(**{**_fields(base), "meta_description": "From the <meta> tag."})
    assert describe(with_meta) == "From the tag."
    with_llm = Document(**{**_fields(with_meta), "description": "  From the\n LLM. "})
    assert describe(with_llm) == "From the LLM."
    empty = Document(index=0, url="u", title="Only a title", markdown="")
    assert describe(empty) == "Only a title"
    wordless = Document(index=0, url="https://a.example/guide/x.html", title="\u00b6", markdown="")
    assert describe(wordless) == "The page at /guide/x.html"  # never an empty description


def _fields(document: Document) -> dict[str, object]:
    return {name: getattr(document, name) for name in document.__struct_fields__}


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        (
            "**Source code:** [Lib/os.py](https://x/os.py)\n\nThis module does things. More.",
            "This module does things.",
        ),
        (
            "```python\ncode = 1\n```\n\n| a | b |\n|---|---|\n\nThe real text is here.",
            "The real text is here.",
        ),
        (
            "Use e.g. the `x` flag in v3.11 here. Next sentence.",
            "Use e.g. the `x` flag in v3.11 here.",
        ),
        (
            "See [the *guide*](https://x/g) for all the details!",
            "See the guide for all the details!",
        ),
        ("Parts of the documentation:\n\n- one\n- two", "Parts of the documentation:"),
        ("- only a list item\n- another", "only a list item"),
        ("A | B | C | D\n\nWords of a real sentence.", "Words of a real sentence."),
        (
            "Each `__attrs_attrs__` and `unsafe_hash` stay, and snake_case_words too.",
            "Each `__attrs_attrs__` and `unsafe_hash` stay, and snake_case_words too.",
        ),
        ("Some *emphasis* and __strong__ text go.", "Some emphasis and strong text go."),
        (
            "The [`dis`](https://x/dis.html#module-dis) module supports the analysis.",
            "The `dis` module supports the analysis.",
        ),
        (
            "New in version 3.11.\n\nThis module provides an interface for parsing.",
            "This module provides an interface for parsing.",
        ),
        ("", ""),
    ],
)
def test_first_sentence(markdown: str, expected: str) -> None:
    assert first_sentence(markdown) == expected


def test_clean_cuts_long_text_at_a_word() -> None:
    text = clean("word " * 100)
    assert len(text) <= MAX_CHARS
    assert text.endswith("word…")
    assert clean("a\nb\t c  ¶") == "a b c"


# ---------------------------------------------------------------- metadata


def test_metadata_from_the_head() -> None:
    html = """<!doctype html><html><head><title>T</title>
    <meta property="og:site_name" content=" Acme  Docs ">
    <meta name="description" content="">
    <meta property="og:description" content="What Acme is.">
    </head><body><meta name="description" content="not the head"></body></html>"""
    meta = read_metadata(html)
    assert (meta.site_name, meta.description) == ("Acme Docs", "What Acme is.")
    assert read_metadata("") == read_metadata("<html><body>no head</body></html>")
    assert read_metadata('<meta name="Description" content="Plain.">').description == "Plain."
