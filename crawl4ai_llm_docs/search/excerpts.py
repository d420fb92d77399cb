"""Text cut to a token budget (cl100k) at line boundaries, as valid Markdown.

``best_excerpt`` keeps the run of lines of a section that holds the most query words (a
search result over budget shows the part that matched, not its first lines); ``page_window``
gives a page from a line on, as much as fits, and where to continue. A cut inside a code
block closes the block, and an excerpt starting inside one reopens it, so every excerpt
renders as its source does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crawl4ai_llm_docs.markdown.blocks import Fence, open_fence
from crawl4ai_llm_docs.markdown.tokens import count_tokens, line_counter

ELLIPSIS = "…"
RESERVED_TOKENS = 8  # for the ellipsis lines and a reopened or closed code fence
_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ies", "es", "ing", "ed", "ly", "s")


def _stem(word: str) -> str:
    """A rough stem, enough to tell which lines hold a query's words (FTS5 chose the
    section with the real stemmer; this only places the excerpt)."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def stems(words: Iterable[str]) -> frozenset[str]:
    return frozenset(_stem(word) for word in words)


def stem_matcher(wanted: frozenset[str]) -> dict[str, str]:
    """The lower-case words whose stem is one of ``wanted`` (stems), each mapped to it.

    A word stems to ``s`` only when it is ``s`` or ``s`` plus one of the suffixes, so
    ``word.lower() in matcher`` answers ``_stem(word) in wanted`` with one lookup: telling
    which words of a long text are wanted no longer stems each of them (that was most of the
    time of a search answered by page fields)."""
    matcher: dict[str, str] = {}
    for stem in wanted:
        for word in (stem, *(stem + suffix for suffix in _SUFFIXES)):
            if _stem(word) == stem:
                matcher[word] = stem
    return matcher


@dataclass(frozen=True)
class Excerpt:
    text: str
    tokens: int
    truncated: bool  # some of the text was left out
    start: int  # first line kept
    end: int  # line after the last kept


def _code_blocks(lines: Sequence[str]) -> list[int]:
    """For each line, the line that opens the code block holding it (fences included), or -1."""
    owners: list[int] = []
    fence: Fence | None = None
    opener = -1
    for number, line in enumerate(lines):
        if fence is None:
            fence = open_fence(line)
            opener = number if fence is not None else -1
            owners.append(opener)
        else:
            owners.append(opener)
            if fence.closes(line):
                fence = None
    return owners


def _slice(lines: Sequence[str], start: int, end: int, owners: Sequence[int]) -> str:
    """Lines ``start:end``, a code block cut at either end reopened or closed, and an
    ellipsis line where text was left out."""
    kept = list(lines[start:end])
    if start < end and owners[start] not in (-1, start):
        kept.insert(0, lines[owners[start]])
    if start < end < len(lines) and owners[end - 1] != -1 and owners[end] == owners[end - 1]:
        fence = open_fence(lines[owners[end - 1]])
        kept.append(fence.closing_line.rstrip("\n") if fence else "```")
    text = "\n".join(kept).strip("\n")
    if start > 0:
        text = f"{ELLIPSIS}\n{text}"
    if end < len(lines):
        text = f"{text}\n{ELLIPSIS}"
    return text


def _line_scores(lines: Sequence[str], wanted: frozenset[str]) -> list[int]:
    matcher = stem_matcher(wanted)
    return [sum(1 for word in _WORD.findall(line) if word.lower() in matcher) for line in lines]


def _fitted(lines: Sequence[str], start: int, end: int, max_tokens: int) -> Excerpt:
    """Lines ``start:end`` rendered, dropping lines at the end until the exact count fits
    (line sums run close to, not exactly at, the count); a lone line too long is cut."""
    owners = _code_blocks(lines)
    while end - start > 1 and owners[end - 1] == end - 1 and end < len(lines):
        end -= 1  # a code block's opening fence with none of its lines: leave it for later
    while True:
        text = _slice(lines, start, end, owners)
        tokens = count_tokens(text)
        truncated = start > 0 or end < len(lines)
        if tokens <= max_tokens:
            return Excerpt(text, tokens, truncated, start, end)
        if end - start <= 1:
            return _cut_line(lines[start], start, max_tokens)
        end -= 1


def _cut_line(line: str, number: int, max_tokens: int) -> Excerpt:
    """One line longer than the budget: its first characters, cut to fit."""
    chars = max(int(max_tokens * 3), 1)  # about 3.5 characters a token: under budget
    while True:
        text = line[:chars].rstrip() + ELLIPSIS
        tokens = count_tokens(text)
        if tokens <= max_tokens or chars <= 1:
            return Excerpt(text, tokens, True, number, number + 1)
        chars = chars * 3 // 4


def best_excerpt(text: str, words: frozenset[str], max_tokens: int) -> Excerpt:
    """``text`` whole if it fits ``max_tokens``, else the run of its lines that fits and
    holds the most query words (the earliest such run, with the lines before it that fit)."""
    total = count_tokens(text)
    lines = text.split("\n")
    if total <= max_tokens:
        return Excerpt(text, total, False, 0, len(lines))
    count = line_counter()
    costs = [count(line) + 1 for line in lines]  # +1: the newline
    scores = _line_scores(lines, stems(words))
    budget = max(max_tokens - RESERVED_TOKENS, 1)
    best_start, best_end, best_score = 0, 1, -1
    start = used = score = 0
    for end in range(len(lines)):  # the widest window ending at each line, slid along
        used += costs[end]
        score += scores[end]
        while used > budget and start < end:
            used -= costs[start]
            score -= scores[start]
            start += 1
        if score > best_score:
            best_start, best_end, best_score = start, end + 1, score
    return _fitted(lines, best_start, best_end, max_tokens)


def page_window(lines: Sequence[str], start: int, max_tokens: int | None) -> Excerpt:
    """Lines from ``start`` on, as many as fit ``max_tokens`` (at least part of one)."""
    if max_tokens is None:
        return _fitted(lines, start, len(lines), 1 << 62)
    count = line_counter()
    budget = max(max_tokens - RESERVED_TOKENS, 1)
    end, used = start, 0
    while end < len(lines) and (end == start or used + count(lines[end]) + 1 <= budget):
        used += count(lines[end]) + 1
        end += 1
    return _fitted(lines, start, end, max_tokens)
