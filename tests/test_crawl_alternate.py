"""Where a page names its Markdown, and that Markdown normalised (crawl/alternate.py).

Oracles: ``requests.utils.parse_header_links`` reads the Link headers; markdown-it-py (a
CommonMark parser) reads the Markdown before and after normalisation, so "links made
absolute, code left as it was" is checked by a real parser, not by the regexes under test.
"""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from requests.utils import parse_header_links

from crawl4ai_llm_docs.crawl.alternate import (
    advertised,
    beside,
    html_alternates,
    link_header_alternates,
    normalise,
)

PAGE = "https://docs.example.com/guide/install.html"
targets = st.sampled_from(
    ("install.html.md", "/guide/install.md", "../api/x.md", "https://docs.example.com/a.md", "b")
)
rels = st.sampled_from(("alternate", "canonical", "alternate nofollow", "preload", "ALTERNATE"))
types = st.sampled_from(("text/markdown", "text/x-markdown", "text/html", "TEXT/MARKDOWN", None))
# requests splits parameters at every ";" (even quoted ones): its reading is the oracle for
# titles without separators; quoted separators are checked against RFC 8288 below.
titles = st.sampled_from((None, "plain", "two words"))


@settings(deadline=None)  # correctness, not speed: a busy machine is slow
@given(st.lists(st.tuples(targets, rels, types, titles), min_size=1, max_size=5))
def test_link_headers_read_as_a_reference_parser_reads_them(
    links: list[tuple[str, str, str | None, str | None]],
) -> None:
    parts = []
    for target, rel, media, title in links:
        params = [f'rel="{rel}"'] if " " in rel else [f"rel={rel}"]
        if title is not None:
            params.append(f'title="{title}"')
        if media is not None:
            params.append(f'type="{media}"')
        parts.append(f"<{target}>; " + "; ".join(params))
    value = ", ".join(parts)
    expected = [
        urljoin(PAGE, link["url"])
        for link in parse_header_links(value)
        if "alternate" in link.get("rel", "").lower().split()
        and link.get("type", "").lower() in ("text/markdown", "text/x-markdown")
    ]
    assert link_header_alternates(value, PAGE) == expected


def test_quoted_separators_do_not_split_a_link() -> None:
    value = (
        '<a.md>; title="x; rel=alternate"; rel="preload", '
        '<b.md>; title="one, two; <c.md>"; rel="alternate"; type="text/markdown", '
        "<d.md>; rel=alternate; type=text/markdown"
    )
    assert link_header_alternates(value, PAGE) == [
        "https://docs.example.com/guide/b.md",
        "https://docs.example.com/guide/d.md",
    ]


def test_link_elements_in_the_head_with_base_href() -> None:
    html = (
        '<html><head><base href="/v2/"><link rel="stylesheet" href="s.css">'
        '<link rel="alternate" type="text/markdown" href="install.md">'
        '<link rel="alternate" type="application/rss+xml" href="feed.xml">'
        '<link rel="Alternate" type="text/markdown; charset=utf-8" href="/other.md"></head>'
        '<body><link rel="alternate" type="text/markdown" href="/body.md"></body></html>'
    )
    assert html_alternates(html, PAGE) == [
        "https://docs.example.com/v2/install.md",
        "https://docs.example.com/other.md",
    ]
    assert html_alternates("<html><head><title>x</title></head></html>", PAGE) == []


def test_only_alternates_on_the_page_s_own_origin_are_offered() -> None:
    header = '<https://cdn.example.net/install.md>; rel="alternate"; type="text/markdown"'
    html = (
        '<head><link rel="alternate" type="text/markdown" href="http://docs.example.com/x.md">'
        '<link rel="alternate" type="text/markdown" href="install.html.md">'
        '<link rel="alternate" type="text/markdown" href="install.html"></head>'
    )
    assert advertised(PAGE, html, header) == [PAGE + ".md"]  # the page itself is not one


