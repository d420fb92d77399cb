"""Edit mode: a chunk as numbered lines, and an edit script applied to it.

The model sees every non-blank line of the chunk with its number (``12| text``); a fenced code
block is one unit, numbered on its opening fence, and blank lines are not numbered. Its answer
(``edit_script.EditScript``) names units to drop, headings to re-level and wrapped lines to
join. ``NumberedChunk.apply`` builds the cleaned Markdown from the chunk's own lines, so the
model's words never become content (except the heading marks, and a title it may add):

    drop      the units named leave; a code block, and a line with inline code (a backtick),
              stay whatever a range says: code is content, and chrome is gone before the
              model sees the page (the extractor removes it), so a drop over code is a
              model's mistake
    headings  the line becomes ``#`` * level and its text (its old marks, a ``**bold**``
              wrapper and a setext underline removed); a code block, table row, list item,
              quote or rule cannot become a heading
    join      consecutive plain lines inside a range become one line, joined by a space; a
              blank line, code block, heading, table row, quote, list item (after the first
              line), rule or indented line is never joined, it starts a new run
    title     ``# title`` before the first chunk of a page that has no level-1 heading

A script that names a unit the chunk does not have, a range ending before it starts, a level
outside 1-6, or a heading on a unit that cannot be one is invalid (``ScriptError``): an
unfaithful answer, like a rewrite that lost code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crawl4ai_llm_docs.llm.edit_script import EditScript, Range, ScriptError
from crawl4ai_llm_docs.markdown.blocks import fence_mask, heading_level, open_fence

_ATX_MARKS = re.compile(r"^ {0,3}#{1,6}(?=[ \t]|$)")
_ATX_CLOSING = re.compile(r"[ \t]+#+[ \t]*$")
_BOLD = re.compile(r"^(\*\*|__)(.+)\1$")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_RULE_OR_UNDERLINE = re.compile(r"^ {0,3}(?:[-*_=][ \t]*){3,}$|^ {0,3}(?:=+|-+)[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
MAX_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Unit:
    """Lines ``start:end`` of the chunk: one non-blank line, or one whole code block."""

    start: int
    end: int
    code: bool


def _is_table_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def _indented(line: str) -> bool:
    return line.startswith(("    ", "\t"))


def can_be_heading(line: str) -> bool:
    """Whether a (non-code) line may become a heading: it has words and is no table row,
    list item, quote or rule."""
    return bool(
        any(ch.isalnum() for ch in line)
        and not _is_table_row(line)
        and not _LIST_ITEM.match(line)
        and not _is_quote(line)
        and not _RULE_OR_UNDERLINE.match(line)
    )


def _starts_run(line: str) -> bool:
    """Whether a line can be the first of a joined paragraph."""
    return bool(
        line.strip()
        and not heading_level(line)
        and not _is_table_row(line)
        and not _is_quote(line)
        and not _indented(line)
        and not _RULE_OR_UNDERLINE.match(line)
        and open_fence(line) is None
    )


def _continues_run(line: str) -> bool:
    """Whether a line can be joined onto the line before it."""
    return _starts_run(line) and not _LIST_ITEM.match(line)


def heading_text(line: str) -> str:
    """A line's text without heading marks, a closing ``###`` or a bold wrapper."""
    text = _ATX_MARKS.sub("", line).strip()
    text = _ATX_CLOSING.sub("", text).strip()
    bold = _BOLD.match(text)
    return bold.group(2).strip() if bold else text


