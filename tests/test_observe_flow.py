"""Flow: short cells wrapped between cells, never inside one, in order, as few rows as greedy."""

from __future__ import annotations

import io
import itertools

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from crawl4ai_llm_docs.observe.flow import Flow

# Cells are "label value" phrases: words joined by single spaces, no wider than the line here.
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789%/.()", min_size=1, max_size=8)
CELL = st.lists(WORD, min_size=1, max_size=4).map(" ".join)


def drawn(renderable: object, width: int) -> list[str]:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


@given(cells=st.lists(CELL, min_size=1, max_size=15), width=st.integers(40, 160))
def test_cells_wrap_whole_in_order(cells: list[str], width: int) -> None:
    lines = drawn(Flow(cells, gap=3), width)
    assert all(len(line) <= width for line in lines)
    # Reading the rows left to right gives the cells back, each whole, in order.
    assert [cell for line in lines for cell in line.split("   ")] == cells
    # Greedy: a row is only ended by a cell that would not fit after it.
    for line, following in itertools.pairwise(lines):
        assert len(line) + 3 + len(following.split("   ")[0]) > width


@given(
    cells=st.lists(st.tuples(CELL, st.integers(0, 30)), min_size=1, max_size=10),
    width=st.integers(40, 160),
)
def test_slots_hold_the_layout_still(cells: list[tuple[str, int]], width: int) -> None:
    """Laid out at their slots, cells keep their rows whatever their text is, up to the slot."""
    slots = [len(text) + extra for text, extra in cells]
    wide = Flow(["x" * slot for slot in slots], gap=2, slots=slots)
    narrow = Flow([text for text, _ in cells], gap=2, slots=slots)
    assert narrow.rows(width) == wide.rows(width)
    for line in drawn(narrow, width):
        assert len(line) <= width
        assert line == line.rstrip()  # padding only between cells


def test_a_cell_wider_than_the_line_is_folded_not_cut() -> None:
    path = "/a/very/long/path/" * 5
    lines = drawn(Flow(["Output", path], gap=1), 40)
    assert "…" not in "".join(lines)
    assert lines[0] == "Output"
    assert "".join(lines[1:]) == path


def test_in_a_table_the_column_wraps_between_phrases() -> None:
    phrases = ["3", "(errors: 1,", "retries: 1,", "HTTP 429: 1)"]
    table = Table(show_header=False)
    table.add_column()
    table.add_column()
    table.add_row("LLM requests", Flow(phrases, gap=1))
    wide = drawn(table, 80)
    assert any("3 (errors: 1, retries: 1, HTTP 429: 1)" in line for line in wide)
    narrow = drawn(table, 36)
    assert all(len(line) <= 36 for line in narrow)
    for phrase in phrases:
        assert any(phrase in line for line in narrow), (phrase, narrow)
    assert len(narrow) > len(wide)  # it did wrap


def test_styles_survive_the_layout() -> None:
    console = Console(width=40, file=io.StringIO(), force_terminal=True, color_system="standard")
    console.print(Flow([Text.assemble(("breaker", "bold"), " ", ("open", "red"))], gap=2))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[31mopen" in out
