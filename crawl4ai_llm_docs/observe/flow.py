"""Short cells laid out in rows: wrapped between cells, never inside one, never cut with ``…``.

The live view and the summary are made of small "label value" phrases (``429s 3``,
``retries: 1,``). Rich wraps text at any space and cuts ``no_wrap`` columns with an ellipsis;
a ``Flow`` instead fills each row with as many whole cells as fit and starts the next row
with the first that does not. Only a cell wider than the whole line is folded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text


class Flow:
    """Cells left to right, ``gap`` spaces apart, wrapped onto as many rows as needed.

    ``slots`` (optional, one per cell) are the widths to lay a cell out at when wider than its
    text: the widest value a figure usually takes, so the rows do not jump as figures change.
    """

    def __init__(
        self, cells: Iterable[Text | str], *, gap: int, slots: Sequence[int] | None = None
    ) -> None:
        self.cells = [Text(cell) if isinstance(cell, str) else cell for cell in cells]
        widths = [cell.cell_len for cell in self.cells]
        reserved = widths if slots is None else slots
        self.slots = [max(w, s) for w, s in zip(widths, reserved, strict=True)]
        self.gap = gap

    def rows(self, width: int) -> list[list[int]]:
        """The cells of each row (indices), filled greedily; a row holds at least one cell."""
        rows: list[list[int]] = []
        used = 0
        for index, slot in enumerate(self.slots):
            if rows and used + self.gap + slot <= width:
                rows[-1].append(index)
                used += self.gap + slot
            else:
                rows.append([index])
                used = slot
        return rows

    def lines(self, width: int) -> list[Text]:
        lines = []
        for row in self.rows(width):
            line = Text()
            for position, index in enumerate(row):
                if position:
                    line.append(" " * self.gap)
                cell = self.cells[index]
                line.append_text(cell)
                if position < len(row) - 1:  # pad to the slot; never trailing spaces
                    line.append(" " * (self.slots[index] - cell.cell_len))
            lines.append(line)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines(options.max_width):
            # Only a lone cell wider than the line gets here too wide: folded, not cut.
            line.overflow = "fold"
            yield line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        if not self.cells:
            return Measurement(0, 0)
        one_row = sum(self.slots) + self.gap * (len(self.slots) - 1)
        return Measurement(max(self.slots), one_row).clamp(max_width=options.max_width)