class NumberedChunk:
    """A chunk's lines and units, shown to the model numbered and edited by number."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.units: list[Unit] = []
        index, count = 0, len(self.lines)
        while index < count:
            fence = open_fence(self.lines[index])
            if fence is not None:  # a code block: its fences and everything between
                end = index + 1
                while end < count and not fence.closes(self.lines[end]):
                    end += 1
                end = min(end + 1, count)  # an unclosed fence runs to the end
                self.units.append(Unit(index, end, code=True))
                index = end
            elif self.lines[index].strip():
                self.units.append(Unit(index, index + 1, code=False))
                index += 1
            else:
                index += 1

    def render(self) -> str:
        """The chunk as the model sees it: ``N| `` before the first line of every unit."""
        starts = {unit.start: number for number, unit in enumerate(self.units, start=1)}
        width = len(str(len(self.units)))
        out: list[str] = []
        for index, line in enumerate(self.lines):
            number = starts.get(index)
            out.append(line if number is None else f"{number:>{width}}| {line}")
        return "\n".join(out)

    # ------------------------------------------------------------ applying a script

    def _holds_code(self, unit: int) -> bool:
        """A code block, or a line with (part of) an inline code span: never dropped."""
        found = self.units[unit]
        return found.code or "`" in self.lines[found.start]

    def _unit(self, number: int, what: str) -> int:
        if not 1 <= number <= len(self.units):
            raise ScriptError(
                f"{what} names line {number}, but the chunk has lines 1-{len(self.units)}"
            )
        return number - 1

    def _span(self, pair: Range, what: str) -> range:
        first, last = pair
        start, end = self._unit(first, what), self._unit(last, what)
        if end < start:
            raise ScriptError(f"{what} [{first}, {last}] ends before it starts")
        return range(start, end + 1)

    def apply(self, script: EditScript, *, first_chunk: bool) -> str:
        """The cleaned Markdown; raises ScriptError for a script that is not valid here."""
        dropped: set[int] = set()
        for pair in script.drop:
            dropped.update(u for u in self._span(pair, "drop") if not self._holds_code(u))
        levels: dict[int, int] = {}
        for number, level in script.headings:
            unit = self._unit(number, "a heading")
            if not 1 <= level <= MAX_LEVEL:
                raise ScriptError(f"heading level {level} for line {number} is not 1-6")
            line = self.lines[self.units[unit].start]
            if self.units[unit].code or not can_be_heading(line):
                raise ScriptError(f"line {number} cannot become a heading: {line.strip()[:40]!r}")
            levels[unit] = level
        join_range: dict[int, int] = {}  # unit -> the join range it belongs to
        for number, pair in enumerate(script.join):
            for unit in self._span(pair, "join"):
                join_range.setdefault(unit, number)
        out = self._lines(dropped, levels, join_range)
        text = "\n".join(out).strip("\n")
        if first_chunk and script.title and not _has_title(out):
            text = f"# {script.title}\n\n{text}"
        return text + "\n" if text else ""

    def _lines(
        self, dropped: set[int], levels: dict[int, int], join_range: dict[int, int]
    ) -> list[str]:
        out: list[str] = []
        # The join range of the last line written, while it may take the next line.
        open_run: int | None = None
        underline_at = -1  # the line right after a dropped line or a new heading
        unit_at = {unit.start: number for number, unit in enumerate(self.units)}
        index = 0
        while index < len(self.lines):
            number = unit_at.get(index)
            if number is None:  # a blank line
                if out and out[-1].strip():
                    out.append("")
                open_run = None
                index += 1
                continue
            unit = self.units[number]
            index = unit.end
            line = self.lines[unit.start]
            if unit.start == underline_at and _SETEXT_UNDERLINE.match(line):
                continue  # the underline of a line now dropped or made an ATX heading
            if number in dropped:
                underline_at = unit.end  # left alone, it would make the line above a heading
                continue
            if unit.code:
                out.extend(self.lines[unit.start : unit.end])
                open_run = None
                continue
            if number in levels:
                out.append("#" * levels[number] + " " + heading_text(line))
                open_run = None
                underline_at = unit.end
                continue
            run = join_range.get(number)
            if run is not None and open_run == run and _continues_run(line):
                out[-1] = out[-1].rstrip() + " " + line.strip()
                continue
            out.append(line)
            open_run = run if run is not None and _starts_run(line) else None
        return out


def _has_title(lines: list[str]) -> bool:
    """Whether the text has a level-1 heading outside code (ATX or setext)."""
    mask = fence_mask(lines)
    for index, line in enumerate(lines):
        if mask[index]:
            continue
        if heading_level(line) == 1:
            return True
        if (
            index
            and lines[index - 1].strip()
            and not mask[index - 1]
            and re.match(r"^ {0,3}=+[ \t]*$", line)
        ):
            return True
    return False
