"""The stream guard applies the judge's own length and repetition rules as an answer arrives.

Checked against ``judge`` itself on generated chunks and answers, fed in random pieces: the
guard never stops an answer the judge would accept on those rules, every answer it stops is
one the judge rejects for repetition or length, and a loop is stopped at its
``max_repeats + 1``-th repetition, not at ``max_tokens``.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts, non_space
from crawl4ai_llm_docs.llm.faithfulness.guard import DESCRIPTION_ALLOWANCE, AnswerGuard
from crawl4ai_llm_docs.llm.faithfulness.judge import (
    LENGTH_ALLOWANCE,
    FaithfulSettings,
    judge,
    length_problem,
)

SETTINGS = FaithfulSettings()
_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
_lines = st.lists(st.sampled_from(_WORDS), min_size=2, max_size=12).map(" ".join)


def _feed(guard: AnswerGuard, answer: str, cuts: list[int]) -> tuple[str | None, int]:
    """Feed ``answer`` in pieces cut at ``cuts``; the reason it was stopped and where."""
    points = sorted({c % (len(answer) + 1) for c in cuts} | {0, len(answer)})
    for start, end in itertools.pairwise(points):
        reason = guard.feed(answer[start:end])
        if reason is not None:
            return reason, end
    return None, len(answer)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[str, str, list[int]]:
    chunk_lines = draw(st.lists(_lines, min_size=3, max_size=30))
    chunk = "\n\n".join(chunk_lines) + "\n"
    # Lines of the chunk, the start of one (inside a longer chunk line), or a new line.
    pieces = [*chunk_lines, *(line[: len(line) // 2 + 6] for line in chunk_lines), "- a new line"]
    answer_lines = draw(st.lists(st.sampled_from(pieces), max_size=60))
    if draw(st.booleans()):  # a loop: one line many times
        answer_lines += [draw(st.sampled_from(pieces))] * draw(st.integers(1, 12))
    answer = "\n".join(answer_lines)
    cuts = draw(st.lists(st.integers(0, 10_000), max_size=30))
    return chunk, answer, cuts


@settings(max_examples=400)
@given(_cases())
def test_the_guard_stops_exactly_the_answers_the_judge_rejects_for_it(
    case: tuple[str, str, list[int]],
) -> None:
    chunk, answer, cuts = case
    facts = MarkdownFacts.of(chunk)
    reason, at = _feed(AnswerGuard(facts, SETTINGS), answer, cuts)
    if reason is not None:
        guard_checks = {p.check for p in judge(facts, answer[:at], SETTINGS).problems}
        assert guard_checks & {"repetition", "length"}, (reason, guard_checks)
    # Whatever the judge rejects for repetition, the guard stopped (by the end, at the latest:
    # the last line is complete only once the answer ends).
    final = {p.check for p in judge(facts, answer, SETTINGS).problems}
    ended = reason or AnswerGuard(facts, SETTINGS).cut_off(answer)
    if "repetition" in final:
        assert ended is not None
    if ended is None:
        assert not final & {"repetition"}


def test_a_loop_is_stopped_at_its_first_repetition_past_the_limit() -> None:
    chunk = MarkdownFacts.of("# Title\n\nThe only paragraph of the chunk, long enough.\n")
    guard = AnswerGuard(chunk, SETTINGS)
    line = "See the function reference for the details.\n"
    reasons = [guard.feed(line) for _ in range(10)]
    assert reasons[: SETTINGS.max_repeats] == [None] * SETTINGS.max_repeats
    assert reasons[SETTINGS.max_repeats] is not None
    assert "repeated 4 times (0 in the chunk, at most 3 allowed)" in reasons[SETTINGS.max_repeats]


def test_lines_the_chunk_repeats_as_often_are_no_loop() -> None:
    row = "| `timeout` | 30 | seconds |"
    chunk = MarkdownFacts.of("\n".join([row] * 6) + "\n")
    guard = AnswerGuard(chunk, SETTINGS)
    assert [guard.feed(row + "\n") for _ in range(6)] == [None] * 6
    assert guard.feed(row + "\n") is not None  # a seventh is one more than the chunk has


def test_an_answer_past_the_ratio_is_stopped_and_a_cut_off_one_is_unfaithful() -> None:
    chunk = MarkdownFacts.of(" ".join(_WORDS * 10) + "\n")  # ~480 non-space characters
    guard = AnswerGuard(chunk, SETTINGS)
    words = [f"word{n} " for n in range(1000)]
    stopped_at = next(n for n, piece in enumerate(words) if guard.feed(piece) is not None)
    # Stopped just past the judge's bound (max_output_ratio of the whole chunk plus its
    # allowance) plus the description allowance.
    bound = 3.0 * non_space(chunk.text) + LENGTH_ALLOWANCE + DESCRIPTION_ALLOWANCE
    assert bound < sum(len(w) - 1 for w in words[: stopped_at + 1])
    assert sum(len(w) - 1 for w in words[:stopped_at]) <= bound
    assert AnswerGuard(chunk, SETTINGS).cut_off("".join(words)) is not None
    # An answer about as long as the chunk, cut off honestly: too large, not unfaithful.
    assert AnswerGuard(chunk, SETTINGS).cut_off(" ".join(_WORDS * 9)) is None


def test_tiny_chunks_have_the_judges_bound_too() -> None:
    """The judge bounds a tiny chunk's answer at the ratio of the whole chunk plus its
    allowance (issue 25: an echo is never too long); the guard stops at that bound plus the
    description line, never before."""
    chunk = MarkdownFacts.of("`x`\n")
    guard = AnswerGuard(chunk, SETTINGS)
    pieces = [f"text{n} " for n in range(400)]
    stopped_at = next(n for n, piece in enumerate(pieces) if guard.feed(piece) is not None)
    written = "".join(pieces[:stopped_at])
    bound = 3.0 * non_space(chunk.text) + LENGTH_ALLOWANCE + DESCRIPTION_ALLOWANCE
    assert non_space(written) <= bound < non_space(written + pieces[stopped_at])
    # What the guard let through without the description allowance, the judge rejects too.
    assert length_problem("`x`\n", written, SETTINGS) is not None
