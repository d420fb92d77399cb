"""HTML -> title + Markdown of the page's main content; the same code serves both crawl modes.

The main content container is cut out with lxml first (navigation, sidebars, headers and
footers go), then crawl4ai's scraping strategy cleans it and its ``DefaultMarkdownGenerator``
writes the Markdown. crawl4ai's pruning filter is not used: on Sphinx pages it keeps the
sidebar and drops inline code.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import lxml.html  # type: ignore[import-untyped]
from msgspec import Struct

from crawl4ai_llm_docs.crawl.codelinks import fix_links, scrub_markdown
from crawl4ai_llm_docs.crawl.generators.detect import detect
from crawl4ai_llm_docs.crawl.generators.dom import Profile
from crawl4ai_llm_docs.crawl.runtime import prepare_crawl4ai

# Known main-content containers, most specific first. The first selector that matches an
# element with text wins; the whole body is the last resort.
MAIN_SELECTORS: tuple[str, ...] = (
    "article.md-content__inner",  # MkDocs Material
    ".theme-doc-markdown",  # Docusaurus
    "article.bd-article",  # PyData Sphinx theme
    "div[itemprop=articleBody]",  # Read the Docs Sphinx theme
    "div.body[role=main]",  # Sphinx basic / alabaster
    "div[role=main]",  # other Sphinx themes
    "div.body",  # Sphinx without ARIA roles
    "#main-content",  # rustdoc
    "#content-area",  # Mintlify
    ".vp-doc",  # VitePress
    ".theme-default-content",  # VuePress
    ".sl-markdown-content",  # Astro Starlight
    ".td-content",  # Hugo Docsy
    ".markdown-section",  # docsify, GitBook legacy
    "main article",
    "article",
    "main",
    "[role=main]",
    "#content",
    ".content",
    ".document",
)

# Chrome inside a main container: permalink anchors, copy buttons, edit links, pagers.
NOISE_SELECTOR = ", ".join(
    (
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "footer",
        "button",
        "[role=navigation]",
        "a.headerlink",
        ".hash-link",
        "a.anchor",
        ".viewcode-link",
        ".viewcode-back",
        ".copybtn",
        ".md-clipboard",
        ".md-source-file",
        ".md-content__button",
        ".theme-doc-footer",
        ".theme-doc-breadcrumbs",
        ".theme-doc-toc-mobile",
        ".pagination-nav",
        ".sphinxsidebar",
        ".related",
        ".linenos",
    )
)
# Only when no container was found and the whole body is used.
BODY_NOISE_SELECTOR = "header, aside, [role=banner], [role=contentinfo], .sidebar, #sidebar"

# Sphinx API signatures: their nested spans become one readable code span.
SIGNATURE_SELECTOR = "dt.sig, dl.function > dt, dl.class > dt, dl.method > dt, dl.exception > dt"

_LANG_CLASS = re.compile(r"^(?:language|lang|highlight)-([\w+#.-]+)$")
_LANG_ALIASES = {
    "default": "python",  # Sphinx's default lexer is Python 3
    "python3": "python",
    "py": "python",
    "py3": "python",
    "ipython3": "python",
    "none": "text",
    "sh": "bash",
    "shell": "bash",
    "shell-session": "console",
}
_FENCE = re.compile(r"^\s*(```|~~~)")
_LAYOUT_ERRORS = (AttributeError, IndexError, KeyError, TypeError, ValueError, lxml.etree.LxmlError)
_PERMALINK_MARKS = frozenset(("", "¶", "§", "#", "🔗", "\u2693"))
_CELL_PADDING = re.compile(r" {2,}\|")
_CELL_START = re.compile(r"\| {2,}")
_HEADING_SPACES = re.compile(r"^(#{1,6}) {2,}")


class Extracted(Struct, frozen=True, kw_only=True):
    title: str
    markdown: str
    words: int  # words of visible main-content text: few words means an empty JS shell


def extract(html: str, url: str, *, css_selector: str = "") -> Extracted:
    """Title and Markdown of ``html`` fetched from ``url`` (its final URL after redirects).

    Links come out absolute. CPU-bound: call it from a worker thread.
    """
    if not html.strip():
        return Extracted(title="", markdown="", words=0)
    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return Extracted(title="", markdown="", words=0)
    base = _base_url(doc, url)
    profile = detect(doc)
    try:
        containers = _prepare(doc, css_selector, profile)
    except _LAYOUT_ERRORS:
        if profile is None:
            raise
        # A layout of the generator's that its profile did not foresee: clean generically.
        doc = lxml.html.document_fromstring(html)
        containers = _prepare(doc, css_selector, None)
    title = _title(doc, containers)
    words = sum(len(c.text_content().split()) for c in containers)
    fragment = "".join(lxml.html.tostring(c, encoding="unicode") for c in containers)
    markdown = _to_markdown(f"<html><body>{fragment}</body></html>", base)
    return Extracted(title=title, markdown=markdown, words=words)


def preload() -> None:
    """Import crawl4ai's converters now (takes seconds) instead of during the first page."""
    prepare_crawl4ai()
    from crawl4ai.content_scraping_strategy import (  # noqa: F401
        LXMLWebScrapingStrategy,
    )
    from crawl4ai.markdown_generation_strategy import (  # noqa: F401
        DefaultMarkdownGenerator,
    )


