"""Chrome found by what an element is (crawl/chrome.py), each rule on small HTML, with the
near misses that must stay: words alone never remove anything."""

from __future__ import annotations

import pytest

from crawl4ai_llm_docs.crawl.extract import extract

URL = "https://docs.example.org/guide/page.html"
PROSE = "<p>This paragraph is the real content of the page, long enough to be one.</p>"


def _md(body: str, *, title: str = "T") -> str:
    html = f"<html><head><title>{title}</title></head><body><main>{body}</main></body></html>"
    return extract(html, URL).markdown


@pytest.mark.parametrize(
    "bar",
    [
        # DocBook: Prev / Up / Home / Next with accesskeys, among section titles.
        '<table><tr><td><a accesskey="p" href="a.html">Prev</a></td><td><a accesskey="u" '
        'href="u.html">Up</a></td><td><a accesskey="n" href="b.html">Next</a></td></tr>'
        '<tr><td>9.15. XML Functions</td><td><a accesskey="h" href="index.html">Home</a></td>'
        "<td>9.17. Sequence Functions</td></tr></table>",
        # Texinfo: "Next: …, Previous: …, Up: …" with rel links.
        '<div><p>Next: <a href="n.html" rel="next">Keys</a>, Previous: <a href="p.html" '
        'rel="prev">Intro</a>, Up: <a href="u.html" rel="up">Top</a> &nbsp; [<a href="c.html" '
        'rel="contents">Contents</a>]</p></div>',
        # texi2html: a bar of bracketed arrows, no rel at all.
        '<table><tr><td>[<a href="a.html"> &lt;&lt; </a>]</td><td>[<a href="b.html"> &gt;&gt; </a>]'
        '</td><td>[<a href="toc.html">Top</a>]</td><td>[<a href="toc.html#c">Contents</a>]</td>'
        '<td>[<a href="about.html"> ? </a>]</td></tr></table>',
        # gtk-doc: image links whose alternative text says where they go.
        '<table><tr><td><a accesskey="h" href="index.html"><img src="home.png" alt="Home"></a>'
        '</td><td><a accesskey="u" href="u.html"><img src="up.png" alt="Up"></a></td></tr></table>',
    ],
)
@pytest.mark.parametrize("where", ["top", "bottom"])
def test_navigation_bars_at_the_edges_go(bar: str, where: str) -> None:
    body = bar + "<h1>Page</h1>" + PROSE if where == "top" else "<h1>Page</h1>" + PROSE + bar
    markdown = _md(body)
    assert "real content" in markdown
    for word in ("Prev", "Next:", "Home", "Contents", "&lt;&lt;", "<<", ">>", "Up"):
        assert word not in markdown, (word, markdown)


def test_a_bar_of_navigation_links_goes_even_in_the_middle() -> None:
    bar = (
        '<p>[<a href="a.html">Prev</a>] [<a href="b.html">Next</a>] '
        '[<a href="index.html">Index</a>]</p>'
    )
    markdown = _md("<h1>Page</h1>" + PROSE + bar + "<h2>More</h2>" + PROSE)
    assert "Prev" not in markdown
    assert "Index" not in markdown
    assert markdown.count("real content") == 2


@pytest.mark.parametrize(
    ("kept", "words"),
    [
        # Navigation words inside prose are words, at the bottom edge too.
        (
            '<p>Read the <a href="next.html">next</a> chapter, then the <a href="index.html">'
            "index</a>, and go back up when done.</p>",
            ("[next](", "[index](", "go back up"),
        ),
        # One rel=next link with a sentence around it.
        (
            '<p>Continue with <a rel="next" href="n.html">installing the package</a> on your '
            "machine.</p>",
            ("Continue with [installing the package](",),
        ),
        # A list of links to other pages is content (a chapter's index), wherever it is.
        (
            '<ul><li><a href="a.html">Arrays</a></li><li><a href="b.html">Buffers</a></li></ul>',
            ("[Arrays](", "[Buffers]("),
        ),
    ],
)
@pytest.mark.parametrize("where", ["top", "bottom"])
def test_navigation_words_and_link_lists_that_are_content_stay(
    kept: str, words: tuple[str, ...], where: str
) -> None:
    body = kept + "<h1>Page</h1>" + PROSE if where == "top" else "<h1>Page</h1>" + PROSE + kept
    markdown = _md(body)
    for word in words:
        assert word in markdown, (word, markdown)


