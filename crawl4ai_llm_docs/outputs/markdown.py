"""Markdown and file helpers of the write stage: atomic private files, heading anchors, and
nesting a document's headings under the section that holds it."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TextIO

from crawl4ai_llm_docs.markdown.blocks import Fence, fence_mask, heading_level, open_fence

FILE_MODE = 0o600

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# Lines that cannot be the text of a setext heading: lists, quotes, tables, HTML.
_NOT_SETEXT_TEXT = re.compile(r"^ {0,3}(?:[-*+>|<]|\d{1,9}[.)])|^ {4}")

# ---------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_text(path: Path, *, mode: int = FILE_MODE) -> Iterator[TextIO]:
    """A text file that replaces ``path`` only when the ``with`` block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class AtomicBatch:
    """Files that replace their targets together: each is written to a temporary file beside
    its target, and ``commit`` renames them all once every one is complete. Leaving the
    ``with`` block without ``commit`` (an error, Ctrl-C) removes the temporary files, so the
    previous set stays whole.

    ``sync_each`` fsyncs every file as it is closed; without it ``commit`` flushes them all to
    disk with one ``os.sync()`` before renaming (thousands of page files: one flush, not one
    per file)."""

    def __init__(self, *, mode: int = FILE_MODE, sync_each: bool = True) -> None:
        self._mode = mode
        self._sync_each = sync_each
        self._pending: list[tuple[str, Path]] = []

    @contextlib.contextmanager
    def open(self, path: Path) -> Iterator[IO[str]]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._pending.append((temp, path))
        os.fchmod(fd, self._mode)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            if self._sync_each:
                os.fsync(handle.fileno())

    def commit(self) -> None:
        if not self._sync_each and self._pending:
            os.sync()
        for temp, path in self._pending:
            os.replace(temp, path)
        self._pending.clear()

    def discard(self) -> None:
        for temp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        self._pending.clear()

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def scratch_file(directory: Path) -> IO[str]:
    """An unnamed temporary file beside the output (same disk, gone when closed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n", dir=directory)


# ---------------------------------------------------------------- Markdown helpers


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
