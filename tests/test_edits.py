"""Edit scripts: the numbered view of a chunk, reading a model's script, applying it.

The properties are checked with an independent parser (markdown-it-py, CommonMark) on
generated Markdown: whatever valid script is applied, every code block of the chunk comes out
unchanged and in order, every inline-code span of a kept line is still an inline-code span,
and the words of the output are exactly the words of the kept lines, in order (joining and
re-levelling change no word; only dropping removes any).
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from crawl4ai_llm_docs.llm.edit_script import (
    EditLoopGuard,
    EditScript,
    ScriptError,
    edit_schema,
    read_script,
)
from crawl4ai_llm_docs.llm.edits import NumberedChunk

_MD = MarkdownIt("commonmark")
_WORD = re.compile(r"[A-Za-z0-9_]+")

PAGE = """\
[Home](/) > [Guide](/guide/)

## Install

Install the package with pip; the command
below needs `pip` 23 or newer.

```console
$ pip install example

$ example --version
```

Title Without Marks
===================

- first item
  wrapped on
- second item

| a | b |
|---|---|
| 1 | 2 |

Next: [Usage](usage.html)
"""


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    return [(t.info, t.content) for t in _MD.parse(markdown) if t.type in ("fence", "code_block")]


def inline_code(markdown: str) -> list[str]:
    spans = []
    for token in _MD.parse(markdown):
        for child in token.children or []:
            if child.type == "code_inline":
                spans.append(child.content)
    return spans


def words(text: str) -> list[str]:
    return _WORD.findall(text)


# ---------------------------------------------------------------- numbering


def test_render_numbers_every_non_blank_line_and_each_code_block_once() -> None:
    chunk = NumberedChunk(PAGE)
    shown = chunk.render().split("\n")
    numbered = [line for line in shown if re.match(r"^ *\d+\| ", line)]
    assert len(numbered) == len(chunk.units) == 14
    assert numbered[0] == " 1| [Home](/) > [Guide](/guide/)"
    assert " 5| ```console" in shown
    assert "$ pip install example" in shown  # code lines are shown as they are, unnumbered
    # Without the numbers the view is the chunk itself.
    assert [re.sub(r"^ *\d+\| ", "", line) for line in shown] == PAGE.split("\n")


def test_the_worked_example() -> None:
    chunk = NumberedChunk(PAGE)
    script = EditScript(
        description="How to install.",
        drop=((1, 1), (14, 14)),
        headings=((2, 1), (6, 2)),
        join=((3, 4), (8, 9)),
    )
    assert chunk.apply(script, first_chunk=True) == (
        "# Install\n"
        "\n"
        "Install the package with pip; the command below needs `pip` 23 or newer.\n"
        "\n"
        "```console\n$ pip install example\n\n$ example --version\n```\n"
        "\n"
        "## Title Without Marks\n"
        "\n"
        "- first item wrapped on\n"
        "- second item\n"
        "\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )


def test_a_title_is_added_only_to_a_first_chunk_without_a_level_one_heading() -> None:
    chunk = NumberedChunk("Some text.\n\n## Part\n")
    script = EditScript(title="The Page")
    assert chunk.apply(script, first_chunk=True).startswith("# The Page\n\nSome text.")
    assert chunk.apply(script, first_chunk=False).startswith("Some text.")
    with_h1 = NumberedChunk("# Already\n\ntext\n")
    assert with_h1.apply(script, first_chunk=True) == "# Already\n\ntext\n"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (EditScript(drop=((0, 2),)), "names line 0"),
        (EditScript(drop=((3, 99),)), "names line 99"),
        (EditScript(join=((6, 4),)), "ends before it starts"),
        (EditScript(headings=((2, 7),)), "not 1-6"),
        (EditScript(headings=((5, 2),)), "cannot become a heading"),  # the code block
        (EditScript(headings=((11, 2),)), "cannot become a heading"),  # a table row
        (EditScript(headings=((8, 2),)), "cannot become a heading"),  # a list item
    ],
)
def test_invalid_scripts_are_refused_with_a_reason(script: EditScript, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        NumberedChunk(PAGE).apply(script, first_chunk=True)


def test_a_drop_range_over_a_code_block_keeps_the_code() -> None:
    chunk = NumberedChunk(PAGE)
    out = chunk.apply(EditScript(drop=((1, 14),)), first_chunk=True)
    assert code_blocks(out) == code_blocks(PAGE)
    assert "Install" not in out.replace("$ pip install", "")


def test_a_drop_range_keeps_lines_with_inline_code() -> None:
    page = "- [Home](/) [Next](/n)\n- [`Box<U>`](/box): a pointer\n- [`Vec`](/vec)\nplain\n"
    out = NumberedChunk(page).apply(EditScript(drop=((1, 4),)), first_chunk=False)
    assert out == "- [`Box<U>`](/box): a pointer\n- [`Vec`](/vec)\n"


def test_dropping_a_setext_heading_drops_its_underline() -> None:
    chunk = NumberedChunk("para\nTitle\n=====\n\nmore\n")
    # Left alone, "=====" would turn "para" into a heading.
    assert chunk.apply(EditScript(drop=((2, 2),)), first_chunk=False) == "para\n\nmore\n"


def test_unclosed_fence_is_one_unit_to_the_end() -> None:
    chunk = NumberedChunk("intro\n```\ncode\n\nmore code")
    assert [(u.start, u.end, u.code) for u in chunk.units] == [(0, 1, False), (1, 5, True)]


# ---------------------------------------------------------------- reading scripts


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            '{"description": "A page.", "drop": [[1, 2]], "headings": [{"line": 3, "level": 1}], '
            '"join": [[4, 5]], "title": ""}',
            EditScript(description="A page.", drop=((1, 2),), headings=((3, 1),), join=((4, 5),)),
        ),
        (  # a chatty model: a sentence, a fence, trailing commas
            'Sure! Here it is:\n```json\n{"description": "A page.", "drop": [[1, 2],],}\n```',
            EditScript(description="A page.", drop=((1, 2),)),
        ),
        (  # bare keys, single numbers, "a-b" strings, a flat pair
            '{description: "x", drop: [7, "3-5", "9"], join: [4, 6]}',
            EditScript(description="x", drop=((7, 7), (3, 5), (9, 9)), join=((4, 6),)),
        ),
        (  # objects as ranges, synonyms, headings as a mapping and as pairs
            '{"summary": "s", "remove": [{"from": 2, "to": 4}], "headings": {"6": "##"}}',
            EditScript(description="s", drop=((2, 4),), headings=((6, 2),)),
        ),
        (
            '{"headings": [[3, "h2"], {"line": "4", "level": 3}]}',
            EditScript(headings=((3, 2), (4, 3))),
        ),
        ('{"edit_script": {"drop": [[1, 1]]}}', EditScript(drop=((1, 1),))),  # wrapped
        ('\ufeff  {"drop": []}  ', EditScript()),
        # A raw line break inside a string (SmolLM2 under llama.cpp's grammar wrote one).
        (
            '{"description": "d", "title": "Notes\nPart: 1 of 3"}',
            EditScript(description="d", title="Notes Part: 1 of 3"),
        ),
    ],
)
def test_read_script_takes_what_models_write(answer: str, expected: EditScript) -> None:
    assert read_script(answer) == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "empty"),
        ("# Install\n\nThe page, rewritten.", "not a JSON edit script"),
        ('{"drop": [[1, 2]', "not a JSON edit script"),  # cut off
        ('{"answer": 42}', "none of the edit script's keys"),
        ('{"drop": [[1, 2, 3]]}', "not a range"),
        ('{"drop": ["all"]}', "not a line range"),
        ('{"headings": [{"line": 3}]}', "needs a line and a level"),
        ('{"drop": [true]}', "not a line number"),
    ],
)
def test_read_script_refuses_what_is_no_script(answer: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        read_script(answer)


_ranges = st.lists(
    st.tuples(st.integers(1, 500), st.integers(1, 500)).map(lambda p: (min(p), max(p))),
    max_size=6,
).map(tuple)
_scripts = st.builds(
    EditScript,
    description=st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zs"]), max_size=40
    ),
    title=st.sampled_from(["", "A Title"]),
    drop=_ranges,
    headings=st.lists(st.tuples(st.integers(1, 500), st.integers(1, 6)), max_size=4).map(tuple),
    join=_ranges,
)


@given(_scripts, st.sampled_from(["{}", "Here:\n```json\n{}\n```", "Answer: {} Done."]))
def test_any_script_reads_back_from_json_in_any_wrapping(script: EditScript, wrapping: str) -> None:
    data = {
        "description": script.description,
        "drop": [list(pair) for pair in script.drop],
        "headings": [{"line": line, "level": level} for line, level in script.headings],
        "join": [list(pair) for pair in script.join],
        "title": script.title,
    }
    answer = wrapping.replace("{}", json.dumps(data, ensure_ascii=False))
    expected = EditScript(
        description=" ".join(script.description.split()),
        title=script.title,
        drop=script.drop,
        headings=script.headings,
        join=script.join,
    )
    assert read_script(answer) == expected


def test_schema_lists_every_field_as_required_and_allows_no_others() -> None:
    for grammar in (False, True):
        schema = edit_schema(grammar=grammar)
        assert schema["required"] == ["description", "drop", "headings", "join", "title"]
        assert schema["additionalProperties"] is False
    assert "maxLength" in edit_schema(grammar=True)["properties"]["description"]
    assert "maxLength" not in edit_schema(grammar=False)["properties"]["description"]


# ---------------------------------------------------------------- a looping script


def test_loop_guard_stops_a_repeated_range_but_not_a_long_honest_script() -> None:
    guard = EditLoopGuard(max_repeats=3)
    honest = '{"description": "x", "drop": [' + ", ".join(f"[{n}, {n}]" for n in range(1, 60))
    assert all(guard.feed(piece) is None for piece in re.findall(".{1,7}", honest, re.DOTALL))
    looping = EditLoopGuard(max_repeats=3)
    pieces = ['{"drop": [', "[3, 5], ", "[3, 5], ", "[3,5], ", "[3, 5]"]
    reasons = [looping.feed(piece) for piece in pieces]
    assert reasons[:4] == [None] * 4
    assert reasons[4] is not None
    assert "[3,5] 4 times" in reasons[4]
    assert EditLoopGuard(max_repeats=3).feed('{"description": "' + "ab " * 1000) is not None
    # Empty lists name no line: a script has one per key, and SmolLM2 wrote a fourth.
    empties = EditLoopGuard(max_repeats=3)
    script = '{"description": "d", "drop": [], "headings": [], "join": [], "extra": [], "more": {}}'
    assert [empties.feed(piece) for piece in script.split(" ")] == [None] * len(script.split(" "))
    assert "cut off" in EditLoopGuard(max_repeats=3).cut_off('{"drop": [[1,')


# ---------------------------------------------------------------- properties


_WORDS = st.lists(
    st.sampled_from(["alpha", "beta", "gamma", "delta", "pip", "x1", "run_it"]),
    min_size=1,
    max_size=6,
)


@st.composite
def _blocks(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(
            ["heading", "para", "list", "table", "code", "links", "setext", "contained code"]
        )
    )
    text = " ".join(draw(_WORDS))
    if kind == "heading":
        return "#" * draw(st.integers(1, 6)) + " " + text
    if kind == "para":
        lines = [" ".join(draw(_WORDS)) for _ in range(draw(st.integers(1, 4)))]
        if draw(st.booleans()):
            lines[0] += f" `{draw(st.sampled_from(['a.b()', 'x = 1', 'run_it']))}`"
        return "\n".join(lines)
    if kind == "list":
        items = [f"- {' '.join(draw(_WORDS))}" for _ in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            items.insert(1, "  " + " ".join(draw(_WORDS)))
        return "\n".join(items)
    if kind == "table":
        return f"| {text} | b |\n|---|---|\n| `c` | d |"
    if kind == "code":
        body = draw(
            st.lists(
                st.sampled_from(["x = 1", "", "# not a heading", "    indented", "- not a list"]),
                max_size=4,
            )
        )
        fence = draw(st.sampled_from(["```", "~~~"]))
        return "\n".join([fence + draw(st.sampled_from(["", "python"])), *body, fence])
    if kind == "links":
        return "[Home](/) > [Next](/next)"
    if kind == "contained code":  # a fence on a list item's or a quote's first line
        body = draw(st.sampled_from(["x = 1", "```not a close```", "- not an item"]))
        return draw(
            st.sampled_from(
                [
                    f"- ```py\n  {body}\n  ```",
                    f"1. ```\n   {body}\n   ```",
                    f"> ```\n> {body}\n> ```",
                    f"- {text}\n\n  ```\n  {body}\n  ```",
                ]
            )
        )
    return f"{text}\n{draw(st.sampled_from(['===', '---']))}"


_documents = st.lists(_blocks(), min_size=1, max_size=8).map(
    lambda blocks: "\n\n".join(blocks) + "\n"
)


@st.composite
def _document_and_script(draw: st.DrawFn) -> tuple[str, EditScript]:
    document = draw(_documents)
    units = len(NumberedChunk(document).units)
    line = st.integers(1, units)
    pair = st.tuples(line, line).map(lambda p: (min(p), max(p)))
    script = EditScript(
        drop=tuple(draw(st.lists(pair, max_size=3))),
        headings=tuple(draw(st.lists(st.tuples(line, st.integers(1, 6)), max_size=2))),
        join=tuple(draw(st.lists(pair, max_size=3))),
    )
    return document, script


def _kept_words(chunk: NumberedChunk, script: EditScript) -> list[str]:
    """The words of the units the script keeps, in order (the oracle's own arithmetic)."""
    dropped = {n - 1 for first, last in script.drop for n in range(first, last + 1)}
    kept: list[str] = []
    for number, unit in enumerate(chunk.units):
        if unit.code or "`" in chunk.lines[unit.start] or number not in dropped:
            kept.extend(words("\n".join(chunk.lines[unit.start : unit.end])))
    return kept


def _commonmark_code(text: str) -> list[tuple[str, str]]:
    """Every code block a CommonMark parser reads, in any container: (info, content)."""
    return [
        (token.info, token.content)
        for token in _MD.parse(text)
        if token.type in ("fence", "code_block")
    ]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_document_and_script())
def test_applying_any_valid_script_keeps_code_and_changes_no_word(
    case: tuple[str, EditScript],
) -> None:
    document, script = case
    chunk = NumberedChunk(document)
    try:
        out = chunk.apply(script, first_chunk=False)
    except ScriptError:
        return  # a heading on a unit that cannot be one: refused, checked above
    assert code_blocks(out) == code_blocks(document)
    assert _commonmark_code(out) == _commonmark_code(document)  # the parser's view, not ours
    assert set(inline_code(out)) == set(inline_code(document))  # no drop takes code away
    expected = _kept_words(chunk, script)
    got = words(out)
    # A setext underline left after a dropped line is removed with it; it has no words.
    assert got == expected


@given(_documents)
def test_an_empty_script_keeps_the_text(document: str) -> None:
    out = NumberedChunk(document).apply(EditScript(), first_chunk=True)
    assert [line for line in out.split("\n") if line.strip()] == [
        line for line in document.split("\n") if line.strip()
    ]
    assert _MD.render(out) == _MD.render(document)
