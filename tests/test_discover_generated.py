"""Pages known by what they are, not their names (crawl/links.generated_kind): a search
page or a generated index is left out whatever it is called, and a real page called
search.html is kept. The oracle for real sites is the generators' own output installed by
Debian (Sphinx, rustdoc and mdBook, Javadoc, Doxygen): only Sphinx's search page and
indexes may be flagged, and every Sphinx search page must be."""

from __future__ import annotations

import random
from pathlib import Path

import lxml.html
import pytest

from crawl4ai_llm_docs.crawl.links import generated_kind, page_links
from crawl4ai_llm_docs.testing.hostile.sites import SPHINX_GENINDEX, SPHINX_SEARCH

DOCS = Path("/usr/share/doc")
# Generated sites installed by .ci/run (python3.11-doc, rust-doc, openjdk-17-doc, ...).
SITES = [
    "python3.11/html",
    "python-click-doc/html",
    "python-attr-doc/html",
    "rust-doc/html",
    "openjdk-17-jre-headless",
    "libcommons-lang3-java",
    "libflac-doc",
    "libjsoncpp-doc",
]
SAMPLE = 150  # pages per site, plus every page whose name says search or index

MDBOOK_PAGE = """<html><head><script>window.path_to_searchindex_js = "searchindex.js";</script>
</head><body><div id="mdbook-search-wrapper"><form><input type="search"></form>
<div id="mdbook-searchresults-outer"><ul id="mdbook-searchresults"></ul></div></div>
<main><h1>Appendix</h1><p>Short.</p></main></body></html>"""

MKDOCS_SEARCH = """<html><head><script src="../search/main.js"></script></head><body>
<div role="main"><h1 id="search">Search Results</h1><form id="content_search"><input name="q">
</form><div id="mkdocs-search-results">Searching...</div></div></body></html>"""

POSTGRES_SEARCH = """<html><head><title>Full text search</title></head><body>
<form action="/search/"><input name="q"></form><div role="main"><h1>Full text search</h1>
<p>The database functions in django.contrib.postgres.search ease the use of PostgreSQL's
full text search engine.</p></div></body></html>"""


def kind(html: str) -> str:
    return page_links(html, "https://x.org/docs/page.html").generated


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (SPHINX_SEARCH, "a search page"),
        (MKDOCS_SEARCH, "a search page"),
        (SPHINX_GENINDEX, "a generated index"),
        ('<table class="indextable modindextable"><tr><td>m</td></tr></table>', "a module index"),
        (MDBOOK_PAGE, ""),  # a search box beside the main content, on every page
        (POSTGRES_SEARCH, ""),  # documentation about searching
        (SPHINX_SEARCH.replace("searchindex.js", "x.js").replace("searchtools", "tools"), ""),
    ],
    ids=["sphinx", "mkdocs", "genindex", "modindex", "mdbook", "postgres-search", "no-index"],
)
def test_what_a_page_is(html: str, expected: str) -> None:
    assert kind(html) == expected


@pytest.mark.slow
def test_only_sphinx_search_and_index_pages_are_flagged_on_real_generated_sites() -> None:
    rng = random.Random(25)
    checked = 0
    for site in SITES:
        root = DOCS / site
        if not root.is_dir():
            continue
        pages = sorted(root.rglob("*.html"))
        named = [p for p in pages if "search" in p.name or "index" in p.name]
        for path in sorted(set(rng.sample(pages, min(SAMPLE, len(pages))) + named)):
            doc = lxml.html.document_fromstring(path.read_bytes())
            found = generated_kind(doc)
            checked += 1
            sphinx = (path.parent / "_static" / "searchtools.js").exists()
            if sphinx and path.name == "search.html":
                assert found == "a search page", path
            elif sphinx and path.name.startswith("genindex") and path.name != "genindex.html":
                assert found == "a generated index", path
            elif sphinx and path.name == "py-modindex.html":
                assert found == "a module index", path
            elif found:
                # Only Sphinx's letter overview (genindex.html, a table too) may be one.
                assert sphinx, (path, found)
                assert path.name == "genindex.html", (path, found)
    if checked < 500:
        pytest.skip(f"only {checked} generated pages installed (.ci/run installs them)")
