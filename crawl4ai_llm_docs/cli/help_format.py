"""``--help`` that never breaks an option name across lines.

cyclopts caps the option column at 35 % of the terminal, so at 80 columns
``--disable-adaptive-rate-limiting`` came out as ``--disable-adaptive-rate-limi`` / ``ting``:
neither greppable nor copyable. This formatter widens that column to the longest single name
(descriptions wrap instead); names still wrap between words, never inside one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cyclopts.help import DefaultFormatter
from cyclopts.help.specs import (
    CommandNameRenderer,
    NameRenderer,
    get_default_command_columns,
    get_default_parameter_columns,
)

if TYPE_CHECKING:
    from cyclopts.help import HelpPanel
    from rich.console import Console, ConsoleOptions

_SHARE = 0.35  # of the terminal: cyclopts' own cap, kept when the names fit in it


def _longest_word(panel: HelpPanel) -> int:
    words = [
        word
        for entry in panel.entries
        for label in (*entry.display_labels_with_metavar, *entry.all_options)
        for word in label.split()
    ]
    return max((len(word) for word in words), default=0)


class NoBreakFormatter(DefaultFormatter):
    """cyclopts' default help, with a names column at least as wide as the longest name."""

    def __call__(self, console: Console, options: ConsoleOptions, panel: HelpPanel) -> None:
        command = panel.format == "command"
        build = get_default_command_columns if command else get_default_parameter_columns
        longest = _longest_word(panel)
        width = max(math.ceil(console.width * _SHARE), longest)
        columns: list[Any] = []
        for column in build(console, options, panel.entries):
            if isinstance(column.renderer, NameRenderer | CommandNameRenderer):
                renderer = type(column.renderer)(max_width=width)
                column = column.copy(renderer=renderer, max_width=width, min_width=longest)
            columns.append(column)
        DefaultFormatter(
            panel_spec=self.panel_spec,
            table_spec=self.table_spec,
            column_specs=tuple(columns),
            show_metavar=self.show_metavar,
        )(console, options, panel)
