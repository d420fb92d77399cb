"""HTML shapes Markdown cannot hold, rewritten into ones it can, before the conversion.

- ``<tt>``, ``<kbd>``, ``<samp>`` and ``<var>`` are inline code like ``<code>`` (nested
  ``<kbd>`` keys make one span: ``Control-A``).
- Line-number gutters go: a cell of bare line numbers beside a cell holding the code (YARD,
  Pygments tables), and elements classed as line numbers (``is_gutter``, applied in the
  noise pass of ``chrome``).
- A table of one row, or of one column without a header, is layout: its cells become blocks
  (texi2html wraps every example in ``<table><tr><td>&nbsp;</td><td><pre>``).
- A data table whose cells hold blocks (code, lists, nested tables, several paragraphs) cannot
  be a GFM table, whose cells are one line: it becomes a list, one item per row, each cell a
  block labelled by its column header.
- ``<summary>`` is a plain block (Markdown's bold would wrap headings and paragraphs).
- A ``<blockquote>`` holding nothing but code is indentation: the code stands on its own.
- Emphasis around nothing but code, glued to a word (``<em><code>n</code></em>th``), goes:
  CommonMark cannot close the emphasis there, and the code span is the markup that matters.
- A definition list's term is a bold line of its own (unless it is code already), so that term
  and definition do not run together.
- A heading whose whole content is one link keeps the words, not the link (texi2html's
  headings link back to the table of contents).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import lxml.etree  # type: ignore[import-untyped]
import lxml.html  # type: ignore[import-untyped]

INLINE_CODE_TAGS = ("tt", "kbd", "samp", "var")
GUTTER_CLASSES = frozenset(
    (
        "linenos",
        "lineno",
        "linenodiv",
        "line-numbers",
        "line-numbers-rows",
        "listing_lines",
        "gutter",
        "lines",
        "line-number",
        "linenumber",
        "hljs-ln-numbers",
    )
)
# A class attribute that may name a gutter (the exact names are checked by ``is_gutter``).
GUTTER_PATTERN = re.compile(r"(?i)line|gutter|ln-")
_BLOCKS_IN_CELLS = ("pre", "ul", "ol", "dl", "table", "blockquote", "h1", "h2", "h3", "h4", "h5")
_LINE_NUMBERS = re.compile(r"^[\s\d]*\d[\s\d]*$")
_WORD = re.compile(r"\w")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_EMPHASIS = ("em", "i", "strong", "b")


def normalise(container: Any) -> None:
    """Every rewrite of the module docstring, in place, in an order where each sees the
    result of the ones before (gutters go before tables are judged)."""
    _inline_code(container)
    _gutters(container)
    for table in reversed(list(container.iter("table"))):  # inner tables first
        if table.getparent() is not None:
            _table(table)
    for summary in container.iter("summary"):
        summary.tag = "div"
    for quote in list(container.iter("blockquote")):
        children = [c for c in quote if isinstance(c.tag, str)]
        if children and all(c.tag == "pre" for c in children) and not (quote.text or "").strip():
            quote.drop_tag()  # code indented for display (Javadoc): a code block of its own
    _glued_emphasis(container)
    _terms(container)
    for heading in container.iter(*_HEADINGS):
        children = [c for c in heading if isinstance(c.tag, str)]
        if (
            len(children) == 1
            and children[0].tag == "a"
            and not (heading.text or "").strip()
            and not (children[0].tail or "").strip()
        ):
            children[0].drop_tag()


def _inline_code(container: Any) -> None:
    for element in container.iter(*INLINE_CODE_TAGS):
        if not any(a.tag == "pre" for a in element.iterancestors()):
            element.tag = "code"


def _classes(element: Any) -> set[str]:
    return set((element.get("class") or "").lower().split())


def is_gutter(element: Any) -> bool:
    """An element classed as line numbers that holds nothing but numbers."""
    return bool(_classes(element) & GUTTER_CLASSES) and bool(
        _LINE_NUMBERS.match(element.text_content() or "1")
    )


def _gutters(container: Any) -> None:
    """Numbers beside code in a table (the classed ones went with the page's noise)."""
    for row in list(container.iter("tr")):
        cells = [c for c in row if c.tag in ("td", "th")]
        if len(cells) < 2 or not any(c.find(".//pre") is not None for c in cells):
            continue
        for cell in cells:
            pres = cell.findall(".//pre")
            if len(pres) == 1 and _is_line_numbers(pres[0].text_content()):
                cell.drop_tree()


def _is_line_numbers(text: str) -> bool:
    """1, 2, 3 … (one per line, counting up by one), or a single number."""
    numbers = text.split()
    if not numbers or not all(n.isdigit() for n in numbers):
        return False
    values = [int(n) for n in numbers]
    return all(b == a + 1 for a, b in itertools.pairwise(values))


def _rows(table: Any) -> list[Any]:
    """The table's own rows (not those of tables nested in it)."""
    rows = []
    for element in table:
        if element.tag == "tr":
            rows.append(element)
        elif element.tag in ("thead", "tbody", "tfoot"):
            rows.extend(r for r in element if r.tag == "tr")
    return rows


def _cells(row: Any) -> list[Any]:
    return [c for c in row if c.tag in ("td", "th")]


def _table(table: Any) -> None:
    rows = _rows(table)
    if not rows:
        return
    has_header = any(c.tag == "th" for r in rows[:1] for c in _cells(r)) or any(
        e.tag == "thead" for e in table
    )
    widest = max(len(_cells(r)) for r in rows)
    if (len(rows) == 1 and not (has_header and widest > 1)) or (widest == 1 and not has_header):
        _unwrap_layout(table, rows)
    elif any(_holds_blocks(c) for r in rows for c in _cells(r)):
        _to_list(table, rows, has_header)


def _holds_blocks(cell: Any) -> bool:
    for tag in _BLOCKS_IN_CELLS:
        if cell.find(".//" + tag) is not None:
            return True
    return len(cell.findall(".//p")) > 1


def _unwrap_layout(table: Any, rows: list[Any]) -> None:
    """A layout table: each cell's content becomes a block, in reading order."""
    holder = lxml.html.Element("div")
    for row in rows:
        for cell in _cells(row):
            if not (cell.text_content() or "").strip() and cell.find(".//img") is None:
                continue
            cell.tag = "div"
            cell.attrib.clear()
            holder.append(cell)
    _replace(table, holder)


def _to_list(table: Any, rows: list[Any], has_header: bool) -> None:
    """One list item per row; each further cell a block, labelled by its column's header."""
    headers: list[str] = []
    if has_header:
        headers = [" ".join(c.text_content().split()) for c in _cells(rows[0])]
        rows = rows[1:]
    listing = lxml.html.Element("ul")
    if any(headers):  # the header row as a line of its own: the first column's name stays too
        names = lxml.html.Element("p")
        for position, name in enumerate(h for h in headers if h):
            lxml.etree.SubElement(names, "strong").text = name
            if position:
                names[-1].addprevious(lxml.html.Element("span"))
                names[-2].text = " · "
        _replace(table, names)
        names.addnext(listing)
        listing.tail, names.tail = names.tail, None
    for row in rows:
        item = lxml.etree.SubElement(listing, "li")
        for position, cell in enumerate(_cells(row)):
            if not (cell.text_content() or "").strip() and cell.find(".//img") is None:
                continue
            block = lxml.etree.SubElement(item, "div")
            label = headers[position] if position < len(headers) else ""
            if position and label:
                strong = lxml.etree.SubElement(block, "strong")
                strong.text = label + ":"
                strong.tail = " " + (cell.text or "")
            else:
                block.text = cell.text
            block.extend(list(cell))
    if listing.getparent() is None:
        _replace(table, listing)


def _replace(old: Any, new: Any) -> None:
    parent = old.getparent()
    if parent is not None:
        new.tail = old.tail
        parent.replace(old, new)


def _glued_emphasis(container: Any) -> None:
    for emphasis in list(container.iter(*_EMPHASIS)):
        children = list(emphasis)
        if (
            len(children) != 1
            or children[0].tag != "code"
            or (emphasis.text or "").strip()
            or (children[0].tail or "").strip()
        ):
            continue
        before = _text_before(emphasis)
        if _WORD.match((emphasis.tail or "")[:1]) or _WORD.match(before[-1:]):
            emphasis.drop_tag()


def _text_before(element: Any) -> str:
    previous = element.getprevious()
    if previous is not None:
        return previous.tail or ""
    parent = element.getparent()
    return (parent.text or "") if parent is not None else ""


def _terms(container: Any) -> None:
    for term in container.iter("dt"):
        if not term.text_content().strip() or term.find(".//pre") is not None:
            continue
        if any(e.tag in ("code", "strong", "b", *_HEADINGS) for e in term.iter()):
            continue
        strong = lxml.html.Element("strong")
        strong.text, term.text = term.text, None
        for child in list(term):
            strong.append(child)
        term.append(strong)