@pytest.mark.parametrize(
    ("url", "files"),
    [
        (PAGE, [PAGE + ".md", "https://docs.example.com/guide/install.md"]),
        (
            "https://h.example/guide/",
            ["https://h.example/guide/index.html.md", "https://h.example/guide/index.md"],
        ),
        ("https://h.example/guide/intro", ["https://h.example/guide/intro.md"]),
        ("https://h.example/v1.2/intro", ["https://h.example/v1.2/intro.md"]),
        ("https://h.example/notes.md", []),
    ],
)
def test_the_md_files_beside_a_page(url: str, files: list[str]) -> None:
    assert beside(url) == files


_md = MarkdownIt("commonmark")
hrefs = st.sampled_from(
    (
        "page-001.html",
        "../up/x.html",
        "/abs/y.html",
        "https://other.example/z",
        "#anchor",
        "mailto:a@b.c",
        "<with space.html>",
    )
)
words = st.sampled_from(("alpha", "beta", "`code](x.html)`", "**bold**", "gamma"))


@st.composite
def markdown_documents(draw: st.DrawFn) -> str:
    blocks = []
    if draw(st.booleans()):
        blocks.append('---\ntitle: "From the front matter"\nslug: x\n---')
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("heading", "paragraph", "fence", "reference", "image")))
        href = draw(hrefs)
        text = " ".join(draw(st.lists(words, min_size=1, max_size=4)))
        if kind == "heading":
            blocks.append(f"## {text}")
        elif kind == "paragraph":
            blocks.append(f'{text} [a link]({href} "t") and {text}  \r')
        elif kind == "fence":
            blocks.append(f"```python\nx = '[kept]({href})'\n\n\nprint(x)   \n```")
        elif kind == "reference":
            blocks.append(f"[ref]: {href}\n\nsee [the ref][ref]")
        else:
            blocks.append(f"![an image]({href})")
    gaps = draw(
        st.lists(
            st.sampled_from(("\n\n", "\n\n\n\n", "\r\n\r\n")),
            min_size=len(blocks),
            max_size=len(blocks),
        )
    )
    return "".join(block + gap for block, gap in zip(blocks, gaps, strict=True))


def _links_and_code(markdown: str) -> tuple[list[str], list[str]]:
    links: list[str] = []
    code: list[str] = []
    for token in _md.parse(markdown):
        if token.type == "fence":
            code.append(token.content)
        for child in token.children or []:
            if child.type == "code_inline":
                code.append(child.content)
            if child.type in ("link_open", "image"):
                links.append(str(child.attrs.get("href") or child.attrs.get("src")))
    return links, code


@settings(deadline=None)  # correctness, not speed: a busy machine is slow
@given(markdown_documents())
def test_normalised_markdown_has_absolute_links_and_the_same_code(markdown: str) -> None:
    base = "https://docs.example.com/guide/page-000.html.md"
    result = normalise(markdown, base)
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    without_front = text.split("---\n", 2)[2] if text.startswith("---\n") else text
    before_links, before_code = _links_and_code(without_front)
    after_links, after_code = _links_and_code(result.markdown)
    assert after_code == before_code
    assert after_links == [
        link if link.startswith("#") else _md.normalizeLink(urljoin(base, _unescaped(link)))
        for link in before_links
    ]
    assert "\r" not in result.markdown
    assert "\n\n\n" not in result.markdown.split("```")[0]
    assert not result.markdown.startswith("---")
    if markdown.startswith("---\n") and not result.markdown.startswith("# "):
        pytest.fail("the front matter's title should become the page's H1")


def _unescaped(link: str) -> str:
    from urllib.parse import unquote

    return unquote(link)


def test_title_from_the_first_h1_or_the_front_matter() -> None:
    assert normalise("Intro\n=====\n\ntext\n", PAGE).title == "Intro"
    assert normalise("```\n# not a title\n```\n\n# Real ## \n", PAGE).title == "Real"
    front = normalise("---\ntitle: 'Set up'\n---\nSome text.\n", PAGE)
    assert (front.title, front.markdown) == ("Set up", "# Set up\n\nSome text.\n")
