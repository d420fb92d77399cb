"""rustdoc pages (Rust API docs, docs.rs): signatures as code, toggles and source links gone.

Handles the layouts of rustdoc 1.5x-1.6x (Debian's ``rust-doc``: ``.rustdoc-toggle``,
``.out-of-band``, ``div.item-table``) and the later ones (``.toggle``, ``a.src``,
``ul.item-table``, ``dl.item-table``).

Kept: item declarations (``<pre>``), member signatures (``.code-header``, one code span each),
attributes, "since" versions, stability, portability (feature gate) and deprecation notes, the
lists of trait implementations with their signatures. Dropped: toggle labels ("Expand
description", "Show 40 variants"), the "collapse all" toggle and other ``javascript:``
toggles, source links, "Run" playground links, notable-trait pop-ups, "Read more" links, and the bodies of
implementations that only repeat the trait's documentation (blanket implementations, and
trait-implementation docs that end in "Read more").
"""

from __future__ import annotations

from typing import Any

import lxml.etree  # type: ignore[import-untyped]
import lxml.html  # type: ignore[import-untyped]

from crawl4ai_llm_docs.crawl.generators.dom import (
    Profile,
    flatten_to_code,
    remove,
    replace_with,
    select,
    text_of,
)

MAIN = ("#main-content",)

NOISE = ", ".join(
    (
        "summary.hideme",  # "Expand description", "Show 40 variants"
        ".notable-traits",  # the "ⓘ" pop-up of notable traits
        "a.tooltip[data-notable-ty]",
        "a.test-arrow",  # "Run" on the playground
        "#toggle-all-docs",
        "#copy-path",
        "rustdoc-toolbar",
        "#rustdoc-modnav",
        ".sidebar-elems",
        "a.anchor",
        "#blanket-implementations-list .impl-items",  # the same few methods on every type
    )
)
_IMPL_LISTS = (
    "#trait-implementations-list, #synthetic-implementations-list, #blanket-implementations-list"
)
_READ_MORE = "read more"


def clean(container: Any) -> None:
    remove(container, NOISE)
    _read_more(container)
    for heading in select(container, "h1.fqn, .main-heading h1"):
        _flatten_text(heading)
    _signatures(container)
    remove(container, ".rightside, .out-of-band, .sub-heading .src, a.src, a.srclink")
    _example_notes(container)
    _item_tables(container)


def _flatten_text(element: Any) -> None:
    text = text_of(element)
    tail = element.tail
    element.clear()
    element.text = text
    element.tail = tail


def _read_more(container: Any) -> None:
    """Inherited docs end in "Read more": in implementation lists the whole block is a copy."""
    boilerplate = set()
    for impl_list in select(container, _IMPL_LISTS):
        for block in select(impl_list, ".docblock"):
            if any(text_of(a).lower() == _READ_MORE for a in block.iter("a")):
                boilerplate.add(block)
    for block in boilerplate:
        if block.getparent() is not None:
            block.drop_tree()
    for anchor in list(container.iter("a")):
        if anchor.getparent() is not None and text_of(anchor).lower() == _READ_MORE:
            anchor.drop_tree()


def _signatures(container: Any) -> None:
    """Each ``.code-header`` becomes one code span, its "since" version after it."""
    for header in select(container, ".code-header"):
        owner = header.getparent()
        since = _since(owner) if owner is not None else ""
        flatten_to_code(header)
        if since and len(header):
            header[-1].tail = f" ({since})"
    for side in select(container, ".out-of-band, .main-heading .sub-heading"):
        if since := _since(side):  # the item's own version: a line under its title
            note = lxml.html.Element("p")
            note.text = since[:1].upper() + since[1:]
            replace_with(side, note)


def _since(element: Any) -> str:
    """ "since 1.0.0" (or "const: unstable") from the right-hand side of a member."""
    found = [text_of(s) for s in select(element, ".since")]
    return " · ".join(f"since {s}" if s[:1].isdigit() else s for s in found if s)


def _example_notes(container: Any) -> None:
    """The "ⓘ" beside an example that panics or does not compile becomes its sentence."""
    for info in select(container, "div.information, .example-wrap > a.tooltip"):
        titles = [t.get("title") for t in info.iter() if t.get("title")]
        note = lxml.html.Element("p")
        emphasis = lxml.etree.SubElement(note, "em")
        emphasis.text = titles[0] if titles else ""
        if titles:
            replace_with(info, note)
        elif info.getparent() is not None:
            info.drop_tree()


def _item_tables(container: Any) -> None:
    """Module pages list items in a grid of name and summary: a bulleted list instead."""
    for table in select(container, "div.item-table, ul.item-table, dl.item-table"):
        rows: list[tuple[Any, Any | None]] = []
        children = list(table)
        if table.tag == "dl":
            names = [c for c in children if c.tag == "dt"]
            rows = [(dt, _next_tag(dt, "dd")) for dt in names]
        else:
            for row in children:
                cells = [c for c in row if isinstance(c.tag, str)]
                if cells:
                    rows.append((cells[0], cells[1] if len(cells) > 1 else None))
        listing = lxml.html.Element("ul")
        for name, summary in rows:
            item = lxml.etree.SubElement(listing, "li")
            _move_content(name, item)
            if summary is not None and text_of(summary):
                for paragraph in select(summary, "p"):
                    paragraph.drop_tag()  # a one-line summary, on the item's line
                separator = lxml.etree.SubElement(item, "span")
                separator.text = " — "
                _move_content(summary, item)
        replace_with(table, listing)


def _next_tag(element: Any, tag: str) -> Any | None:
    sibling = element.getnext()
    return sibling if sibling is not None and sibling.tag == tag else None


def _move_content(source: Any, target: Any) -> None:
    """Append the inline content of ``source`` to ``target``."""
    holder = lxml.html.Element("span")
    holder.text = (source.text or "").lstrip()
    for child in list(source):
        holder.append(child)
    target.append(holder)


PROFILE = Profile(name="rustdoc", main=MAIN, clean=clean)
