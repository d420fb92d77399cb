"""Markdown that reads back as the HTML meant it (crawl/shapes.py, languages.py, convert.py,
the parse in extract.py), each mechanism on small HTML, read back by markdown-it-py where the
question is how a CommonMark/GFM parser sees it."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from crawl4ai_llm_docs.crawl.extract import extract

URL = "https://docs.example.org/guide/page.html"
GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _md(body: str, head: str = "") -> str:
    html = f"<html><head><title>T</title>{head}</head><body><main>{body}</main></body></html>"
    return extract(html, URL).markdown


def _fences(markdown: str) -> list[tuple[str, str]]:
    return [(t.info, t.content) for t in GFM.parse(markdown) if t.type == "fence"]


def _code_spans(markdown: str) -> list[str]:
    return [
        child.content
        for token in GFM.parse(markdown)
        if token.type == "inline"
        for child in token.children or []
        if child.type == "code_inline"
    ]


def test_xhtml_with_an_encoding_declaration_is_read() -> None:
    page = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!DOCTYPE html PUBLIC '
        '"-//W3C//DTD XHTML 1.0 Transitional//EN" "x.dtd"><html xmlns="http://www.w3.org/1999/xhtml">'
        "<head><title>9.16. JSON Functions</title></head><body><div class='sect1'><h2>JSON</h2>"
        "<p>Use <code>jsonb</code>.</p></div></body></html>"
    )
    for html in (page, "\ufeff" + page):
        result = extract(html, URL)
        assert "Use `jsonb`." in result.markdown
        assert result.problem == ""


def test_a_page_with_text_but_no_content_says_why_and_a_shell_says_nothing() -> None:
    only_navigation = (
        "<html><body><nav><a href='a.html'>Alpha</a> <a href='b.html'>Beta</a> and more words "
        "of a menu</nav></body></html>"
    )
    result = extract(only_navigation, URL)
    assert result.markdown == ""
    assert "words of text" in result.problem
    assert "JavaScript" not in result.problem
    shell = "<html><body><div id='app'></div><script>var x = 'lots of words here';</script></body>"
    assert extract(shell + "</html>", URL).problem == ""


@pytest.mark.parametrize(
    "code",
    ["```py\nprint(1)\n```", "~~~\nx\n~~~", "a ```` b", "`", "line\n\n\n\nafter blank lines"],
)
def test_a_fence_is_longer_than_any_run_of_backticks_in_the_code(code: str) -> None:
    escaped = code.replace("&", "&amp;").replace("<", "&lt;")
    markdown = _md(f"<p>Before.</p><pre>{escaped}</pre><p>After.</p>")
    assert _fences(markdown) == [("", code + "\n")]
    assert "After." in markdown.split(_fences(markdown)[0][1])[-1]


def test_pipes_in_table_cells_stay_in_their_cell() -> None:
    body = (
        "<table><tr><th>Operator</th><th>Meaning</th></tr>"
        "<tr><td><code>|</code></td><td>Bitwise OR, as in <code>a | b</code></td></tr>"
        "<tr><td><code>||</code></td><td>x|y</td></tr></table>"
    )
    tokens = GFM.parse(_md(body))
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = [t for t in tokens if t.type in ("td_open", "th_open")]
    assert len(rows) == 3
    assert len(cells) == 6
    assert _code_spans(_md(body)) == ["|", "a | b", "||"]


def test_a_table_whose_cells_hold_blocks_becomes_a_list_per_row() -> None:
    body = (
        "<table><tr><th>Name</th><th>Example</th></tr>"
        "<tr><td>map</td><td><pre>xs.map(f)</pre></td></tr>"
        "<tr><td>fold</td><td><ul><li>left</li><li>right</li></ul></td></tr></table>"
    )
    markdown = _md(body)
    assert "|" not in markdown.replace("**Name** · **Example**", "")
    assert "**Name** · **Example**" in markdown
    assert _fences(markdown) == [("", "xs.map(f)\n")]
    items = [t for t in GFM.parse(markdown) if t.type == "list_item_open" and t.level == 1]
    assert len(items) == 2
    assert "- map\n" in markdown
    assert "**Example:**" in markdown


def test_layout_tables_of_one_row_or_one_column_unwrap() -> None:
    markdown = _md(
        "<table><tr><td>&nbsp;</td><td><pre class='example'>#include &lt;stdio.h&gt;</pre></td>"
        "</tr></table><table><tr><td>First</td></tr><tr><td>Second</td></tr></table>"
    )
    assert "|" not in markdown
    assert _fences(markdown) == [("", "#include <stdio.h>\n")]
    assert "First\n\nSecond" in markdown


@pytest.mark.parametrize(
    "listing",
    [
        # Pygments / Sphinx: a table of a numbers cell and a code cell.
        '<table class="highlighttable"><tr><td class="linenos"><div class="linenodiv"><pre>1\n2'
        '</pre></div></td><td class="code"><div class="highlight"><pre>a = 1\nb = 2</pre></div>'
        "</td></tr></table>",
        # YARD: the same with classes of its own.
        '<table class="source_code"><tr><td><pre class="lines">1\n2</pre></td><td><pre '
        'class="code">a = 1\nb = 2</pre></td></tr></table>',
        # gtk-doc: a numbers cell classed listing_lines.
        '<table class="listing_frame"><tr><td class="listing_lines"><pre>1\n2</pre></td><td '
        'class="listing_code"><pre class="programlisting">a = 1\nb = 2</pre></td></tr></table>',
        # Inline numbers inside the block.
        '<pre><span class="linenos">1</span>a = 1\n<span class="linenos">2</span>b = 2</pre>',
    ],
)
def test_line_number_gutters_go(listing: str) -> None:
    assert _fences(_md(listing)) == [("", "a = 1\nb = 2\n")]


def test_numbers_that_are_the_code_stay() -> None:
    markdown = _md("<p>Output:</p><pre>1\n2\n3</pre>")
    assert _fences(markdown) == [("", "1\n2\n3\n")]


@pytest.mark.parametrize(
    ("html", "language"),
    [
        ('<pre><code class="language-rust">x</code></pre>', "rust"),
        ('<pre class="lang-go">x</pre>', "go"),
        (
            '<div class="highlight-python3 notranslate"><div class="highlight"><pre>x</pre></div>'
            "</div>",
            "python",
        ),
        (
            '<div class="highlight-default notranslate"><div class="highlight"><pre>x</pre></div>'
            "</div>",
            "",
        ),  # the project's default lexer: not in the page, so unknown
        ('<div class="highlight-none"><pre>x</pre></div>', ""),
        ('<pre class="brush: js; gutter: false">x</pre>', "js"),
        ('<pre class="cpp">x</pre>', "cpp"),  # qdoc
        ('<pre class="ruby">x</pre>', "ruby"),  # RDoc
        ('<pre class="code ruby">x</pre>', "ruby"),  # YARD
        ('<pre class="rust rust-example-rendered">x</pre>', "rust"),  # rustdoc
        ('<pre class="playground"><code class="language-rust edition2021">x</code></pre>', "rust"),
        ('<pre class="sourceCode haskell"><code>x</code></pre>', "haskell"),  # pandoc
        ('<pre data-lang="toml">x</pre>', "toml"),
        ('<pre><code class="hljs yaml">x</code></pre>', "yaml"),
        ('<pre class="programlisting">x</pre>', ""),  # DocBook: no language declared
        ('<pre class="example">x</pre>', ""),  # Texinfo
        ('<div class="python"><pre>x</pre></div>', ""),  # a bare class on a wrapper: not read
    ],
)
def test_code_language_comes_from_the_declaration_never_a_guess(html: str, language: str) -> None:
    assert _fences(_md(html)) == [(language, "x\n")]


def test_whitespace_around_inline_code_and_links_is_kept() -> None:
    body = (
        "<p>named <em><code>search_seq_col_name</code></em>\nwill be added, stored within the\n"
        '<a href="h.html"> GHashTable</a>; <b>See also</b>\n<a href="q.html">QSerialPort</a>.</p>'
        "<p>the <em><code>n</code></em>th item</p>"
    )
    markdown = _md(body)
    assert "named *`search_seq_col_name`* will be added" in markdown
    assert "stored within the [GHashTable](" in markdown
    assert "**See also** [QSerialPort](" in markdown
    assert "the `n`th item" in markdown  # emphasis around glued code goes, the code stays


def test_kbd_samp_var_tt_are_inline_code_and_nested_keys_one_span() -> None:
    body = (
        "<p>Press <kbd class='compound'><kbd>Control</kbd>-<kbd>A</kbd></kbd>, read "
        "<samp>%M</samp>, set <var>count</var>, call <tt>Class&lt;<a href='d.html'>Doc</a>&gt;</tt>."
        "</p>"
    )
    assert _code_spans(_md(body)) == ["Control-A", "%M", "count", "Class<Doc>"]


def test_definition_terms_stand_apart_from_their_definitions() -> None:
    markdown = _md(
        "<dl><dt>--verbose</dt><dd><p>Say more.</p></dd><dt><code>f(x)</code></dt><dd>Calls.</dd>"
        "</dl>"
    )
    assert "**--verbose**\n\nSay more." in markdown
    assert "`f(x)`\n\nCalls." in markdown


def test_summary_is_a_block_not_bold_around_headings() -> None:
    markdown = _md("<details><summary><h3>impl Clone</h3></summary><p>Docs.</p></details>")
    assert "### impl Clone" in markdown
    assert "**" not in markdown


def test_heading_that_is_one_link_keeps_its_words() -> None:
    markdown = _md('<h1 class="chapter"> <a href="toc.html#TOC17">4. Sources</a> </h1><p>x</p>')
    assert markdown.startswith("# 4. Sources\n")