@pytest.mark.parametrize(
    "heading",
    [
        '<h2 id="usage">Usage<a class="x" href="#usage">¶</a></h2>',
        '<h2 id="usage">Usage <a href="#usage">#</a></h2>',
        '<h2 id="usage">Usage <a href="#usage">link</a></h2>',  # whatever its text
        '<a name="usage"></a><h2>Usage <a href="#usage">§</a></h2>',
        '<section id="usage"><h2>Usage<a href="#usage" title="Permalink">🔗</a></h2></section>',
        '<h2 id="usage"><a href="#usage">Usage</a></h2>',  # the heading's own words stay
    ],
)
def test_permalinks_of_headings_go_whatever_their_text(heading: str) -> None:
    markdown = _md(heading + PROSE)
    assert "## Usage\n" in markdown, markdown
    assert "](" not in markdown


def test_self_links_of_members_keep_their_words_and_marks_go() -> None:
    body = (
        '<table><tr><th>Name</th><th>Description</th></tr><tr><td><a id="invalid" '
        'href="#invalid"><code>ATTR_INVALID</code></a></td><td>Never happens.</td></tr></table>'
        '<p class="src" id="v:fmap"><a id="v:f" class="def">fmap</a> :: a -&gt; b '
        '<a href="#v:f" class="selflink">#</a></p>'
    )
    markdown = _md(body)
    assert "| `ATTR_INVALID` | Never happens. |" in markdown
    assert "fmap :: a -> b" in markdown
    assert "#" not in markdown.replace("#v", "")
    # A link to another anchor of the page is a real link.
    assert "[other](" in _md('<p id="x">See the <a href="#y">other</a> part.</p><p id="y">Y</p>')


@pytest.mark.parametrize(
    ("link", "gone"),
    [
        ('<a href="src/Data.List.html#map">Source</a>', True),  # Haddock
        ('<a class="srclink" href="../src/std/io/error.rs.html#97">[src]</a>', True),
        ('<a href="_modules/pkg/mod.html#f">[source]</a>', True),  # Sphinx viewcode
        ('<a href="https://git.example.org/p/-/blob/main/lib/a.c#L12">[src]</a>', True),
        ('<a href="tutorial.html">Source</a>', False),  # a page about sources: a real link
    ],
)
def test_view_source_links_go(link: str, gone: bool) -> None:
    markdown = _md(f"<p><code>map :: (a -&gt; b) -&gt; [a] -&gt; [b]</code> {link}</p>")
    assert ("ource" not in markdown and "src" not in markdown) is gone, markdown


def test_a_source_link_inside_a_sentence_stays() -> None:
    body = (
        '<p>You can read the <a href="https://git.example.org/p/blob/main/a.py">source</a> of '
        "this module on the project's forge.</p>"
    )
    assert "read the [source](" in _md(body)


@pytest.mark.parametrize(
    "control",
    [
        '<a href="javascript:void(0)">[\u2212]</a>',
        '<a href="#">collapse</a>',
        '<span onclick="toggle(this)">Show all</span>',
        '<span class="method-click-advice">click to toggle source</span>',
        "<button>Copy</button>",
        '<span class="x">Expand all</span>',
    ],
)
def test_toggles_and_controls_go(control: str) -> None:
    markdown = _md(f"<h1>Page</h1><div>{control}</div>{PROSE}")
    assert markdown.startswith("# Page\n\nThis paragraph"), markdown


