"""HTML -> title + Markdown of the page's main content; the same code serves both crawl modes.

Steps, each in its own module: parse (an XHTML page's ``<?xml … encoding=…?>`` declaration
dropped, which lxml refuses in a ``str``); find the generator (``generators/``) and the main
content container; the generator's own clean-up; the code blocks' declared languages
(``languages``); chrome found by what it is (``chrome``); shapes Markdown cannot hold made
convertible (``shapes``); links inside code (``codelinks``); then one conversion
(``convert``, html-to-markdown). crawl4ai's own Markdown generation is not used in either mode:
browser mode fetches the rendered HTML only and comes here too.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urljoin

import lxml.html  # type: ignore[import-untyped]
from msgspec import Struct

from crawl4ai_llm_docs.crawl import chrome, shapes
from crawl4ai_llm_docs.crawl.codelinks import fix_links
from crawl4ai_llm_docs.crawl.convert import protect_text, to_markdown
from crawl4ai_llm_docs.crawl.generators.detect import detect
from crawl4ai_llm_docs.crawl.generators.dom import Profile, select
from crawl4ai_llm_docs.crawl.languages import code_language
from crawl4ai_llm_docs.markdown.titles import split_site_name

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

# Sphinx API signatures: their nested spans become one readable code span.
SIGNATURE_SELECTOR = "dt.sig, dl.function > dt, dl.class > dt, dl.method > dt, dl.exception > dt"

_XML_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")
_LAYOUT_ERRORS = (AttributeError, IndexError, KeyError, TypeError, ValueError, lxml.etree.LxmlError)
_UNSEEN = frozenset(("script", "style", "noscript", "template"))
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_SECTION_NUMBER = re.compile(r"^(?:[A-Z]|\d+)(?:\.\d+)*\.?\s+")
_SELECTOR_NAMES = re.compile(r"[.#]([\w-]+)|\[[\w-]+=['\"]?([\w-]+)")


class Extracted(Struct, frozen=True, kw_only=True):
    title: str  # the page's own name: its <title> without the site's name around it
    markdown: str
    words: int  # words of visible main-content text: few words means an empty JS shell
    site_name: str = ""  # the site's name the <title> carried ("csvkit 1.0.7 documentation")
    problem: str = ""  # why a page with text gave no Markdown (never "needs JavaScript")


def extract(html: str, url: str, *, css_selector: str = "") -> Extracted:
    """Title and Markdown of ``html`` fetched from ``url`` (its final URL after redirects).

    Links come out absolute. CPU-bound: call it from a worker thread.
    """
    if not html.strip():
        return Extracted(title="", markdown="", words=0)
    doc = _parse(html)
    if doc is None:
        return Extracted(title="", markdown="", words=0, problem="the HTML could not be parsed")
    # lxml.html finds each element's Python class by a Python call whenever an element is
    # met with no Python object alive for it: holding them all makes every later pass over
    # the tree reuse them (a third of the CPU on large pages).
    alive = list(doc.iter())
    base = _base_url(doc, url)
    profile = detect(doc)
    try:
        containers = _prepare(doc, css_selector, profile, base, html)
    except _LAYOUT_ERRORS:
        if profile is None:
            raise
        # A layout of the generator's that its profile did not foresee: clean generically.
        doc = _parse(html)
        alive = list(doc.iter())
        containers = _prepare(doc, css_selector, None, base, html)
    title, site_name = _title(doc, containers)
    words = sum(len(c.text_content().split()) for c in containers)
    fragment = "".join(lxml.html.tostring(c, encoding="unicode") for c in containers)
    markdown = to_markdown(f"<html><body>{fragment}</body></html>", base)
    problem = "" if markdown else _why_empty(_parse(html), css_selector)
    del alive
    return Extracted(
        title=title, markdown=markdown, words=words, site_name=site_name, problem=problem
    )


def preload() -> None:
    """Import the converter now, before the first page (kept for the stage's start-up)."""
    to_markdown("<p>x</p>", "http://localhost/")


def _parse(html: str) -> Any:
    """The document, or None. XHTML's XML declaration goes: lxml refuses it in a ``str``."""
    if html.lstrip("\ufeff \t\r\n").startswith("<?xml"):
        html = _XML_DECLARATION.sub("", html, count=1)
    try:
        return lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None


def _why_empty(doc: Any, css_selector: str) -> str:
    """The reason a page gave no Markdown, when it has visible text (else "": a JS shell)."""
    body = doc.find("body") if doc is not None else None
    if body is None:
        return ""
    visible = sum(
        len(((e.text or "") if e.tag not in _UNSEEN else "").split()) + len((e.tail or "").split())
        for e in body.iter()
        if isinstance(e.tag, str)
    )
    if not visible:
        return ""
    if css_selector:
        return (
            f"no text content found on the page: crawl.css_selector {css_selector!r} matched "
            f"none of its {visible} words of text"
        )
    return (
        f"no text content found on the page: its {visible} words of text are all navigation "
        "or layout (crawl.css_selector chooses the content; --crawler auto or browser runs "
        "the page's scripts)"
    )


def _prepare(
    doc: Any, css_selector: str, profile: Profile | None, url: str, html: str
) -> list[Any]:
    """The main containers of ``doc`` (the page at ``url``, ``html``), cleaned in place."""
    containers = _select(doc, css_selector, profile.main if profile else (), html)
    is_body = len(containers) == 1 and containers[0].tag in ("body", "html")
    for container in containers:
        if profile is not None:
            profile.clean(container)
        _languages(container)
        chrome.remove_noise(container, whole_body=is_body)
        _signatures(container)
        chrome.remove_chrome(container, url)
        shapes.normalise(container)
        fix_links(container)
        protect_text(container)
    return containers


def _base_url(doc: Any, url: str) -> str:
    for base in doc.iter("base"):
        href = base.get("href")
        if href:
            return urljoin(url, str(href).strip())
    return url


def _select(doc: Any, css_selector: str, preferred: tuple[str, ...], html: str) -> list[Any]:
    selectors = (css_selector,) if css_selector else (*preferred, *MAIN_SELECTORS)
    for selector in selectors:
        if not all(name in html for name in _names_in(selector)):
            continue  # a class or id the page never mentions: no need to search the tree
        found = [el for el in select(doc, selector) if el.text_content().strip()]
        if found:
            chosen = set(found)
            # A container nested in another match would repeat its text.
            return [el for el in found if not any(a in chosen for a in el.iterancestors())]
    body = doc.find("body")
    return [body if body is not None else doc]


@functools.lru_cache(maxsize=256)
def _names_in(selector: str) -> tuple[str, ...]:
    """The class names, ids and attribute values every match of ``selector`` carries (for a
    union, none: each alternative may match without the others' names)."""
    if "," in selector:
        return ()
    return tuple(a or b for a, b in _SELECTOR_NAMES.findall(selector))


def _languages(container: Any) -> None:
    """Each code block's declared language on the ``<pre>`` as ``class="language-X"`` (what
    the converter reads), before later steps move the wrappers that declare it."""
    for pre in container.iter("pre"):
        language = code_language(pre)
        pre.attrib.clear()
        if language:
            pre.set("class", f"language-{language}")


def _signatures(container: Any) -> None:
    """Sphinx API signatures: their nested spans become one readable code span."""
    for signature in select(container, SIGNATURE_SELECTOR):
        text = " ".join(signature.text_content().split())
        tail = signature.tail
        signature.clear()
        signature.tail = tail
        code = lxml.html.Element("code")
        code.text = text
        signature.append(code)


def _title(doc: Any, containers: list[Any]) -> tuple[str, str]:
    """(the page's name, the site's name): the <title> without the site's name when what is
    left is the page's own heading; the first heading when there is no <title>."""
    title = next((text for element in doc.iter("title") if (text := _line(element))), "")
    if not title:
        return next(
            (t for root in (*containers, doc) for h in root.iter("h1") if (t := _line(h))), ""
        ), ""
    # The page's own heading (in its content: a site banner's h1 is not it), whatever its
    # level, without a section number ("11.2 Keys").
    heading = next((t for c in containers for h in c.iter("h1") if (t := _line(h))), "")
    first = next((t for c in containers for h in c.iter(*_HEADINGS) if (t := _line(h))), "")
    for candidate in dict.fromkeys((heading, first, _SECTION_NUMBER.sub("", first))):
        name, site_name = split_site_name(title, candidate)
        if site_name:
            return name, site_name
    return title, ""


def _line(element: Any) -> str:
    return " ".join(element.text_content().split())
