"""Markdown-aware splitting of pages into chunks, and of a chunk into halves.

A page larger than ``max_tokens`` is cut at heading boundaries (highest level first), then at
paragraphs (blank lines), then at lines, and never inside a fenced code block: a code block
larger than the budget is cut at line boundaries, each part closed and reopened with the same
fence and info string so every chunk is valid Markdown on its own.

To choose cuts, lines are counted one by one and summed (``tokens.line_counter``), which is
fast (a 1 MB page in about 0.1 s) and within a few per cent of counting the whole text; every
chunk is then counted exactly, and one that came out over the budget is cut again. Putting
results back together is in ``reassemble``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from crawl4ai_llm_docs.markdown.blocks import Block, parse_blocks
from crawl4ai_llm_docs.markdown.tokens import count_tokens, line_counter
from crawl4ai_llm_docs.models import Chunk, Page


class _Piece(NamedTuple):
    parts: list[str]
    tokens: int


class _Text:
    """A text's lines with per-line token counts and prefix sums."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)
        count = line_counter()
        self.counts = [count(line) for line in self.lines]
        self.prefix = [0]
        for n in self.counts:
            self.prefix.append(self.prefix[-1] + n)

    def tokens(self, start: int, end: int) -> int:
        return self.prefix[end] - self.prefix[start]

    def piece(self, start: int, end: int) -> _Piece:
        return _Piece(self.lines[start:end], self.tokens(start, end))


def _pack(pieces: Sequence[_Piece], budget: int) -> list[_Piece]:
    """Greedily join adjacent pieces while they fit in the budget."""
    packed: list[_Piece] = []
    for piece in pieces:
        if packed and packed[-1].tokens + piece.tokens <= budget:
            last = packed[-1]
            last.parts.extend(piece.parts)  # each piece owns its list: extending is safe
            packed[-1] = _Piece(last.parts, last.tokens + piece.tokens)
        else:
            packed.append(piece)
    return packed