def _prepare(doc: Any, css_selector: str, profile: Profile | None) -> list[Any]:
    """The main containers of ``doc``, cleaned in place."""
    containers = _select(doc, css_selector, profile.main if profile else ())
    is_body = len(containers) == 1 and containers[0].tag in ("body", "html")
    for container in containers:
        if profile is not None:
            profile.clean(container)
        _clean(container, drop_layout=is_body)
        fix_links(container)
    return containers


def _base_url(doc: Any, url: str) -> str:
    for base in doc.iter("base"):
        href = base.get("href")
        if href:
            return urljoin(url, str(href).strip())
    return url


def _select(doc: Any, css_selector: str, preferred: tuple[str, ...]) -> list[Any]:
    selectors = (css_selector,) if css_selector else (*preferred, *MAIN_SELECTORS)
    for selector in selectors:
        found = [el for el in doc.cssselect(selector) if el.text_content().strip()]
        if found:
            chosen = set(found)
            # A container nested in another match would repeat its text.
            return [el for el in found if not any(a in chosen for a in el.iterancestors())]
    body = doc.find("body")
    return [body if body is not None else doc]


def _clean(container: Any, *, drop_layout: bool) -> None:
    selector = NOISE_SELECTOR + (", " + BODY_NOISE_SELECTOR if drop_layout else "")
    for element in container.cssselect(selector):
        if element.getparent() is not None:
            element.drop_tree()  # keeps the tail text that follows the element
    for table in container.cssselect("table.highlighttable"):
        # Sphinx line-numbered code: a table of line numbers and code; keep the code only.
        code = table.cssselect("td.code")
        if code and table.getparent() is not None:
            replacement = lxml.html.Element("div")
            replacement.extend(list(code[0]))
            table.getparent().replace(table, replacement)
    for signature in container.cssselect(SIGNATURE_SELECTOR):
        text = " ".join(signature.text_content().split())
        tail = signature.tail
        signature.clear()
        signature.tail = tail
        code = lxml.html.Element("code")
        code.text = text
        signature.append(code)
    for heading in container.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        for anchor in list(heading.iter("a")):
            if (anchor.get("href") or "").startswith("#"):  # a permalink to itself
                if anchor.text_content().strip() in _PERMALINK_MARKS:
                    anchor.drop_tree()
                else:
                    anchor.drop_tag()
    for pre in container.iter("pre"):
        language = _language(pre)
        if language:
            pre.set("data-language", language)


def _language(pre: Any) -> str:
    """The code block's language from the usual class and data-attribute conventions."""
    candidates = [pre, *pre.findall("code")]
    parent = pre.getparent()
    for _ in range(3):  # Sphinx and MkDocs put it on wrapper divs
        if parent is None:
            break
        candidates.append(parent)
        parent = parent.getparent()
    for element in candidates:
        for attribute in ("data-language", "data-lang"):
            if value := element.get(attribute):
                return _normalise_language(value)
        classes = (element.get("class") or "").split()
        for name in classes:
            if found := _LANG_CLASS.match(name):
                return _normalise_language(found.group(1))
        if element is pre and "rust" in classes:  # rustdoc
            return "rust"
    return ""


def _normalise_language(name: str) -> str:
    name = name.strip().lower()
    return _LANG_ALIASES.get(name, name)


def _title(doc: Any, containers: list[Any]) -> str:
    for element in doc.iter("title"):
        if text := " ".join(element.text_content().split()):
            return text
    for root in (*containers, doc):
        for heading in root.iter("h1"):
            if text := " ".join(heading.text_content().split()):
                return text
    return ""


def _to_markdown(html: str, base_url: str) -> str:
    prepare_crawl4ai()  # a no-op once the stage chose the cache directory
    from crawl4ai.content_scraping_strategy import LXMLWebScrapingStrategy
    from crawl4ai.markdown_generation_strategy import DefaultMarkdownGenerator

    # keep_data_attributes keeps data-language, which the Markdown writer puts on the fence.
    scraped = LXMLWebScrapingStrategy().scrap(base_url, html, keep_data_attributes=True)
    generator = DefaultMarkdownGenerator(options={"single_line_break": False})
    result = generator.generate_markdown(scraped.cleaned_html, base_url=base_url, citations=False)
    return scrub_markdown(_tidy(str(result.raw_markdown)))


def _tidy(markdown: str) -> str:
    """Collapse runs of blank lines and drop blank lines before closing fences.

    Code inside fences is left alone apart from trailing blank lines.
    """
    out: list[str] = []
    in_fence = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            if in_fence:
                while out and not out[-1].strip():
                    out.pop()
            line = line.strip()
            in_fence = not in_fence
        elif not in_fence:
            if not line.strip():
                if out and not out[-1]:
                    continue
                line = ""
                if out:  # a hard line break before a paragraph end means nothing
                    out[-1] = out[-1].rstrip()
            elif line.startswith("#"):
                line = _HEADING_SPACES.sub(r"\1 ", line)
            elif line.lstrip().startswith("|"):
                # html2text pads table cells and ends rows with hard-break spaces.
                line = _CELL_START.sub("| ", _CELL_PADDING.sub(" |", line.rstrip()))
        out.append(line)
    return "\n".join(out).strip() + "\n" if out else ""
