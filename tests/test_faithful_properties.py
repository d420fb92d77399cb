"""Property-based tests of the faithfulness check over real page Markdown.

Every harmless rewrite of a page (re-levelled headings, reflowed paragraphs, other list
markers, dropped boilerplate, all of them at once) must pass; every corruption (renamed
identifiers, half the page replaced by filler of the same length, a repetition loop, a
dropped code block, an empty or unclosed fence, an invented API, a truncated answer) must
fail, and for the reason that names it. The pages are in ``tests/fixtures/markdown``.
"""

from __future__ import annotations

import pytest
from faithful_support import (
    FILLER_WORDS,
    PAGES,
    change_list_markers,
    code_block_count,
    drop_code_block,
    drop_rules,
    insert_block,
    loop_candidates,
    reflow_paragraphs,
    relevel_headings,
    rename,
    repetition_loop,
    replace_half,
    span_identifiers,
    with_boilerplate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.llm.faithfulness.facts import words_of
from crawl4ai_llm_docs.llm.faithfulness.judge import FaithfulSettings, Verdict, judge

SETTINGS = FaithfulSettings()
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
page_names = st.sampled_from(sorted(PAGES))


def _verdict(chunk: str, answer: str) -> Verdict:
    return judge(chunk, answer, SETTINGS, prompt="Clean this documentation page.")


def _passes(chunk: str, answer: str) -> None:
    verdict = _verdict(chunk, answer)
    assert verdict.ok, verdict.reason


def _fails(chunk: str, answer: str, *checks: str) -> Verdict:
    verdict = _verdict(chunk, answer)
    assert not verdict.ok, "the corrupted answer passed"
    failed = {problem.check for problem in verdict.problems}
    assert failed & set(checks), f"failed for {failed}, expected one of {checks}"
    assert "\n" not in (verdict.reason or "")
    return verdict


# ---------------------------------------------------------------- harmless rewrites pass


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_page_itself_passes(name: str) -> None:
    _passes(PAGES[name], PAGES[name])


@PROPERTY
@given(name=page_names, shift=st.sampled_from([-2, -1, 1, 2, 3]))
def test_relevelled_headings_pass(name: str, shift: int) -> None:
    page = PAGES[name]
    _passes(page, relevel_headings(page, shift))


@PROPERTY
@given(name=page_names, width=st.integers(min_value=30, max_value=400))
def test_reflowed_paragraphs_pass(name: str, width: int) -> None:
    page = PAGES[name]
    _passes(page, reflow_paragraphs(page, width))


@PROPERTY
@given(name=page_names, bullet=st.sampled_from(["-", "*", "+"]), numbered=st.booleans())
def test_changed_list_markers_pass(name: str, bullet: str, numbered: bool) -> None:
    page = PAGES[name]
    _passes(page, change_list_markers(page, bullet, numbered))


@PROPERTY
@given(name=page_names, rules=st.booleans())
def test_dropped_boilerplate_passes(name: str, rules: bool) -> None:
    page = PAGES[name]
    answer = drop_rules(page) if rules else page
    _passes(with_boilerplate(page), answer)


@PROPERTY
@given(
    name=page_names,
    shift=st.sampled_from([-1, 1, 2]),
    width=st.integers(min_value=40, max_value=200),
    bullet=st.sampled_from(["-", "*", "+"]),
    numbered=st.booleans(),
)
def test_all_rewrites_at_once_pass(
    name: str, shift: int, width: int, bullet: str, numbered: bool
) -> None:
    page = PAGES[name]
    answer = relevel_headings(page, shift)
    answer = change_list_markers(reflow_paragraphs(answer, width), bullet, numbered)
    _passes(with_boilerplate(page), drop_rules(answer))


# ---------------------------------------------------------------- corruptions fail


@PROPERTY
@given(
    name=st.sampled_from([n for n in sorted(PAGES) if span_identifiers(PAGES[n])]), data=st.data()
)
def test_renamed_identifiers_fail(name: str, data: st.DataObject) -> None:
    page = PAGES[name]
    names = span_identifiers(page)
    chosen = data.draw(
        st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True), label="renamed"
    )
    suffix = data.draw(st.sampled_from(["_v2", "Ex", "2", "_impl", "er"]), label="suffix")
    _fails(page, rename(page, chosen, suffix), "invented", "code blocks")


