"""Data tables: every one a GFM table of the same shape, or its list form."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from markdown_oracle.base import Check, _collapse, _snip
from markdown_oracle.code_checks import _text_without
from markdown_oracle.html_side import _iter_main
from markdown_oracle.md_side import MdTable, ParsedMarkdown

# Tables --------------------------------------------------------------------------------------

NAV_WORDS = frozenset(
    [
        "prev",
        "previous",
        "next",
        "up",
        "home",
        "top",
        "contents",
        "index",
        "toc",
        "«",
        "»",
        "<",
        ">",
        "<<",
        ">>",
        "←",
        "→",
        "↑",
        "?",
        "[<]",
        "[>]",
        "[<<]",
        "[>>]",
        "[up]",
        "[top]",
        "[contents]",
        "[index]",
        "[?]",
        "[prev]",
        "[next]",
        "[home]",
        "fastback",
        "fastforward",
        "back",
        "forward",
        "previous_page",
        "next_page",
    ]
) | {
    "table of contents",
    "previous page",
    "next page",
    "previous topic",
    "next topic",
    "previous chapter",
    "next chapter",
    "go to the top",
    "back to top",
}


def _norm_cell(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def _rows(table: Any) -> list[list[Any]]:
    rows = []
    for tr in table.iter("tr"):
        owner = next((a for a in tr.iterancestors() if a.tag == "table"), None)
        if owner is table:
            rows.append([c for c in tr if isinstance(c.tag, str) and c.tag in ("td", "th")])
    return rows


def _span(cell: Any, attribute: str) -> int:
    try:
        return max(1, min(int(cell.get(attribute) or 1), 50))
    except ValueError:
        return 1


def _grid(rows: list[list[Any]], excluded: set[Any] | frozenset = frozenset()) -> list[list[str]]:
    """Cell texts with colspans and rowspans expanded (a spanned slot is an empty cell)."""
    grid: list[list[str]] = []
    pending: dict[int, int] = {}  # column -> rows still covered by a rowspan from above
    for row in rows:
        out: list[str] = []
        cells = iter(row)
        col = 0
        while True:
            if pending.get(col, 0) > 0:
                pending[col] -= 1
                out.append("")
                col += 1
                continue
            cell = next(cells, None)
            if cell is None:
                break
            colspan, rowspan = _span(cell, "colspan"), _span(cell, "rowspan")
            for k in range(colspan):
                out.append(_collapse(_text_without(cell, excluded)) if k == 0 else "")
                if rowspan > 1:
                    pending[col + k] = rowspan - 1
            col += colspan
        while any(v > 0 for c, v in pending.items() if c >= col):  # trailing spanned slots
            if pending.get(col, 0) > 0:
                pending[col] -= 1
                out.append("")
            else:
                out.append("")
            col += 1
        grid.append(out)
    return grid


def _is_nav_text(text: str) -> bool:
    words = _collapse(text).lower()
    if not words:
        return True
    if words in NAV_WORDS:
        return True
    parts = [p.strip() for p in re.split(r"[|·•,:]|\s{2,}", words) if p.strip()]
    return all(p in NAV_WORDS or p.strip("[]") in NAV_WORDS for p in parts)


def html_data_tables(
    roots: list[Any], excluded: set[Any], layout: str | None = None
) -> list[tuple[Any, list[list[str]], bool]]:
    """(table, cell texts with spans expanded, has block content in cells).

    ``layout``: a selector of tables the set's generator uses for layout (Doxygen's signature
    and declaration tables), which are not held to the table check.
    """
    out = []
    skip = set()
    for root in roots:
        if layout:
            skip.update(root.cssselect(layout))
    for table in _iter_main(roots, excluded, "table"):
        if table.get("role") in ("presentation", "none") or table in skip:
            continue
        if any(t is not table for t in table.iter("table")):
            continue  # a layout table around another table
        rows = _rows(table)
        if len(rows) < 2:
            continue
        texts = _grid(rows, excluded)
        cols = max(len(r) for r in texts)
        if cols < 2:
            continue
        has_th = table.find(".//th") is not None
        full_rows = sum(1 for r in texts if sum(1 for c in r if c) >= 2)
        if not has_th and full_rows < 2:
            continue
        all_cells = [c for r in texts for c in r if c]
        if all_cells and all(
            _is_nav_text(c) or (len(c.split()) <= 6 and _is_nav_text(c)) for c in all_cells
        ):
            continue
        if (
            sum(1 for c in all_cells if _is_nav_text(c)) >= max(2, len(all_cells) // 2)
            and len(rows) <= 2
        ):
            continue  # DocBook-style navigation table: Prev | Up | Next
        blocky = any(
            cell.find(f".//{tag}") is not None
            for row in rows
            for cell in row
            for tag in ("ul", "ol", "pre", "dl", "table", "p", "div")
        )
        out.append((table, texts, blocky))
    return out


def _table_matches(html_rows: list[list[str]], md_table: MdTable) -> bool:
    cols = max(len(r) for r in html_rows)
    if len(md_table.header) != cols:
        return False
    md_rows = [md_table.header, *md_table.rows]
    if len(md_rows) == len(html_rows) + 1 and not any(c.strip() for c in md_table.header):
        md_rows = md_table.rows
    if len(md_rows) != len(html_rows):
        return False
    total = agree = 0
    for hrow, mrow in zip(html_rows, md_rows, strict=False):
        for n, cell in enumerate(hrow):
            if not cell:
                continue
            total += 1
            if n < len(mrow) and _norm_cell(cell) == _norm_cell(mrow[n]):
                agree += 1
    return total == 0 or agree / total >= 0.9


def _list_form(html_rows: list[list[str]], md: ParsedMarkdown) -> bool:
    firsts = [_norm_cell(next((c for c in row if c), ""))[:40] for row in html_rows]
    firsts = [f for f in firsts if f]
    if not firsts:
        return False
    items = [_norm_cell(item) for items in md.lists for item in items]
    blocks = [_norm_cell(b.plain) for b in md.blocks if b.kind in ("li", "dt", "p", "strong")]
    pool = items + blocks
    found = sum(1 for f in firsts if any(p.startswith(f) for p in pool))
    return found >= 0.9 * len(firsts) and len(firsts) >= 1 and bool(items)


def check_tables(tables: list[tuple[Any, list[list[str]], bool]], md: ParsedMarkdown) -> Check:
    check = Check()
    free = list(range(len(md.tables)))
    for _table, rows, blocky in tables:
        check.total += 1
        match = next((j for j in free if _table_matches(rows, md.tables[j])), None)
        if match is not None:
            free.remove(match)
            check.ok += 1
        elif _list_form(rows, md):
            check.ok += 1
            check.extra["list_form"] = check.extra.get("list_form", 0) + 1
        else:
            shape = f"{len(rows)}x{max(len(r) for r in rows)}"
            near = [f"{len(md.tables[j].rows) + 1}x{len(md.tables[j].header)}" for j in free][:4]
            check.fail(
                "not a table" + (" (cells with blocks)" if blocky else ""),
                f"{shape} first row {_snip(' | '.join(rows[0]), 70)}; unused md tables {near}",
            )
    return check


# Chrome --------------------------------------------------------------------------------------
