"""``--dry-run``: what the LLM work would cost, from the chunks the run would send, in both
cleaning modes (the configured one first, the other beside it for comparison)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from crawl4ai_llm_docs.chunk.stage import chunk_size
from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.llm.cleaning import (
    EDIT_PROMPT_OVERHEAD_TOKENS,
    NUMBER_TOKENS_PER_LINE,
    PROMPT_OVERHEAD_TOKENS,
)
from crawl4ai_llm_docs.models import Chunk

# Assumptions for the time estimate, stated in the output: a cleaned page is about as long as
# its input, and a provider writes ~60 tokens/s after ~1 s to first token.
FIRST_TOKEN_S = 1.0
OUTPUT_TOKENS_PER_S = 60.0
# The Batch API's price relative to live requests (OpenAI: 50% off, results within 24 h).
BATCH_PRICE_FACTOR = 0.5
# Edit mode: completion tokens per token of chunk, as benchmarks/bench_cleaning.py measured
# them on 24 python3.11-doc pages (859 script tokens where rewrites took 48,161: an edit
# script grows with the lines it names, not with the text), and the fewest a script takes
# (the description and the JSON around it).
EDIT_COMPLETION_PER_CHUNK_TOKEN = 0.02
EDIT_MIN_COMPLETION_TOKENS = 40

__all__ = [
    "BATCH_PRICE_FACTOR",
    "FIRST_TOKEN_S",
    "OUTPUT_TOKENS_PER_S",
    "PROMPT_OVERHEAD_TOKENS",
    "Estimate",
]


@dataclass
class _Totals:
    """Requests and tokens of one cleaning mode."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    longest_completion: int = 0  # no run can be shorter than its longest request

    def add(self, prompt: int, completion: int) -> None:
        self.requests += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.longest_completion = max(self.longest_completion, completion)


def edit_completion(tokens: int, edit_max_tokens: int) -> int:
    """The estimated edit script for a chunk of ``tokens``."""
    guess = max(EDIT_MIN_COMPLETION_TOKENS, math.ceil(EDIT_COMPLETION_PER_CHUNK_TOKEN * tokens))
    return min(edit_max_tokens, guess)