@PROPERTY
@given(
    # Half of a chunk of a dozen words is too little to tell from a rewrite; real chunks are
    # hundreds of words (the smallest here: a heading and a link, 7 words).
    name=st.sampled_from([n for n in sorted(PAGES) if len(words_of(PAGES[n])) >= 40]),
    start=st.floats(min_value=0, max_value=1),
    words=st.lists(st.sampled_from(FILLER_WORDS), min_size=3, max_size=12),
)
def test_half_replaced_by_filler_fails(name: str, start: float, words: list[str]) -> None:
    page = PAGES[name]
    answer = replace_half(page, start, words)
    assert len(answer) == len(page)
    _fails(page, answer, "text", "code blocks", "inline code", "structure")


@PROPERTY
@given(
    name=st.sampled_from([n for n in sorted(PAGES) if loop_candidates(PAGES[n])]),
    data=st.data(),
    times=st.integers(min_value=SETTINGS.max_repeats + 1, max_value=25),
    numbered=st.booleans(),
    at_end=st.booleans(),
)
def test_repetition_loop_fails(
    name: str, data: st.DataObject, times: int, numbered: bool, at_end: bool
) -> None:
    page = PAGES[name]
    line = data.draw(st.sampled_from(loop_candidates(page)), label="looped line")
    _fails(page, repetition_loop(page, line, times, numbered=numbered, at_end=at_end), "repetition")


@PROPERTY
@given(
    name=st.sampled_from([n for n in sorted(PAGES) if code_block_count(PAGES[n])]), data=st.data()
)
def test_dropped_code_block_fails(name: str, data: st.DataObject) -> None:
    page = PAGES[name]
    index = data.draw(st.integers(min_value=0, max_value=code_block_count(page) - 1))
    _fails(page, drop_code_block(page, index), "code blocks")


@PROPERTY
@given(
    name=page_names,
    info=st.sampled_from(["", "python", "pycon", "text"]),
    blank_lines=st.integers(min_value=0, max_value=2),
    position=st.floats(min_value=0, max_value=1),
)
def test_empty_fence_fails(name: str, info: str, blank_lines: int, position: float) -> None:
    page = PAGES[name]
    fence = f"```{info}\n" + "\n" * blank_lines + "```"
    _fails(page, insert_block(page, fence, position), "code blocks")


@PROPERTY
@given(name=page_names, info=st.sampled_from(["", "python"]), tail=st.sampled_from(["", "x = 1"]))
def test_unclosed_fence_fails(name: str, info: str, tail: str) -> None:
    page = PAGES[name]
    answer = page.rstrip("\n") + f"\n\n```{info}\n{tail}\n"
    _fails(page, answer, "code blocks")


@PROPERTY
@given(
    name=page_names,
    module=st.sampled_from(["getpass", "click", "attrs", "secrets", "os"]),
    function=st.sampled_from(["setuser", "frobnicate", "enable_magic", "reset_all"]),
    position=st.floats(min_value=0, max_value=1),
    ticks=st.booleans(),
)
def test_invented_api_fails(
    name: str, module: str, function: str, position: float, ticks: bool
) -> None:
    page = PAGES[name]
    call = f"{module}.{function}()"
    sentence = f"Call {'`' + call + '`' if ticks else call} to change it."
    _fails(page, insert_block(page, sentence, position), "invented")


@PROPERTY
@given(name=page_names, share=st.floats(min_value=0.0, max_value=0.3))
def test_truncated_answer_fails(name: str, share: float) -> None:
    page = PAGES[name]
    _fails(page, page[: int(len(page) * share)], "length", "text", "code blocks")
