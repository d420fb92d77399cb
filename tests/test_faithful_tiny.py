"""Tiny chunks are judged by rules that fit their size (issue 25).

A faithful answer for a tiny page was judged "1886% of the source's length": the page's
content was a sentence or two, its links (boilerplate, left out of the lower bound) many, and
the answer kept them. The upper bound now counts the boilerplate an answer may keep, plus a
small allowance for what a model adds around any text.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.llm.faithfulness.judge import LENGTH_ALLOWANCE, FaithfulSettings, judge

SETTINGS = FaithfulSettings()


def length_reason(chunk: str, answer: str) -> str | None:
    verdict = judge(chunk, answer, SETTINGS, prompt="Clean this page.")
    reasons = [p.reason for p in verdict.problems if p.check == "length"]
    return reasons[0] if reasons else None


words = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=40)
links = st.lists(
    st.builds(lambda w: f"- [{w.strip() or 'x'}](https://h.example/{abs(hash(w))})", words),
    max_size=60,
)


@given(title=words, sentences=st.lists(words, min_size=1, max_size=12), nav=links)
@settings(max_examples=300, deadline=None)
def test_an_answer_that_keeps_the_whole_chunk_is_never_too_long(
    title: str, sentences: list[str], nav: list[str]
) -> None:
    chunk = f"# {title}\n\n" + " ".join(sentences) + "\n\n" + "\n".join(nav)
    assert length_reason(chunk, chunk) is None
    # ... nor when the model adds the title as a heading and a line of formatting.
    assert length_reason(chunk, f"# {title}\n\n---\n\n{chunk}\n") is None


def test_the_page_of_the_issue_passes() -> None:
    content = "This page says one thing about the tool in a sentence of some length. " * 4
    nav = "\n".join(
        f"- [Section {n} of the manual](https://docs.example/s/{n}.html)" for n in range(60)
    )
    chunk = f"# Tiny page\n\n{content}\n\n{nav}\n"
    # The old rule measured against the content alone (236 characters): 1508%.
    assert length_reason(chunk, chunk) is None


def test_a_tiny_chunk_still_has_an_upper_bound() -> None:
    chunk = "Hello."
    invented = "word " * (3 * len(chunk) + LENGTH_ALLOWANCE)
    reason = length_reason(chunk, invented) or ""
    assert "of the source's length (at most 300% expected, plus 200 characters" in reason
    assert length_reason(chunk, "# Greeting\n\nHello.") is None


def test_a_chunk_of_boilerplate_only_cannot_be_answered_with_a_novel() -> None:
    chunk = "\n".join(f"- [Link {n}](https://h.example/{n})" for n in range(5))
    assert length_reason(chunk, "Invented prose. " * 100) is not None
    assert length_reason(chunk, chunk) is None


def test_an_answer_that_drops_the_content_is_still_too_short() -> None:
    content = "A paragraph that carries the real content of this page, " * 8
    chunk = f"{content}\n\n" + "\n".join(f"- [L{n}](https://h/{n})" for n in range(40))
    reason = length_reason(chunk, "- [L1](https://h/1)") or ""
    assert "at least 35% expected" in reason