class Estimate:
    def __init__(self, config: AppConfig) -> None:
        self._config = config
        self.pages = 0
        self.edit = config.llm.cleaning == "edit"
        self._modes = {"rewrite": _Totals(), "edit": _Totals()}
        # The chunks are cut for the configured mode; the other one's are counted per page.
        other = msgspec.structs.replace(config.llm, cleaning="rewrite" if self.edit else "edit")
        self._other_chunk_tokens = chunk_size(other)

    @property
    def _mine(self) -> _Totals:
        return self._modes["edit" if self.edit else "rewrite"]

    @property
    def requests(self) -> int:
        return self._mine.requests

    @property
    def prompt_tokens(self) -> int:
        return self._mine.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self._mine.completion_tokens

    @property
    def longest_completion(self) -> int:
        return self._mine.longest_completion

    def add_page(self, chunks: list[Chunk]) -> None:
        self.pages += 1
        for chunk in chunks:
            self._add(self._mine, chunk.tokens, _lines(chunk.text), edit=self.edit)
        # The other mode's chunks: the page cut into pieces of its size (about).
        tokens = sum(chunk.tokens for chunk in chunks)
        lines = sum(_lines(chunk.text) for chunk in chunks)
        pieces = max(1, math.ceil(tokens / self._other_chunk_tokens))
        other = self._modes["rewrite" if self.edit else "edit"]
        for _ in range(pieces):
            self._add(other, tokens // pieces, lines // pieces, edit=not self.edit)

    def _add(self, totals: _Totals, tokens: int, lines: int, *, edit: bool) -> None:
        llm = self._config.llm
        if edit:
            prompt = tokens + EDIT_PROMPT_OVERHEAD_TOKENS + NUMBER_TOKENS_PER_LINE * lines
            totals.add(prompt, edit_completion(tokens, llm.edit_max_tokens))
        else:
            totals.add(tokens + PROMPT_OVERHEAD_TOKENS, min(tokens, llm.max_tokens))

    def projected_chunks(self, total_pages: int) -> int:
        """Chunks expected for the whole run, extrapolated from the pages chunked so far."""
        if self.pages == 0:
            return total_pages
        return max(self.requests, math.ceil(self.requests / self.pages * total_pages))

    def seconds(self, mode: str | None = None) -> float:
        totals = self._modes[mode] if mode else self._mine
        if not totals.requests:
            return 0.0
        par = self._config.parallel
        # Fewer requests than slots leave slots idle: they do not shorten the run.
        concurrency = min(par.effective_max_concurrent_requests, totals.requests)
        latency = totals.requests * FIRST_TOKEN_S + totals.completion_tokens / OUTPUT_TOKENS_PER_S
        longest = FIRST_TOKEN_S + totals.longest_completion / OUTPUT_TOKENS_PER_S
        bounds = [latency / concurrency, longest]
        if par.requests_per_minute:
            bounds.append(totals.requests / par.requests_per_minute * 60)
        if par.tokens_per_minute:
            bounds.append(
                (totals.prompt_tokens + totals.completion_tokens) / par.tokens_per_minute * 60
            )
        return max(bounds)

    def cost(self, mode: str | None = None) -> float | None:
        totals = self._modes[mode] if mode else self._mine
        llm = self._config.llm
        if not (llm.input_price_per_mtok or llm.output_price_per_mtok):
            return None
        return (
            totals.prompt_tokens * llm.input_price_per_mtok
            + totals.completion_tokens * llm.output_price_per_mtok
        ) / 1e6

    def render(self, total_pages: int) -> str:
        par = self._config.parallel
        completion = (
            f"(edit scripts: ~{EDIT_COMPLETION_PER_CHUNK_TOKEN:.0%} of the chunk, as measured)"
            if self.edit
            else "(assuming output as long as input)"
        )
        lines = [
            f"Dry run: {self.pages} of {total_pages} pages crawled and chunked; no LLM request sent.",
            f"  cleaning:          {'edit' if self.edit else 'rewrite'}",
            f"  requests:          {self.requests}",
            f"  prompt tokens:     ~{self.prompt_tokens:,}",
            f"  completion tokens: ~{self.completion_tokens:,} {completion}",
            f"  estimated time:    ~{self.seconds():.0f} s at {par.effective_max_concurrent_requests} "
            f"concurrent request(s)"
            + (f", {par.requests_per_minute} RPM" if par.requests_per_minute else "")
            + (f", {par.tokens_per_minute} TPM" if par.tokens_per_minute else "")
            + f" (assumes ~{FIRST_TOKEN_S:g} s to first token, ~{OUTPUT_TOKENS_PER_S:g} tokens/s)",
        ]
        cost = self.cost()
        batch = self._config.llm.mode == "batch"
        if batch:
            lines[-1] = (
                "  estimated time:    within 24 h (the Batch API's completion window; "
                "often much sooner)"
            )
        if cost is None:
            lines.append(
                "  estimated cost:    unknown (set llm.input_price_per_mtok / output_price_per_mtok)"
            )
        elif batch:
            lines.append(
                f"  estimated cost:    ~${cost * BATCH_PRICE_FACTOR:.4f} with the Batch API "
                f"({BATCH_PRICE_FACTOR:.0%} of ~${cost:.4f} live)"
            )
        else:
            lines.append(f"  estimated cost:    ~${cost:.4f}")
        lines.append(self._other_line())
        return "\n".join(lines)

    def _other_line(self) -> str:
        """The other cleaning mode in one line, for comparison."""
        name = "rewrite" if self.edit else "edit"
        other = self._modes[name]
        cost = self.cost(name)
        if cost is not None and self._config.llm.mode == "batch":
            cost *= BATCH_PRICE_FACTOR
        priced = "" if cost is None else f", ~${cost:.4f}"
        timed = "" if self._config.llm.mode == "batch" else f", ~{self.seconds(name):.0f} s"
        return (
            f"  with --cleaning {name}: ~{other.requests} requests, ~{other.prompt_tokens:,} "
            f"prompt + ~{other.completion_tokens:,} completion tokens{timed}{priced} "
            "(an estimate from the same pages)"
        )


def _lines(text: str) -> int:
    """The lines edit mode numbers (about: a code block counts once, not per line)."""
    return sum(1 for line in text.split("\n") if line.strip())
