"""Main-content extraction and the small parsers of the crawl stage; no network."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest

from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai
from crawl4ai_llm_docs.fetch.http import decode_html, parse_retry_after
from crawl4ai_llm_docs.fetch.retry import RetryPolicy
from crawl4ai_llm_docs.testing.site.server import NAV_MARKERS, generated_page

# crawl4ai writes its folder at import: keep it out of the home directory.
prepare_crawl4ai(Path(tempfile.gettempdir()) / "crawl4ai-llm-docs-tests")

from crawl4ai_llm_docs.crawl.extract import extract  # noqa: E402

URL = "https://docs.example.org/guide/page.html"


def _page(body: str, *, title: str = "T", chrome: str = "") -> str:
    return f"<html><head><title>{title}</title></head><body>{chrome}{body}</body></html>"


NAV = '<nav class="sidebar"><a href="/a">Sidebar link</a></nav><header>Top header</header>'
FOOTER = "<footer>Footer text</footer>"


@pytest.mark.parametrize(
    ("theme", "container"),
    [
        ("sphinx", '<div class="body" role="main">{}</div>'),
        ("rtd", '<div itemprop="articleBody">{}</div>'),
        ("mkdocs-material", '<article class="md-content__inner md-typeset">{}</article>'),
        ("docusaurus", '<article><div class="theme-doc-markdown markdown">{}</div></article>'),
        ("rustdoc", '<section id="main-content" class="content">{}</section>'),
        ("plain-main", "<main>{}</main>"),
    ],
)
def test_main_container_of_common_themes_drops_chrome(theme: str, container: str) -> None:
    content = "<h1>Guide</h1><p>Use <code>run()</code> to start, in " + theme + ".</p>"
    html = _page(container.format(content) + FOOTER, chrome=NAV)
    result = extract(html, URL)
    assert "# Guide" in result.markdown
    assert "`run()`" in result.markdown
    for noise in ("Sidebar link", "Top header", "Footer text"):
        assert noise not in result.markdown


def test_whole_body_fallback_drops_layout_elements() -> None:
    html = _page("<div><h2>Body only</h2><p>Text here.</p></div>" + FOOTER, chrome=NAV)
    result = extract(html, URL)
    assert "## Body only" in result.markdown
    assert "Sidebar link" not in result.markdown
    assert "Footer text" not in result.markdown


def test_code_blocks_keep_language_and_text() -> None:
    body = (
        '<div role="main"><div class="highlight-python3 notranslate"><div class="highlight">'
        '<pre><span></span><span class="k">def</span> f(x):\n    return x &lt; 2\n</pre></div></div>'
        '<div class="language-js highlight"><pre><code>let a = 1;</code></pre></div>'
        '<pre><code class="language-rust">fn main() {}</code></pre>'
        "<pre>no language</pre></div>"
    )
    markdown = extract(_page(body), URL).markdown
    assert "```python\ndef f(x):\n    return x < 2\n```" in markdown
    assert "```js\nlet a = 1;\n```" in markdown
    assert "```rust\nfn main() {}\n```" in markdown
    assert "```\nno language\n```" in markdown


def test_inline_code_tables_links_and_headings() -> None:
    body = (
        '<main><h1>API<a class="headerlink" href="#api">¶</a></h1>'
        '<p>Call <code class="docutils literal"><span class="pre">open(path,</span> '
        '<span class="pre">mode)</span></code> then see <a href="../other.html#x">other</a>'
        ' and <a href="/abs">abs</a>.</p>'
        "<table><thead><tr><th>Name</th><th>Default</th></tr></thead>"
        "<tbody><tr><td><code>retries</code></td><td>2</td></tr></tbody></table></main>"
    )
    markdown = extract(_page(body), URL).markdown
    assert markdown.startswith("# API\n")
    assert "¶" not in markdown
    assert "`open(path, mode)`" in markdown
    assert "[other](https://docs.example.org/other.html#x)" in markdown
    assert "[abs](https://docs.example.org/abs)" in markdown
    assert "| Name | Default |" in markdown
    assert "| `retries` | 2 |" in markdown


def test_sphinx_signature_becomes_one_code_span() -> None:
    body = (
        '<div role="main"><dl class="py function"><dt class="sig sig-object py" id="f">'
        '<span class="sig-prename descclassname"><span class="pre">pkg.</span></span>'
        '<span class="sig-name descname"><span class="pre">f</span></span><span class="sig-paren">('
        '</span><em class="sig-param"><span class="n"><span class="pre">x</span></span></em>'
        '<span class="sig-paren">)</span><a class="headerlink" href="#f">¶</a></dt>'
        "<dd><p>Does things.</p></dd></dl></div>"
    )
    assert "`pkg.f(x)`" in extract(_page(body), URL).markdown


def test_title_from_title_tag_then_first_heading() -> None:
    # The title keeps a separator unless what is left is the page's own heading.
    assert (
        extract(_page("<main><h1>Head</h1></main>", title="Doc — Site"), URL).title == "Doc — Site"
    )
    found = extract(_page("<main><h1>Doc</h1></main>", title="Doc — Site 1.0"), URL)
    assert (found.title, found.site_name) == ("Doc", "Site 1.0")
    found = extract(_page("<main><h1>I/O</h1></main>", title="Site | I/O"), URL)
    assert (found.title, found.site_name) == ("I/O", "Site")
    found = extract(_page("<main><h1>Files</h1></main>", title="Input / Output"), URL)
    assert (found.title, found.site_name) == ("Input / Output", "")
    # One page's own forms, confirmed by its heading (any level, section number aside).
    found = extract(
        _page("<main><h2>Error Reporting</h2></main>", title="Error Reporting: GLib"), URL
    )
    assert (found.title, found.site_name) == ("Error Reporting", "GLib")
    found = extract(_page("<main><h3>11.2 Keys</h3></main>", title="Keys (The Manual)"), URL)
    assert (found.title, found.site_name) == ("Keys", "The Manual")
    found = extract(_page("<main><h1>Notes</h1></main>", title="Tutorial: Getting started"), URL)
    assert (found.title, found.site_name) == ("Tutorial: Getting started", "")
    html = "<html><body><main><h1>Only <em>heading</em></h1><p>x</p></main></body></html>"
    assert extract(html, URL).title == "Only heading"


def test_base_href_and_custom_selector() -> None:
    html = (
        '<html><head><base href="https://cdn.example.org/v2/"></head><body>'
        '<div id="doc"><p><a href="x.html">x</a></p></div><main><p>Other</p></main></body></html>'
    )
    result = extract(html, URL, css_selector="#doc")
    assert "[x](https://cdn.example.org/v2/x.html)" in result.markdown
    assert "Other" not in result.markdown


def test_js_shell_has_few_words_and_garbage_is_empty() -> None:
    shell = _page(
        '<div id="app"></div><noscript>You need to enable JavaScript.</noscript><script>x()</script>'
    )
    assert extract(shell, URL).words == 0
    assert extract("", URL).markdown == ""
    assert extract("\x00\x01 not html", URL).words <= 3


def test_generated_site_page_keeps_content_and_drops_navigation() -> None:
    result = extract(generated_page(3, pages=10), "http://127.0.0.1/docs/page-003.html")
    assert result.title == "Commands 3"  # the site's name after the page's heading goes
    assert result.site_name == "Example Docs"
    assert "`configure_3()`" in result.markdown
    assert result.markdown.count("```python") == 3
    for marker in NAV_MARKERS:
        assert marker not in result.markdown
    assert "[the next page](http://127.0.0.1/docs/page-004.html)" in result.markdown


@pytest.mark.parametrize(
    ("body", "declared", "expected"),
    [
        ("café".encode(), "utf-8", "café"),
        ("café".encode("latin-1"), "iso-8859-1", "café"),
        ("café".encode("latin-1"), None, "café"),  # undeclared, not UTF-8: windows-1252
        (b"\xef\xbb\xbfhi", "latin-1", "hi"),  # a BOM wins
        (b'<meta charset="iso-8859-1"><p>caf\xe9', None, '<meta charset="iso-8859-1"><p>café'),
        (b"ok \xff\xfe bad", "utf-8", "ok \ufffd\ufffd bad"),
        (b"x", "no-such-codec", "x"),
    ],
)
def test_decode_html(body: bytes, declared: str | None, expected: str) -> None:
    assert decode_html(body, declared) == expected


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("100000") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_policy_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    rng = random.Random(1)
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)):
        delays = [policy.delay(failures, None, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert policy.delay(1, 7.5, rng) == 7.5
