"""Markdown helpers of the outputs: heading anchors, one-line text, and nesting a document's
headings under the section that holds it."""

from __future__ import annotations

import re
import unicodedata

from crawl4ai_llm_docs.markdown.blocks import Fence, fence_mask, heading_level, open_fence

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# Lines that cannot be the text of a setext heading: lists, quotes, tables, HTML.
_NOT_SETEXT_TEXT = re.compile(r"^ {0,3}(?:[-*+>|<]|\d{1,9}[.)])|^ {4}")


def one_line(text: str) -> str:
    return " ".join(text.split())


def slugify(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = [
        char
        for char in text.strip().lower()
        if char.isalnum()
        or char in " -_"
        or unicodedata.category(char).startswith("M")
        or unicodedata.category(char) == "Pc"
    ]
    return "".join(kept).replace(" ", "-")


def _trim_blank_lines(lines: list[str]) -> list[str]:
    """Without blank lines at either end; the first line keeps its indentation (code)."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = len(lines)
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _close_open_fence(lines: list[str]) -> list[str]:
    """Close a code block left open at the end, so it cannot swallow the next document."""
    fence: Fence | None = None
    for line in lines:
        if fence is None:
            fence = open_fence(line)
        elif fence.closes(line):
            fence = None
    return lines if fence is None else [*lines, fence.closing_line.rstrip("\n")]


def _same_text(heading: str, title: str) -> bool:
    return one_line(heading).strip("#").strip().casefold() == one_line(title).casefold()


def nest_markdown(markdown: str, *, top: int = 3, title: str = "", also_title: str = "") -> str:
    """A document's Markdown shifted so its highest heading becomes level ``top``.

    Setext headings become ATX headings; levels past 6 stay at 6; lines in code blocks are
    left alone, and a code block left open at the end is closed. A first heading that only
    repeats ``title`` or ``also_title`` (already the section heading) is dropped.
    """
    lines = _trim_blank_lines(markdown.rstrip().split("\n"))
    in_code = fence_mask(lines)
    levels: list[tuple[int, int, str]] = []  # (line, level, text); line is the heading's first
    setext_underlines: set[int] = set()
    for number, line in enumerate(lines):
        if in_code[number]:
            continue
        if level := heading_level(line):
            match = _ATX.match(line)
            levels.append((number, level, (match.group(2) or "") if match else line))
            continue
        underline = _SETEXT.match(line)
        if underline and number > 0 and not in_code[number - 1]:
            previous = lines[number - 1]
            single = number < 2 or not lines[number - 2].strip()  # a one-line paragraph
            if (
                previous.strip()
                and single
                and not heading_level(previous)
                and not _NOT_SETEXT_TEXT.match(previous)
                and open_fence(previous) is None
            ):
                level = 1 if underline.group(1)[0] == "=" else 2
                levels.append((number - 1, level, previous.strip()))
                setext_underlines.add(number)
    if not levels:
        return "\n".join(_close_open_fence(lines))
    drop: set[int] = set()
    first_line, _, first_text = levels[0]
    if any(t and _same_text(first_text, t) for t in (title, also_title)) and not any(
        lines[i].strip() for i in range(first_line)
    ):
        drop.add(first_line)
        drop.update(n for n in setext_underlines if n == first_line + 1)
        levels = levels[1:]
    shift = top - min((level for _, level, _ in levels), default=top)
    rewritten = {
        number: f"{'#' * max(1, min(6, level + shift))} {text}".rstrip()
        for number, level, text in levels
    }
    out: list[str] = []
    for number, line in enumerate(lines):
        if number in drop or number in setext_underlines:
            continue
        out.append(rewritten.get(number, line))
    return "\n".join(_close_open_fence(_trim_blank_lines(out)))
