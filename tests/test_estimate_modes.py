"""``--dry-run`` in both cleaning modes: the configured one in full, the other on one line.

The arithmetic is checked by hand: a rewrite is estimated as long as its chunk, an edit script
at the share the benchmark measured (at least a minimum, at most ``edit_max_tokens``); edit
prompts carry the longer prompt and the line numbers; the other mode's chunks are the page cut
at that mode's chunk size.
"""

from __future__ import annotations

import math
import re

import msgspec
import pytest

from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.lifecycle.estimate import (
    EDIT_COMPLETION_PER_CHUNK_TOKEN,
    EDIT_MIN_COMPLETION_TOKENS,
    Estimate,
    edit_completion,
)
from crawl4ai_llm_docs.llm.cleaning import (
    EDIT_PROMPT_OVERHEAD_TOKENS,
    NUMBER_TOKENS_PER_LINE,
    PROMPT_OVERHEAD_TOKENS,
)
from crawl4ai_llm_docs.models import Chunk


def chunk(tokens: int, lines: int, index: int = 0, count: int = 1) -> Chunk:
    return Chunk(
        page_index=0,
        chunk_index=index,
        chunk_count=count,
        url="https://d/p",
        title="p",
        text="\n\n".join(f"line {n}" for n in range(lines)),
        tokens=tokens,
    )


def config(**llm: object) -> AppConfig:
    prices = {"input_price_per_mtok": 1.0, "output_price_per_mtok": 4.0}
    llm = {"cleaning": "rewrite", **llm}  # each test names the mode it estimates
    return msgspec.convert({"llm": {**prices, "max_tokens": 4000, **llm}}, AppConfig)


def test_edit_completion_is_a_share_bounded_both_ways() -> None:
    assert edit_completion(100, 512) == EDIT_MIN_COMPLETION_TOKENS
    big = 10_000
    assert edit_completion(big, 512) == min(512, math.ceil(EDIT_COMPLETION_PER_CHUNK_TOKEN * big))
    assert edit_completion(10**7, 512) == 512


def test_rewrite_configured_with_edit_beside_it() -> None:
    estimate = Estimate(config())  # rewrite chunks: at most 3,000 tokens (75% of 4,000)
    estimate.add_page([chunk(2000, 40, 0, 2), chunk(2000, 40, 1, 2)])
    assert estimate.requests == 2
    assert estimate.prompt_tokens == 4000 + 2 * PROMPT_OVERHEAD_TOKENS
    assert estimate.completion_tokens == 4000
    text = estimate.render(1)
    assert re.search(r"cleaning:\s+rewrite$", text, re.MULTILINE)
    # Edit mode takes the page in one chunk of 4,000 tokens (chunk_max_tokens is 4,000).
    edit_prompt = 4000 + EDIT_PROMPT_OVERHEAD_TOKENS + NUMBER_TOKENS_PER_LINE * 80
    edit_answer = edit_completion(4000, 512)
    assert (
        f"with --cleaning edit: ~1 requests, ~{edit_prompt:,} prompt + ~{edit_answer:,} "
        "completion tokens" in text
    )
    cost = (edit_prompt * 1.0 + edit_answer * 4.0) / 1e6
    assert f"~${cost:.4f}" in text.splitlines()[-1]


def test_edit_configured_with_rewrite_beside_it() -> None:
    estimate = Estimate(config(cleaning="edit"))
    estimate.add_page([chunk(5000, 100)])
    assert estimate.requests == 1
    assert estimate.completion_tokens == edit_completion(5000, 512)
    assert (
        estimate.prompt_tokens == 5000 + EDIT_PROMPT_OVERHEAD_TOKENS + NUMBER_TOKENS_PER_LINE * 100
    )
    text = estimate.render(1)
    assert re.search(r"cleaning:\s+edit$", text, re.MULTILINE)
    assert "as measured" in text
    # Rewrite chunks hold at most 3,000 tokens: the page is two requests there.
    assert "with --cleaning rewrite: ~2 requests" in text
    assert "~5,000 completion tokens" in text
    assert estimate.seconds("rewrite") > estimate.seconds()
    rewrite_cost, edit_cost = estimate.cost("rewrite"), estimate.cost()
    assert rewrite_cost is not None
    assert edit_cost is not None
    assert edit_cost < rewrite_cost


@pytest.mark.parametrize("cleaning", ["rewrite", "edit"])
def test_batch_prices_both_lines_at_the_batch_rate(cleaning: str) -> None:
    estimate = Estimate(config(cleaning=cleaning, mode="batch"))
    estimate.add_page([chunk(1000, 20)])
    other = "edit" if cleaning == "rewrite" else "rewrite"
    cost = estimate.cost(other)
    assert cost is not None
    last = estimate.render(1).splitlines()[-1]
    assert f"~${cost * 0.5:.4f}" in last
    assert " s," not in last  # no time for a batch
