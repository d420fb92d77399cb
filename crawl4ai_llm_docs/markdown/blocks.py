"""Markdown block structure: ATX headings, fenced code blocks, and the blocks a text tiles into.

Shared by the chunker (where a page may be cut), the prompts (code blocks a result must keep)
and the output writer (headings and fences of the consolidated document).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]|$)")
# Lenient on indentation on purpose: fences inside list items are indented 2-4 spaces, and a
# chunk boundary must not land inside those either. A fence may also open on a container's
# first line, after list markers and quote marks (``- ```py``, ``1. > ~~~``): an item whose
# content starts with code. Missed, its closing fence would read as an opening one and every
# block after it would be paired wrongly.
_CONTAINERS = r"(?:[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+|[ \t]*>[ \t]?)*"
_FENCE_OPEN = re.compile(rf"^({_CONTAINERS}[ \t]*)(`{{3,}}|~{{3,}})(.*)$")
# Quote marks may precede a closing fence (a fenced block inside a quote); list markers may
# not: ``- ```` opens a new item's block.
_FENCE_CLOSE = re.compile(r"^[ \t>]*(`{3,}|~{3,})[ \t]*$")
_MARKER_CHARACTER = re.compile(r"[^ \t>]")

PARAGRAPH = 7  # block level of a paragraph: lower levels are headings, split there first


def heading_level(line: str) -> int:
    """ATX heading level of ``line`` (1-6), or 0 when it is not a heading."""
    match = _HEADING.match(line)
    return len(match.group(1)) if match else 0


@dataclass(frozen=True, slots=True)
class Fence:
    """An opening code fence: its indentation, fence string (e.g. ```` ``` ````) and info."""

    indent: str
    marker: str
    info: str

    def closes(self, line: str) -> bool:
        match = _FENCE_CLOSE.match(line.rstrip("\r\n"))
        return bool(
            match
            and match.group(1)[0] == self.marker[0]
            and len(match.group(1)) >= len(self.marker)
        )

    @property
    def closing_line(self) -> str:
        return f"{self.indent}{self.marker}\n"


def open_fence(line: str) -> Fence | None:
    """The fence ``line`` opens, if it is an opening code fence."""
    match = _FENCE_OPEN.match(line.rstrip("\r\n"))
    if not match:
        return None
    indent, marker, info = match.groups()
    if marker[0] == "`" and "`" in info:  # CommonMark: not a fence, inline code
        return None
    # The closing fence of a block opened after a list marker is indented to the item's text.
    indent = _MARKER_CHARACTER.sub(" ", indent)
    return Fence(indent=indent, marker=marker, info=info.strip())


def fence_mask(lines: Sequence[str]) -> list[bool]:
    """For each line, whether it belongs to a fenced code block (fence lines included)."""
    mask: list[bool] = []
    fence: Fence | None = None
    for line in lines:
        if fence is not None:
            mask.append(True)
            if fence.closes(line):
                fence = None
        else:
            fence = open_fence(line)
            mask.append(fence is not None)
    return mask


class CodeBlock(NamedTuple):
    info: str
    body: list[str]  # lines without their line endings


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block in ``text``; an unclosed fence runs to the end."""
    blocks: list[CodeBlock] = []
    fence: Fence | None = None
    body: list[str] = []
    for line in text.splitlines():
        if fence is None:
            fence = open_fence(line)
            body = []
        elif fence.closes(line):
            blocks.append(CodeBlock(fence.info, body))
            fence = None
        else:
            body.append(line)
    if fence is not None:
        blocks.append(CodeBlock(fence.info, body))
    return blocks


@dataclass(slots=True)
class Block:
    """Lines ``start:end`` of the text: a heading or paragraph, or one fenced code block.

    Blank lines belong to the block before them, so the blocks tile the text exactly.
    """

    start: int
    end: int
    level: int  # 1-6 starts with a heading, PARAGRAPH otherwise
    fence: Fence | None = None
    body_end: int = 0  # fence blocks: the closing fence line, or the end of an unclosed fence
    closed: bool = False


def parse_blocks(lines: Sequence[str]) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    after_blank = True
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            if current is None:
                current = Block(i, i, PARAGRAPH)
                blocks.append(current)
            current.end = i + 1
            after_blank = True
            i += 1
            continue
        fence = open_fence(line)
        if fence is not None:
            end = i + 1
            while end < len(lines) and not fence.closes(lines[end]):
                end += 1
            closed = end < len(lines)
            current = Block(i, end + 1 if closed else end, PARAGRAPH, fence, end, closed)
            blocks.append(current)
            # Lines right after a closing fence start a new block, as after a blank line.
            after_blank = True
            i = current.end
            continue
        level = heading_level(line)
        if level or after_blank or current is None or current.fence is not None:
            current = Block(i, i + 1, level or PARAGRAPH)
            blocks.append(current)
        else:
            current.end = i + 1
        # A heading line ends its own block only for boundary purposes; text right under it
        # stays with it so a heading is never separated from its first paragraph.
        after_blank = False
        i += 1
    return blocks
