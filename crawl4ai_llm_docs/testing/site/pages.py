"""The generated pages of the local docs site: Sphinx-like HTML that depends only on its index.

Used by ``testing/site.py`` (which serves them) and by tests and benchmarks that need the same
HTML without a server.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from html import escape

from msgspec import Struct

# Text that only appears in the generated pages' header, sidebar and footer: a crawl that
# kept navigation shows one of these.
NAV_MARKERS = ("Site navigation", "Quick search", "Example Docs Authors")
JS_TEXT = "This paragraph was rendered by JavaScript in the browser"

_VOCABULARY = (
    "request response session client server option argument command parser config value "
    "default timeout retry stream buffer channel worker task thread process handler event "
    "message token cache index page chunk limit queue signal context scope nursery module "
    "package function method class object record field schema format output input error"
)
_WORDS = tuple(_VOCABULARY.split())
_TOPICS = ("Installation", "Quickstart", "Configuration", "Commands", "Options", "Testing")


def page_path(index: int) -> str:
    return f"/docs/page-{index:03d}.html"


def page_title(index: int) -> str:
    return f"{_TOPICS[index % len(_TOPICS)]} {index}"


class Section(Struct, frozen=True, kw_only=True):
    heading: str
    anchor: str
    paragraphs: tuple[tuple[str, str, str], ...]  # (words, code name, emphasised word)
    code: str  # a Python function, whole
    rows: tuple[tuple[str, int, str], ...]  # (name, default, meaning)


class PageContent(Struct, frozen=True, kw_only=True):
    """What a generated page says, whatever it is written in (HTML, or Markdown)."""

    index: int
    title: str
    next_page: str  # relative link of the intro paragraph
    sections: tuple[Section, ...]


def page_content(
    index: int, *, pages: int = 28, sections: int = 3, paragraphs: int = 3
) -> PageContent:
    """The content of page ``index``; it depends only on the arguments."""
    rng = random.Random(index)
    title = page_title(index)
    made = []
    for section in range(sections):
        texts = []
        for _ in range(paragraphs):
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 70)))
            name = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}"
            texts.append((words.capitalize(), name, rng.choice(_WORDS)))
        lines = "\n".join(
            f"    {rng.choice(_WORDS)}_{line} = client.{rng.choice(_WORDS)}({line}, retries={rng.randint(1, 9)})"
            for line in range(rng.randint(3, 8))
        )
        code = f'def example_{index}_{section}(client):\n{lines}\n    return {{"page": {index}}}'
        rows = tuple(
            (rng.choice(_WORDS), rng.randint(1, 100), f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}")
            for _ in range(3)
        )
        made.append(
            Section(
                heading=f"Section {section} of {title}",
                anchor=f"s{index}-{section}",
                paragraphs=tuple(texts),
                code=code,
                rows=rows,
            )
        )
    return PageContent(
        index=index, title=title, next_page=_rel(index + 1, pages), sections=tuple(made)
    )


def generated_page(index: int, *, pages: int = 28, sections: int = 3, paragraphs: int = 3) -> str:
    """One Sphinx-like page; the content depends only on the arguments."""
    content = page_content(index, pages=pages, sections=sections, paragraphs=paragraphs)
    title = content.title
    body: list[str] = [
        f'<section id="p{index}"><h1>{title}<a class="headerlink" href="#p{index}">¶</a></h1>'
    ]
    body.append(
        f'<p>Call <code class="docutils literal notranslate"><span class="pre">configure_{index}()</span></code>'
        f' before anything else; see <a class="reference internal" href="{content.next_page}">'
        f"the next page</a>.</p>"
    )
    for section in content.sections:
        body.append(
            f'<section id="{section.anchor}"><h2>{section.heading}'
            f'<a class="headerlink" href="#{section.anchor}">¶</a></h2>'
        )
        for words, name, emphasised in section.paragraphs:
            body.append(
                f'<p>{words} with <code class="docutils literal notranslate">'
                f'<span class="pre">{name}</span></code> and <em>{emphasised}</em>.</p>'
            )
        body.append(
            '<div class="highlight-python notranslate"><div class="highlight"><pre><span></span>'
            f"{escape(section.code, quote=False).replace(chr(34), '&quot;')}\n"
            "</pre></div></div>"
        )
        rows = "".join(
            f"<tr><td><code>{name}</code></td><td>{default}</td><td>{meaning}</td></tr>"
            for name, default, meaning in section.rows
        )
        body.append(
            '<table class="docutils align-default"><thead><tr><th>Name</th><th>Default</th>'
            f"<th>Meaning</th></tr></thead><tbody>{rows}</tbody></table></section>"
        )
    body.append("</section>")
    first = max(0, min(index - 20, pages - 40))
    sidebar = "".join(
        f'<li class="toctree-l1"><a href="{_rel(i, pages)}">{page_title(i)}</a></li>'
        for i in range(first, min(pages, first + 40))
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title} &#8212; '
        'Example Docs</title><link rel="stylesheet" href="/_static/basic.css"></head><body>'
        '<div class="related" role="navigation" aria-label="related navigation"><h3>Site navigation'
        f'</h3><ul><li><a href="{_rel(0, pages)}">Example Docs</a> &#187;</li></ul></div>'
        '<div class="document"><div class="documentwrapper"><div class="bodywrapper">'
        f'<div class="body" role="main">{"".join(body)}</div></div></div>'
        '<div class="sphinxsidebar" role="navigation" aria-label="main navigation">'
        '<div class="sphinxsidebarwrapper"><h3>Quick search</h3><form><input type="text" name="q">'
        f'</form><ul class="current">{sidebar}</ul></div></div></div>'
        '<div class="footer" role="contentinfo">&#169; Copyright 2024, Example Docs Authors.</div>'
        "</body></html>"
    )


def page_index(path: str) -> int | None:
    number = path.removeprefix("/docs/page-").removesuffix(".html")
    return int(number) if path.startswith("/docs/page-") and number.isdigit() else None


def generated_pages(n: int, *, sections: int = 3, paragraphs: int = 3) -> Iterator[tuple[str, str]]:
    """(path, html) of the n generated pages, made one at a time."""
    for index in range(n):
        yield (
            page_path(index),
            generated_page(index, pages=n, sections=sections, paragraphs=paragraphs),
        )


def _rel(index: int, pages: int) -> str:
    return f"page-{index % max(pages, 1):03d}.html"


JS_SHELL = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>JavaScript app</title></head>'
    '<body><div id="app"></div><noscript>You need to enable JavaScript to run this app.</noscript>'
    # The content is requested only after "load", as single-page apps often do.
    "<script>window.addEventListener('load', () => fetch('/special/js-content.json')"
    ".then(r => r.json()).then(d => {document.getElementById('app').innerHTML = d.html; "
    "document.title = d.title; }));</script>"
    "</body></html>"
)


def js_content() -> bytes:
    paragraph = f"<p>{JS_TEXT}. " + " ".join(_WORDS[:60]) + ".</p>"
    html = (
        "<main><h1>Rendered by JavaScript</h1>"
        + paragraph * 2
        + '<pre><code class="language-js">console.log("rendered");</code></pre></main>'
    )
    return json.dumps({"title": "JavaScript app (rendered)", "html": html}).encode()


# A page whose content is shown only to a browser whose localStorage holds a session, as
# single-page portals keep their login (a Playwright storage state restores it).
LOCAL_STORAGE_KEY = "docs_session"
LOCAL_STORAGE_TEXT = "This paragraph is shown to a signed-in reader only"
LOCAL_STORAGE_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signed-in page</title></head>'
    '<body><main id="app"><h1>Sign in</h1><p>Sign in to read this page.</p></main><script>'
    f"if (localStorage.getItem('{LOCAL_STORAGE_KEY}')) {{"
    " document.getElementById('app').innerHTML = '<h1>Signed in</h1>'"
    f" + '<p>{LOCAL_STORAGE_TEXT}. ' + 'It has enough words to be a page. '.repeat(8) + '</p>'; }}"
    "</script></body></html>"
)
