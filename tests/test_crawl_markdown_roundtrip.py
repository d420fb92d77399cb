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


TAGS = ["div", "p", "table", "tr", "td", "th", "ul", "li", "dl", "dt", "dd", "span", "em", "b"]
TAGS += ["a", "h1", "h2", "h3", "nav", "blockquote", "details", "summary", "kbd", "var", "tt"]
ATTRIBUTES = [
    "",
    ' href="#x"',
    ' href="javascript:void(0)"',
    ' href="other.html"',
    ' id="x"',
    ' rel="next" href="n.html"',
    ' accesskey="p" href="p.html"',
    ' class="linenos"',
    ' class="language-python"',
    ' onclick="f()"',
]


@st.composite
def _trees(draw: st.DrawFn, depth: int = 0) -> str:
    """Random nesting of the elements the extraction rewrites, with code blocks among them."""
    parts = []
    for _ in range(draw(st.integers(0, 3 if depth < 3 else 0))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            parts.append(html_lib.escape(draw(st.text(ALPHABET, max_size=12)), quote=False))
        elif kind == 1:
            code = draw(st.sampled_from(["x = 1", "a | b", "```", "1\n2", "fn f() {}"]))
            parts.append(f"<pre>{html_lib.escape(code, quote=False)}</pre>")
        else:
            tag = draw(st.sampled_from(TAGS))
            attributes = draw(st.sampled_from(ATTRIBUTES))
            parts.append(f"<{tag}{attributes}>{draw(_trees(depth + 1))}</{tag}>")
    return "".join(parts)


@SETTINGS
@given(_trees())
def test_any_nesting_converts_without_error_into_markdown_a_parser_reads(body: str) -> None:
    markdown = extract(_page(f"<h1>Page</h1><p>Text.</p>{body}"), URL).markdown
    tokens = GFM.parse(markdown)
    assert markdown.startswith("# Page")
    assert all(t.type != "html_block" for t in tokens), markdown
