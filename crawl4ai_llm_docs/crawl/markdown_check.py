"""Does a page's own Markdown hold what its HTML shows? Checked before the Markdown is used.

The HTML's main content gives the facts: its title (the first H1, else ``<title>``), every
code block (``<pre>``) and how many words it has. The Markdown must have the title's words in
order, most distinctive lines of every code block, and at least half the words: a ``.md``
that left out a code block, or stops after the introduction, is not used (``lacks`` says
why). Whitespace, formatting and the Markdown's own syntax do not count, so a faithful
rendition in any Markdown style passes. CPU-bound: call it from a worker thread.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html  # type: ignore[import-untyped]

from crawl4ai_llm_docs.crawl.extract import MAIN_SELECTORS

# A code block counts as present when this share of its distinctive lines is in the Markdown
# (lines such as "}" or "end" appear everywhere and say nothing).
CODE_LINES_KEPT = 0.6
MIN_LINE_CHARACTERS = 4
WORDS_KEPT = 0.5  # of the HTML's main-content words
_WORD = re.compile(r"\w+")
_TITLE_SEPARATORS = re.compile(r"\s+[|\u2014\u2013\u00b7:-]{1,2}\s+")
_LAYOUT = {"nav", "aside", "footer", "header"}
_LINE_NUMBERS = ("linenos", "lineno", "line-numbers")


def lacks(markdown: str, html: str, *, css_selector: str = "") -> str:
    """What the HTML's main content has that ``markdown`` lacks, in a few words; "" if nothing."""
    if not markdown.strip():
        return "it is empty"
    try:
        doc = lxml.html.document_fromstring(html) if html.strip() else None
    except (ValueError, lxml.etree.ParserError):
        doc = None
    if doc is None:
        return ""  # nothing to compare with
    containers = _main(doc, css_selector)
    words = _words(markdown)
    title = _title(doc, containers)
    if title and not _contains(words, _words(title)):
        return f"it lacks the page's title {title!r}"
    lines = {_line(line) for line in markdown.splitlines()}
    blocks = _code_blocks(containers)
    missing = [block for block in blocks if not _present(block, lines)]
    if missing:
        first = next((line for line in missing[0] if line), "")[:60]
        return (
            f"it lacks {len(missing)} of the {len(blocks)} code blocks of the HTML "
            f"(the first begins {first!r})"
        )
    html_words = sum(len(_words(_text(container))) for container in containers)
    if html_words and len(words) < WORDS_KEPT * html_words:
        return f"it has {len(words)} words where the HTML's main content has {html_words}"
    return ""


def _main(doc: Any, css_selector: str) -> list[Any]:
    selectors = (css_selector,) if css_selector else MAIN_SELECTORS
    for selector in selectors:
        try:
            found = [el for el in doc.cssselect(selector) if el.text_content().strip()]
        except Exception:  # a selector lxml cannot read: try the next
            continue
        if found:
            chosen = set(found)
            return [el for el in found if not any(a in chosen for a in el.iterancestors())]
    body = doc.find("body")
    return [body if body is not None else doc]


def _title(doc: Any, containers: list[Any]) -> str:
    for container in containers:
        for heading in container.iter("h1"):
            if text := _heading_text(heading):
                return text
    for element in doc.iter("title"):
        if text := " ".join(element.text_content().split()):
            return _TITLE_SEPARATORS.split(text)[0]  # "Install — Example Docs": "Install"
    return ""


def _heading_text(heading: Any) -> str:
    return " ".join("".join(heading.itertext()).split()).strip("¶§#🔗 ")


def _code_blocks(containers: list[Any]) -> list[list[str]]:
    blocks = []
    for container in containers:
        for pre in container.iter("pre"):
            if _in_layout(pre) or any(_is_line_numbers(a) for a in (pre, *pre.iterancestors())):
                continue
            if pre.getparent() is not None and any(True for _ in pre.iterancestors("pre")):
                continue  # a <pre> inside another is read with it
            lines = [_line(line) for line in _pre_text(pre).splitlines()]
            distinctive = [line for line in lines if len(line) >= MIN_LINE_CHARACTERS]
            if distinctive:
                blocks.append(distinctive)
    return blocks


def _pre_text(pre: Any) -> str:
    """The code of a <pre>, without inline line numbers (Pygments' ``span.linenos``)."""
    parts: list[str] = []

    def walk(element: Any) -> None:
        if _is_line_numbers(element):
            if element.tail:
                parts.append(element.tail)
            return
        if element.text:
            parts.append(element.text)
        for child in element:
            walk(child)
        if element is not pre and element.tail:
            parts.append(element.tail)

    walk(pre)
    return "".join(parts)


def _present(block: list[str], lines: set[str]) -> bool:
    distinct = set(block)
    found = sum(1 for line in distinct if line in lines)
    return found >= CODE_LINES_KEPT * len(distinct)


def _in_layout(element: Any) -> bool:
    return any(ancestor.tag in _LAYOUT for ancestor in element.iterancestors())


def _is_line_numbers(element: Any) -> bool:
    if not isinstance(element.tag, str):
        return False
    classes = (element.get("class") or "").split()
    return any(name in classes for name in _LINE_NUMBERS)


def _line(line: str) -> str:
    """A line as compared: its words, however it is indented or spaced."""
    return " ".join(line.split())


def _words(text: str) -> list[str]:
    return [word.casefold() for word in _WORD.findall(text)]


def _contains(words: list[str], wanted: list[str]) -> bool:
    """``wanted`` as a run of consecutive words of ``words``."""
    if not wanted:
        return True
    first, size = wanted[0], len(wanted)
    return any(
        words[start : start + size] == wanted for start, word in enumerate(words) if word == first
    )


def _text(element: Any) -> str:
    return " ".join(
        element.xpath(".//text()[not(ancestor::script or ancestor::style or ancestor::pre)]")
    )
