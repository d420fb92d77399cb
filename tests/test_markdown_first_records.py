"""What Markdown first leaves behind: page files named as llms.txt serves Markdown
(``output.pages_naming``), ``source_format`` in their front matter, in the ``page_crawled``
event (added without breaking older lines) and in the page state (older cache entries read
as HTML pages made under ``never``, so the first run with Markdown first fetches them whole).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.cache.page_state import EXTRACTION_VERSION, PageStateStore
from crawl4ai_llm_docs.crawl import refresh
from crawl4ai_llm_docs.models import Document, Page, UrlEntry
from crawl4ai_llm_docs.observe.events import PageCrawled, decode_event
from crawl4ai_llm_docs.outputs.pages_dir import page_path, write_pages_dir

FIXTURE = Path(__file__).parent / "fixtures" / "cache_v1"
URL = "https://docs.example.com/guide/install.html"
segments = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
names = st.tuples(segments, st.sampled_from(("", ".html", ".htm", ".php", ".txt")))


@settings(deadline=None)  # correctness, not speed: a busy machine is slow
@given(directories=st.lists(segments, max_size=4), name=names, trailing=st.booleans())
def test_page_html_md_is_the_url_path_with_md_appended(
    directories: list[str], name: tuple[str, str], trailing: bool
) -> None:
    path = "/" + "/".join([*directories, "".join(name)]) + ("/" if trailing else "")
    url = "https://docs.example.com" + quote(path)
    expected = urlsplit(url).path + ("index.html" if trailing else "") + ".md"
    assert "/" + page_path(url, naming="page.html.md").as_posix() == expected
    default = page_path(url).as_posix()  # page.md: the extension replaced, as before
    assert default.endswith(".md")
    assert not default.endswith(".html.md")


def test_page_html_md_keeps_the_host_and_query_rules() -> None:
    assert page_path("https://h.example/a/", with_host=True, naming="page.html.md") == (
        PurePosixPath("h.example/a/index.html.md")
    )
    assert page_path("https://h.example/notes.md", naming="page.html.md") == PurePosixPath(
        "notes.md"
    )  # a Markdown URL is not given a second .md


def _document(index: int, url: str, source_format: str) -> Document:
    return msgspec.convert(
        {
            "index": index,
            "url": url,
            "title": f"Page {index}",
            "markdown": f"# Page {index}\n\nText {index}.\n",
            "source_format": source_format,
        },
        Document,
    )


def test_page_files_say_where_their_text_came_from(tmp_path: Path) -> None:
    documents = [
        _document(0, "https://docs.example.com/a.html", "markdown"),
        _document(1, "https://docs.example.com/b/", "html"),
    ]
    written = write_pages_dir(
        tmp_path, documents, generated_at=datetime.now(UTC), naming="page.html.md"
    )
    assert written == 2
    first = (tmp_path / "a.html.md").read_text()
    second = (tmp_path / "b" / "index.html.md").read_text()
    assert 'source_format: "markdown"' in first.split("---")[1]
    assert 'source_format: "html"' in second.split("---")[1]


def test_page_crawled_gains_fields_without_breaking_older_lines() -> None:
    older = (
        b'{"event":"page_crawled","timestamp":"2026-12-01T00:00:00Z","level":"info",'
        b'"run_id":"r","url":"u","mode":"http","status":200,"elapsed_ms":1.0,"bytes":3,'
        b'"title":"t","freshness":null}'
    )
    event = decode_event(older)
    assert isinstance(event, PageCrawled)
    assert (event.source_format, event.markdown_problem) == ("html", None)
    newer = older[:-1] + b',"source_format":"markdown","markdown_problem":null}'
    decoded = decode_event(newer)
    assert isinstance(decoded, PageCrawled)
    assert decoded.source_format == "markdown"


async def test_an_older_page_state_is_an_html_page_made_under_never(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "cache")
    store = PageStateStore(tmp_path / "cache")
    state = await store.get(URL)
    assert state is not None
    assert (state.source_format, state.prefer_markdown) == ("html", "never")
    # Made by an older extraction too: fetched in full whatever the mode (issue 23) ...
    assert refresh.validators_for(store, state, discovering=False, prefer_markdown="never") is None
    # ... and once the extraction is today's, it stands for a page made under "never" only.
    state = msgspec.structs.replace(state, extraction=EXTRACTION_VERSION)
    assert refresh.validators_for(store, state, discovering=False, prefer_markdown="never")
    assert refresh.validators_for(store, state, discovering=False, prefer_markdown="auto") is None


async def test_a_state_remembers_its_format_and_a_304_keeps_it(tmp_path: Path) -> None:
    store = PageStateStore(tmp_path)
    page = Page(
        index=0,
        url=URL,
        final_url=URL,
        title="Install",
        markdown="# Install\n",
        status=200,
        error=None,
        elapsed=0.1,
        bytes=10,
        source_format="markdown",
    )
    await store.record(page, None, etag='"e1"', last_modified=None, prefer_markdown="auto")
    state = await store.get(URL)
    assert state is not None
    assert (state.source_format, state.prefer_markdown) == ("markdown", "auto")
    validators = refresh.validators_for(store, state, discovering=False, prefer_markdown="auto")
    assert validators is not None
    assert validators.etag == '"e1"'
    stored = refresh.stored_page(
        UrlEntry(index=0, url=URL, line=1),
        state,
        final_url=URL,
        status=304,
        elapsed=0.0,
        mode="http",
    )
    reused = await store.reuse(stored, state)
    assert (reused.source_format, reused.markdown) == ("markdown", "# Install\n")