def _with_newline(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


def _split_fence(text: _Text, block: Block, budget: int) -> list[_Piece]:
    """A code block over budget: cut its body at lines, closing and reopening the fence."""
    assert block.fence is not None
    opener = _with_newline(text.lines[block.start])
    closer = block.fence.closing_line
    overhead = text.counts[block.start] + count_tokens(closer)
    body_end = block.body_end
    body = [text.piece(i, i + 1) for i in range(block.start + 1, body_end)]
    groups = _pack(body, max(budget - overhead, 1)) or [_Piece([], 0)]
    pieces: list[_Piece] = []
    for number, group in enumerate(groups):
        parts = [opener, *group.parts]
        parts[-1] = _with_newline(parts[-1])
        if number < len(groups) - 1:
            parts.append(closer)
        else:
            parts.extend(text.lines[body_end : block.end])
        pieces.append(_Piece(parts, group.tokens + overhead))
    return pieces


def _split_blocks(text: _Text, blocks: Sequence[Block], budget: int) -> list[_Piece]:
    start, end = blocks[0].start, blocks[-1].end
    if text.tokens(start, end) <= budget:
        return [text.piece(start, end)]
    if len(blocks) == 1:
        block = blocks[0]
        if block.fence is not None:
            return _split_fence(text, block, budget)
        return _pack([text.piece(i, i + 1) for i in range(start, end)], budget)
    # Cut before every block of the highest-ranked boundary present (H1, then H2 ... then
    # paragraphs), split what is still too big the same way, then pack neighbours back.
    level = min(block.level for block in blocks[1:])
    groups: list[list[Block]] = [[blocks[0]]]
    for block in blocks[1:]:
        if block.level == level:
            groups.append([block])
        else:
            groups[-1].append(block)
    pieces: list[_Piece] = []
    for group in groups:
        pieces.extend(_split_blocks(text, group, budget))
    return _pack(pieces, budget)


def _trim(text: str) -> str:
    """Drop blank lines at both ends and trailing whitespace; keep the first line's indent."""
    lines = text.rstrip().split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _split_counted(text: str, budget: int, limit: int) -> list[tuple[str, int]]:
    source = _Text(text)
    blocks = parse_blocks(source.lines)
    pieces = _split_blocks(source, blocks, budget) if blocks else [_Piece([text], 0)]
    out: list[tuple[str, int]] = []
    for piece in pieces:
        trimmed = _trim("".join(piece.parts))
        if not trimmed:
            continue
        tokens = count_tokens(trimmed)
        # Summed line counts can, rarely, fall short of the exact count: cut such a piece again
        # with a budget lowered by the overshoot. A piece that will not cut stays as it is.
        if tokens > limit and budget > 1 and "\n" in trimmed:
            again = _split_counted(trimmed, max(budget - (tokens - limit), 1), limit)
            if len(again) > 1:
                out.extend(again)
                continue
        out.append((trimmed, tokens))
    return out


def split_text(text: str, *, max_tokens: int) -> list[tuple[str, int]]:
    """``text`` cut into ``(piece, tokens)`` of at most ``max_tokens`` (see the module docstring).

    A piece is over the budget only when it holds one line too long to cut (inside a code
    block: that line with its fence lines). Empty text gives one empty piece.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    whole = _trim(text)
    tokens = count_tokens(whole)
    if tokens <= max_tokens:  # exact: summed line counts run a little high
        return [(whole, tokens)]
    return _split_counted(whole, max_tokens, max_tokens) or [("", 0)]


def split_page(page: Page, *, max_tokens: int) -> list[Chunk]:
    """The page's Markdown as chunks of at most ``max_tokens`` tokens, in page order."""
    pieces = split_text(page.markdown, max_tokens=max_tokens)
    return [
        Chunk(
            page_index=page.index,
            chunk_index=number,
            chunk_count=len(pieces),
            url=page.final_url or page.url,
            title=page.title,
            text=piece,
            tokens=tokens,
        )
        for number, (piece, tokens) in enumerate(pieces)
    ]


# ---------------------------------------------------------------- splitting a chunk again


_SPLIT_TRIES = 8


class _Cut(NamedTuple):
    rank: int  # 1-6 before a heading, 7 paragraph, 8 line, 9 line inside a code block
    line: int  # the cut is before this line
    fence: Block | None  # set when the cut is inside this code block


def _cuts(text: _Text, blocks: Sequence[Block]) -> Iterator[_Cut]:
    for number, block in enumerate(blocks):
        if number:
            yield _Cut(block.level, block.start, None)
        if block.fence is not None:
            # Not right after the opener: that would leave an empty code block.
            for line in range(block.start + 2, block.body_end):
                yield _Cut(9, line, block)
        else:
            for line in range(block.start + 1, block.end):
                if text.lines[line].strip():
                    yield _Cut(8, line, None)


def split_chunk(chunk: Chunk, *, min_tokens: int) -> list[Chunk] | None:
    """Cut ``chunk`` into two roughly equal halves, for a provider that found it too large.

    The cut follows the same preferences as ``split_page``. Both halves keep the chunk's
    ``chunk_index`` and ``chunk_count``: their results go back in place of the chunk's, in
    order (see ``merge_results``; ``reassemble`` keeps equal indices in the order given).
    Returns None when no cut leaves both halves with at least ``min_tokens`` tokens.
    """
    text = _Text(chunk.text)
    blocks = parse_blocks(text.lines)
    total = text.tokens(0, len(text.lines))
    if total < 2 * min_tokens:
        return None
    usable = [
        cut
        for cut in _cuts(text, blocks)
        if min(text.tokens(0, cut.line), text.tokens(cut.line, len(text.lines))) >= min_tokens
    ]

    def preference(cut: _Cut) -> tuple[int, int, int]:
        # The best-ranked cut that leaves the smaller half at least a quarter of the text;
        # failing that, the most balanced cut of any rank.
        balance = abs(2 * text.prefix[cut.line] - total)
        return (0, cut.rank, balance) if balance <= total // 2 else (1, 0, balance)

    # Cuts were chosen on summed line counts; the halves are counted exactly, and the next
    # preferred cut is tried when one comes out below min_tokens after all.
    for cut in sorted(usable, key=preference)[:_SPLIT_TRIES]:
        halves = _cut_text(text, cut)
        counts = [count_tokens(half) for half in halves]
        if min(counts) >= min_tokens:
            return [
                Chunk(
                    page_index=chunk.page_index,
                    chunk_index=chunk.chunk_index,
                    chunk_count=chunk.chunk_count,
                    url=chunk.url,
                    title=chunk.title,
                    text=half,
                    tokens=tokens,
                )
                for half, tokens in zip(halves, counts, strict=True)
            ]
    return None


def _cut_text(text: _Text, cut: _Cut) -> tuple[str, str]:
    head = "".join(text.lines[: cut.line])
    tail = "".join(text.lines[cut.line :])
    if cut.fence is not None and cut.fence.fence is not None:
        head = _with_newline(head) + cut.fence.fence.closing_line
        tail = _with_newline(text.lines[cut.fence.start]) + tail
    return _trim(head), _trim(tail)
