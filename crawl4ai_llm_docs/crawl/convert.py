r"""Prepared HTML -> Markdown: the one conversion both crawl modes use.

The converter is html-to-markdown (Rust, MIT), chosen on measurements: on 120 pages of the
Python library docs it converts a page in ~4 ms where crawl4ai's scraping and html2text fork
took ~22 ms, and on a corpus of twenty documentation generators it writes Markdown that a
CommonMark parser reads back as intended: a fence longer than any backtick run in the code,
``|`` escaped in table cells, the spaces around inline code and links kept, ``<kbd>`` and
``<samp>`` as code (``benchmarks/bench_crawl.py --extract``, ``tests/test_fidelity_corpus.py``).

Prose keeps its characters, and only those that would be read as Markdown are escaped:
``protect_text`` swaps them in the tree for private-use placeholders before the conversion
and ``to_markdown`` writes them back escaped (a backtick, ``<`` before a tag name, ``[``
before ``](``, ``&`` of an entity, ``_`` outside a word, ``~~``). The converter escapes the
rest itself (``*``, a list or heading marker at a line's start, ``\`` before punctuation,
``|`` in a table cell). Its own ``escape_misc`` would also escape every ``.``, ``-``, ``+``
and ``)`` ("Since 1\.0\.0\)"): correct, but noise in every line a reader or a model reads.

Options, and why:

- ``escape_asterisks`` (``3*4*5`` is not emphasis); ``escape_misc`` and
  ``escape_underscores`` off (see above: ``snake_case`` stays as it is);
- no preprocessing and no metadata: the main content was chosen and cleaned already
  (``extract``), the head was read by ``metadata``;
- ``compact_tables``: no padding of cells to the column width (fewer tokens);
- fenced code with backticks, ATX headings, ``-`` bullets, a backslash for a hard break.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from html_to_markdown import ConversionOptions, PreprocessingOptions, convert

from crawl4ai_llm_docs.crawl.codelinks import scrub_markdown
from crawl4ai_llm_docs.markdown.blocks import fence_mask

OPTIONS = ConversionOptions(
    extract_metadata=False,
    escape_misc=False,
    escape_asterisks=True,
    escape_underscores=False,
    preprocessing=PreprocessingOptions(enabled=False),
    code_block_style="backticks",
    heading_style="atx",
    bullets="-",
    newline_style="backslash",
    compact_tables=True,
)


# Characters of prose that Markdown would read as syntax, each with its placeholder.
_PLACEHOLDERS = {"`": "\ue001", "<": "\ue002", "[": "\ue003", "&": "\ue004", "_": "\ue005"}
_PLACEHOLDERS["~"] = "\ue006"
_PLACEHOLDERS["]"] = "\ue009"
_PLACEHOLDERS["\\"] = "\ue007"  # before punctuation (the converter's own escaping of it
# misreads runs of backslashes)
_ESCAPED = {placeholder: "\\" + char for char, placeholder in _PLACEHOLDERS.items()}
# In a table cell's code, a backslash before "|": the converter then escapes the pipe, which a
# GFM table needs even inside code ("\\|" reads as the code "\|").
_CELL_BACKSLASH = "\ue008"
_ESCAPED[_CELL_BACKSLASH] = "\\"
_RESTORE = re.compile("[\ue001-\ue009]")
_BACKSLASH_PIPE = re.compile(r"\\(?=\|)")
_SYNTAX = re.compile(
    r"\\(?=[!-/:-@\[-`{-~])"  # a backslash before punctuation: it would escape it
    r"|`"  # a code span
    r"|<(?=[A-Za-z/!?])"  # a tag, a comment, an autolink
    r"|\[(?=[^\]]*\](?:[(\[:]|$))|\](?=\()"  # a link or a reference definition
    r"|&(?=#?[A-Za-z0-9]+;)"  # an entity
    r"|(?<![^\W_])_|_(?![^\W_])"  # an underscore that is not inside a word: emphasis
    r"|~(?=~)|(?<=~)~"  # strikethrough
)
_CODE = frozenset(("pre", "code", "script", "style"))
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def protect_text(container: Any) -> None:
    """Swap the prose characters Markdown would read as syntax for placeholders (in place;
    code is left alone, the converter fences it, but for a backslash before a pipe in a table
    cell)."""
    stack = [(container, container.tag in _CODE, False)]
    while stack:
        element, in_code, in_cell = stack.pop()
        in_cell = in_cell or element.tag in ("td", "th")
        protect = _protect if not in_code else _protect_cell_code if in_cell else None
        if protect is not None and element.text and (text := protect(element.text)) is not None:
            element.text = text
        for child in element:
            if isinstance(child.tag, str) and not (in_code and not in_cell):
                stack.append((child, in_code or child.tag in _CODE, in_cell))
            if protect is not None and child.tail and (text := protect(child.tail)) is not None:
                child.tail = text


def _protect_cell_code(text: str) -> str | None:
    if "\\|" not in text:
        return None
    return _CONTROL.sub("", _BACKSLASH_PIPE.sub(_CELL_BACKSLASH, text))


def _protect(text: str) -> str | None:
    """``text`` with placeholders; None when it has nothing to protect (left as it is)."""
    protected = _SYNTAX.sub(lambda found: _PLACEHOLDERS[found.group(0)], text)
    if protected == text:
        return None
    return _CONTROL.sub("", protected)  # lxml takes no control characters back


def to_markdown(html: str, base_url: str) -> str:
    """Markdown of the HTML fragment ``html`` (placeholders from ``protect_text`` become
    escapes); relative links resolved against ``base_url``."""
    result = convert(html, dataclasses.replace(OPTIONS, base_url=base_url))
    markdown = _RESTORE.sub(lambda found: _ESCAPED[found.group(0)], result.content or "")
    markdown = _blank_lines(scrub_markdown(markdown))
    return markdown + "\n" if markdown else ""


def _blank_lines(markdown: str) -> str:
    """Outside code, a line of spaces (non-breaking ones too) is blank, and blank lines
    come one at a time."""
    lines = markdown.split("\n")
    out: list[str] = []
    for line, in_code in zip(lines, fence_mask(lines), strict=True):
        if not in_code and not line.strip():
            if out and not out[-1]:
                continue
            line = ""
        out.append(line)
    return "\n".join(out).strip("\n")