def test_a_long_script_link_keeps_its_sentence_and_controls_inside_code_stay() -> None:
    markdown = _md(
        "<p><a href='javascript:go()'>Read the whole guide about the API first</a>.</p>"
        "<pre>let v = xs.iter().copied();\n<span>Show all</span></pre>"
    )
    assert "Read the whole guide about the API first." in markdown
    assert "```\nlet v = xs.iter().copied();\nShow all\n```" in markdown


@pytest.mark.parametrize(
    "footer",
    [
        '<div class="footer"><hr>Generated by GTK-Doc V1.33.1</div>',
        '<p><font size="-1">This document was generated by <em>Bruno</em> on <em>July, 26 2020'
        '</em> using <a href="https://www.nongnu.org/texi2html/"><em>texi2html 1.78a</em></a>.'
        "</font></p>",
        '<hr>This document was created by <a href="/cgi-bin/man/man2html">man2html</a>, using '
        "the manual pages.<br>Time: 12:06:21 GMT, January 02, 2023",
        '<address class="footer"><small>Generated on Mon Jan 2 2023 by Doxygen 1.9.4</small>'
        "</address>",
    ],
)
def test_generator_footers_at_the_bottom_go(footer: str) -> None:
    markdown = _md("<h1>Page</h1>" + PROSE + footer)
    assert markdown.strip().endswith("to be one."), markdown


def test_a_sentence_that_starts_like_a_footer_stays_in_the_middle() -> None:
    body = "<h1>Page</h1><p>Generated by the compiler, these files are never edited.</p>" + PROSE
    assert "Generated by the compiler" in _md(body)


def test_in_page_contents_go_with_their_label_and_other_pages_lists_stay() -> None:
    contents = (
        '<div class="topic"><p class="topic-title">Contents</p><ul><li><a href="#a">1 Alpha</a>'
        '<ul><li><a href="#a1">1.1 Sub</a></li></ul></li><li><a href="page.html#b">2 Beta</a>'
        "</li></ul></div>"
    )
    body = f'<h1>Page</h1>{contents}<h2 id="a">Alpha</h2>{PROSE}<h2 id="b">Beta</h2>{PROSE}'
    markdown = _md(body)
    assert "Contents" not in markdown
    assert "1.1 Sub" not in markdown
    assert "## Alpha" in markdown
    other = '<ul><li><a href="a.html#x">Alpha</a></li><li><a href="b.html">Beta</a></li></ul>'
    assert "[Alpha](" in _md("<h1>Page</h1>" + other + PROSE)


def test_a_heading_repeated_right_after_itself_goes_once() -> None:
    markdown = _md("<h1>Hash Tables</h1><div><h2>Hash  tables</h2></div>" + PROSE)
    assert markdown.count("Hash") == 1
    kept = _md("<h1>Hash Tables</h1>" + PROSE + "<h2>Hash Tables</h2>" + PROSE)
    assert kept.count("Hash Tables") == 2  # text between: a section of that name


def test_unlabelled_in_page_links_go_only_first_thing_under_the_heading() -> None:
    toc = (
        '<div class="toc"><dl><dt><a href="#a">9.1. Alpha</a></dt><dt><a href="page.html#b">'
        "9.2. Beta</a></dt></dl></div>"
    )
    sections = f'<h2 id="a">Alpha</h2>{PROSE}<h2 id="b">Beta</h2>{PROSE}'
    markdown = _md(f'<div class="titlepage"><h1>9. Page</h1></div>{toc}{sections}')
    assert "9.1. Alpha" not in markdown
    assert "## Alpha" in markdown
    # The same links after some prose are content ("See also" a member of the page).
    see_also = (
        '<p>See also:</p><ul><li><a href="#a">alpha()</a></li><li><a href="#b">beta()</a></li></ul>'
    )
    assert "[alpha()](" in _md(f"<h1>Page</h1>{PROSE}{see_also}{sections}")
