"""The judge's length and repetition rules, applied to an answer while it arrives.

A model that loops (the same line again and again) or runs on past ``max_output_ratio`` of
its chunk writes an answer ``judge`` will reject whatever comes next: both measures only grow
as text arrives. ``AnswerGuard.feed`` is given each piece of a streamed answer and says when
that point is passed, so the client stops reading (and paying for) it; ``cut_off`` says the
same of an answer the provider cut off at ``max_tokens``, so a loop is an unfaithful answer
rather than a reason to split the chunk.

The rules are the judge's own, on the same normalised lines (``MarkdownFacts.pieces``): a line
(or a sentence of a long line) of at least ``MIN_REPEATED_CHARS`` characters seen more than
``max_repeats`` times, and more often than in the chunk; and more non-space characters than
``max_output_ratio`` of the whole chunk (links included, as the judge's upper bound counts
them) plus the judge's ``LENGTH_ALLOWANCE``, plus ``DESCRIPTION_ALLOWANCE`` for the
description line and a wrapper the judge does not count.
"""

from __future__ import annotations

from collections import Counter

from crawl4ai_llm_docs.llm.faithfulness.facts import (
    MarkdownFacts,
    non_space,
    one_line,
    without_markup,
)
from crawl4ai_llm_docs.llm.faithfulness.judge import (
    LENGTH_ALLOWANCE,
    MIN_REPEATED_CHARS,
    FaithfulSettings,
)

# Non-space characters an answer may have beyond the ratio before it is stopped: the
# ``<!-- description: ... -->`` line and a ```` ```markdown ```` wrapper, which the judge
# removes before it measures.
DESCRIPTION_ALLOWANCE = 400
_LONG_LINE = 200  # as MarkdownFacts.pieces: longer lines also count by sentence


class AnswerGuard:
    """One answer's running measures; make one per request attempt."""

    def __init__(self, chunk: MarkdownFacts, settings: FaithfulSettings) -> None:
        self._chunk = chunk
        self._settings = settings
        self._limit = settings.max_repeats
        self._ratio = settings.max_output_ratio
        self._whole = non_space(chunk.text)
        self._max_size = int(self._ratio * self._whole) + LENGTH_ALLOWANCE + DESCRIPTION_ALLOWANCE
        self._size = 0
        self._partial: list[str] = []  # the line being written
        self._counts: Counter[str] = Counter()

    def feed(self, text: str) -> str | None:
        """Why to stop the answer now that ``text`` arrived, or None to read on."""
        self._size += non_space(text)
        if self._size > self._max_size:
            return (
                f"the answer passed {self._ratio:.0%} of the chunk's length "
                f"({self._size} of {self._whole} non-space characters)"
            )
        if "\n" not in text:
            self._partial.append(text)
            return None
        head, *rest = text.split("\n")
        self._partial.append(head)
        lines = ["".join(self._partial), *rest[:-1]]
        self._partial = [rest[-1]]
        for line in lines:
            reason = self._line(line)
            if reason is not None:
                return reason
        return None

    def cut_off(self, content: str) -> str | None:
        """Why an answer cut off at ``max_tokens`` is unfaithful (it looped or ran past the
        ratio), or None: then it was cut off honestly and the chunk is too large."""
        return AnswerGuard(self._chunk, self._settings).feed(content + "\n")

    def _line(self, line: str) -> str | None:
        key = without_markup(line)
        keys = [key]
        if len(key) > _LONG_LINE and ". " in key:
            keys.extend(key.split(". "))
        for piece in keys:
            self._counts[piece] += 1
            times = self._counts[piece]
            if times > self._limit and len(piece) >= MIN_REPEATED_CHARS and self._looped(piece):
                shown = one_line(piece)
                shown = shown if len(shown) <= 50 else shown[:47] + "..."
                before = self._chunk.pieces.get(piece, 0)
                return (
                    f"the line {shown!r} is repeated {times} times ({before} in the chunk, "
                    f"at most {self._limit} allowed)"
                )
        return None

    def _looped(self, piece: str) -> bool:
        # As often as in the chunk is no loop, also when the chunk has it inside longer lines.
        times = self._counts[piece]
        return times > self._chunk.pieces.get(piece, 0) and times > self._chunk.plain.count(piece)
