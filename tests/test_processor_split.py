"""A chunk whose first answer was cut off is answered in halves from then on (issue 25).

The live path: the chunk is split and its halves asked; a re-run with the same max_tokens
asks nothing again (it knows the chunk is answered in halves and finds the halves cached),
where it used to pay for the cut-off whole chunk once more. A larger max_tokens asks the
whole chunk again. The provider is a scripted ``httpx.MockTransport``: every request is seen.
"""

from __future__ import annotations

from pathlib import Path

from test_faithful_stage import Script, make_chunk, process

from crawl4ai_llm_docs.cache.results import ResultCache

PARAGRAPHS = "\n\n".join(f"Paragraph {n} says " + "something useful " * 30 for n in range(8))
TEXT = f"# Big\n\n{PARAGRAPHS}\n"


async def test_a_rerun_does_not_pay_the_cut_off_again(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    chunk = make_chunk(TEXT)
    halves = TEXT.split("\n\nParagraph 4", 1)
    first = Script("CUT:# Big", halves[0], "Paragraph 4" + halves[1])
    result, _ = await process(first, cache, chunk, chunk_min_tokens=64)
    assert len(first.requests) == 3  # the whole chunk (cut off), then its two halves
    assert "Paragraph 7" in result.markdown
    again = Script()  # no answer scripted: any request would fail the test
    rerun, _ = await process(again, cache, chunk, chunk_min_tokens=64)
    assert again.requests == []
    assert rerun.markdown == result.markdown
    assert rerun.source == "cache"


async def test_another_max_tokens_asks_the_whole_chunk_again(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    chunk = make_chunk(TEXT)
    halves = TEXT.split("\n\nParagraph 4", 1)
    await process(
        Script("CUT:# Big", halves[0], "Paragraph 4" + halves[1]),
        cache,
        chunk,
        chunk_min_tokens=64,
    )
    bigger = Script(TEXT)
    result, _ = await process(bigger, cache, chunk, chunk_min_tokens=64, max_tokens=8000)
    assert len(bigger.requests) == 1
    assert "Paragraph 7" in result.markdown
