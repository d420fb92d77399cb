"""Property tests: whatever characters a page holds, a CommonMark/GFM parser (markdown-it-py)
reads the extracted Markdown back as the same text, the same code and the same table.

Text is drawn from the characters Markdown gives a meaning to (backticks, brackets, ``<``,
``&``, ``_``, ``*``, ``~``, ``|``, ``#``, backslashes, list markers) mixed with letters,
digits and spaces, so that every escape the extraction makes, or fails to make, is exercised.
"""

from __future__ import annotations

import html as html_lib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from crawl4ai_llm_docs.crawl.extract import extract

URL = "https://docs.example.org/guide/page.html"
GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])
SYNTAX = "`*_[]()<>&#!|~\\-+.:;=\"'/{}"
ALPHABET = st.sampled_from(list(SYNTAX) + list("abcXYZ019") + [" "] * 4)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _page(body: str) -> str:
    return f"<html><head><title>T</title></head><body><main>{body}</main></body></html>"


def _text_of(markdown: str) -> str:
    """The text markdown-it reads: the inline text and code of every block, one space apart."""
    parts = []
    for token in GFM.parse(markdown):
        if token.type == "inline":
            parts.append(
                "".join(
                    child.content
                    for child in token.children or []
                    if child.type in ("text", "code_inline")
                )
            )
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
    return " ".join(" ".join(parts).split())


@SETTINGS
@given(st.text(ALPHABET, min_size=1, max_size=60))
def test_prose_reads_back_as_the_same_text(text: str) -> None:
    body = f"<p>Start {html_lib.escape(text, quote=False)} end.</p>"
    markdown = extract(_page(body), URL).markdown
    assert _text_of(markdown) == " ".join(f"Start {text} end.".split()), markdown
    assert all(t.type != "html_inline" for t in GFM.parse(markdown)), markdown


@SETTINGS
@given(st.lists(st.sampled_from([*"`~ \nab|*_<>", "```", "~~~", "    "]), min_size=1, max_size=40))
def test_a_code_block_reads_back_as_the_same_code(pieces: list[str]) -> None:
    code = "\n".join(line.rstrip() for line in "".join(pieces).split("\n")).strip("\n")
    if not code.strip():
        return
    body = f"<p>Before.</p><pre>{html_lib.escape(code, quote=False)}</pre><p>After.</p>"
    markdown = extract(_page(body), URL).markdown
    fences = [t.content for t in GFM.parse(markdown) if t.type == "fence"]
    assert fences == [code + "\n"], markdown
    assert markdown.rstrip().endswith("After."), markdown


@SETTINGS
@given(st.text(ALPHABET, min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_inline_code_reads_back_as_one_span_even_in_a_table_cell(code: str) -> None:
    escaped = html_lib.escape(code, quote=False)
    body = (
        f"<p>Use <code>{escaped}</code> here.</p><table><tr><th>a</th><th>b</th></tr>"
        f"<tr><td><code>{escaped}</code></td><td>x</td></tr></table>"
    )
    markdown = extract(_page(body), URL).markdown
    spans = [
        child.content
        for token in GFM.parse(markdown)
        if token.type == "inline"
        for child in token.children or []
        if child.type == "code_inline"
    ]
    wanted = " ".join(code.split())
    # CommonMark strips one space at each end of a span that has text besides spaces.
    assert [" ".join(span.split()) for span in spans] == [wanted, wanted], markdown
    cells = [t for t in GFM.parse(markdown) if t.type in ("td_open", "th_open")]
    assert len(cells) == 4, markdown
