"""Javadoc pages, old and new doclet: navigation gone, signatures as code, summaries as tables.

Three layouts are handled: JDK 8 (no ``<main>``: ``div.header`` + ``div.contentContainer``,
``ul.blockList``, ``table.memberSummary`` with tab captions), JDK 9-15 (the same inside
``<main>``) and JDK 16+ (``div.flex-box``, ``<section>``s, summaries as CSS grids of
``div.col-*`` cells, signatures in ``div.member-signature``).

Kept: the package line, title, inheritance, type and member signatures (as ``java`` code),
member-summary tables (as tables; their cells as clean code), deprecation notes, "All
Implemented Interfaces" and inherited-member lists. Dropped: the navigation bars, "Skip
navigation links", "JavaScript is disabled", tab labels ("All Methods", "Static Methods" ...),
search boxes and the copyright footer.
"""

from __future__ import annotations

import copy
from typing import Any

import lxml.etree  # type: ignore[import-untyped]
import lxml.html  # type: ignore[import-untyped]

from crawl4ai_llm_docs.crawl.generators.dom import (
    Profile,
    pre_element,
    remove,
    replace_with,
    retag,
    select,
    text_of,
)

MAIN = ("main", "div.header, div.contentContainer")

NOISE = ", ".join(
    (
        ".topNav",
        ".subNav",
        ".bottomNav",
        ".top-nav",
        ".sub-nav",
        ".bottom-nav",
        ".skipNav",
        ".skip-nav",
        ".navPadding",
        ".nav-padding",
        ".legalCopy",
        ".legal-copy",
        "header.flex-header",
        ".nav-list-search",
        ".table-tabs",  # JDK 16+ tab buttons
        "div.caption",  # JDK 16+ table captions: the heading above names the table
        "table caption",  # JDK 8-15 captions, tabs included
        "a[name^=navbar]",
        "a[id^=navbar]",
        # The index's letter bar: A B C … All Classes All Packages
        "a[href^='#I:']",
        "a[href$='allclasses-index.html']",
        "a[href$='allpackages-index.html']",
        "a[href$='allclasses-noframe.html']",
    )
)
# Layout lists: every summary and detail is an <li> of a <ul> of an <li> ...
_LAYOUT_LISTS = (
    "ul.blockList, li.blockList, ul.blockListLast, li.blockListLast, ul.block-list, "
    "li.block-list, ul.summary-list, ul.details-list, ul.member-list, "
    "ul.summary-list > li, ul.details-list > li, ul.member-list > li"
)
_GRID_COLUMNS = {"two-column-summary": 2, "three-column-summary": 3, "four-column-summary": 4}


def clean(container: Any) -> None:
    remove(container, NOISE)
    # The JDK 16+ selectors only match their own layout; run them first so that the
    # retagging below cannot hide the member lists they look at.
    for signature in select(container, "div.member-signature, div.type-signature"):
        replace_with(signature, pre_element(_signature_text(signature), "java"))
    for grid in select(container, "div.summary-table"):
        _grid_to_table(grid)
    for tree in select(container, ".inheritance"):
        if tree.getparent() is not None and not any(
            "inheritance" in (a.get("class") or "").split() for a in tree.iterancestors()
        ):
            _inheritance(tree)
    retag(container, _LAYOUT_LISTS, "div")
    for notes in select(container, "dl"):
        _notes(notes)
    for pre in container.iter("pre"):
        # JDK 8-15 signatures: the <pre> right under a member heading or the type's header.
        previous = pre.getprevious()
        in_description = any(
            "description" in (a.get("class") or "").split() for a in pre.iterancestors()
        )
        if (previous is not None and previous.tag in ("h3", "h4")) or (
            in_description and previous is not None and previous.tag in ("br", "hr")
        ):
            pre.set("data-language", "java")


def _inheritance(tree: Any) -> None:
    """The nested inheritance tree becomes one line: ``Object → Node → Element``."""
    line = lxml.html.Element("p")
    level: Any = tree
    while level is not None:
        inner = next((e for e in level.iterdescendants() if _is_tree(e)), None)
        own = copy.deepcopy(level)  # the level without the levels nested in it
        for nested in [e for e in own.iterdescendants() if _is_tree(e)]:
            if nested.getparent() is not None:
                nested.drop_tree()
        anchor = next((a for a in own.iter("a") if text_of(a)), None)
        label = _copy_link(anchor) if anchor is not None else text_of(own)
        if label is not None and label != "":
            _append(line, " → " if len(line) or line.text else "")
            _append(line, label)
        level = inner
    replace_with(tree, line)


def _append(parent: Any, item: Any) -> None:
    if not isinstance(item, str):
        parent.append(item)
    elif len(parent):
        parent[-1].tail = (parent[-1].tail or "") + item
    else:
        parent.text = (parent.text or "") + item


def _notes(notes: Any) -> None:
    """ "Parameters:", "Returns:", "Throws:" ...: each label a line, each of its entries an item
    (a Markdown definition list would run the entries of one label together)."""
    items = [child for child in notes if child.tag in ("dt", "dd")]
    if not items or items[0].tag != "dt" or notes.getparent() is None:
        return
    block = lxml.html.Element("div")
    listing: Any = None
    for item in items:
        if item.tag == "dt":
            lxml.etree.SubElement(lxml.etree.SubElement(block, "p"), "strong").text = text_of(item)
            listing = lxml.etree.SubElement(block, "ul")
        else:
            item.tag = "li"
            item.attrib.clear()
            listing.append(item)
    replace_with(notes, block)


def _is_tree(element: Any) -> bool:
    return "inheritance" in (element.get("class") or "").split()


def _copy_link(anchor: Any) -> Any:
    link = lxml.html.Element("a", {"href": anchor.get("href") or ""})
    link.text = text_of(anchor)
    return link


def _signature_text(signature: Any) -> str:
    """The signature's text with its line breaks (annotations stand on their own line)."""
    text = signature.text_content().replace("\xa0", " ").replace("\u200b", "")
    lines = [line.rstrip() for line in text.splitlines()]  # shown as pre-wrap: keep them
    return "\n".join(line for line in lines if line.strip())


def _grid_to_table(grid: Any) -> None:
    """JDK 16+ lays summaries out as a grid of divs; a reader needs the table it shows."""
    columns = next(
        (n for name, n in _GRID_COLUMNS.items() if name in (grid.get("class") or "").split()),
        0,
    )
    cells = [c for c in grid if isinstance(c.tag, str)]
    if not columns:  # an unknown layout: count the header cells
        columns = sum(1 for c in cells if "table-header" in (c.get("class") or "").split())
    if columns < 1:
        return
    table = lxml.html.Element("table")
    header = [c for c in cells if "table-header" in (c.get("class") or "").split()]
    body = [c for c in cells if c not in header]
    if header:
        row = lxml.etree.SubElement(lxml.etree.SubElement(table, "thead"), "tr")
        for cell in header:
            th = lxml.etree.SubElement(row, "th")
            th.text = text_of(cell)
    tbody = lxml.etree.SubElement(table, "tbody")
    for start in range(0, len(body), columns):
        row = lxml.etree.SubElement(tbody, "tr")
        for cell in body[start : start + columns]:
            cell.tag = "td"
            for name in ("class", "id", "role"):
                cell.attrib.pop(name, None)
            row.append(cell)
    replace_with(grid, table)


PROFILE = Profile(name="javadoc", main=MAIN, clean=clean)
