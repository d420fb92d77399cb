"""``--dry-run``: what the LLM work would cost, from the chunks the run would send."""

from __future__ import annotations

import math

from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.models import Chunk

# Assumptions for the time estimate, stated in the output: a cleaned page is about as long as
# its input, and a provider writes ~60 tokens/s after ~1 s to first token.
PROMPT_OVERHEAD_TOKENS = 400
FIRST_TOKEN_S = 1.0
OUTPUT_TOKENS_PER_S = 60.0
# The Batch API's price relative to live requests (OpenAI: 50% off, results within 24 h).
BATCH_PRICE_FACTOR = 0.5


class Estimate:
    def __init__(self, config: AppConfig) -> None:
        self._config = config
        self.pages = 0
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.longest_completion = 0  # no run can be shorter than its longest request

    def add_page(self, chunks: list[Chunk]) -> None:
        self.pages += 1
        self.requests += len(chunks)
        for chunk in chunks:
            completion = min(chunk.tokens, self._config.llm.max_tokens)
            self.prompt_tokens += chunk.tokens + PROMPT_OVERHEAD_TOKENS
            self.completion_tokens += completion
            self.longest_completion = max(self.longest_completion, completion)

    def projected_chunks(self, total_pages: int) -> int:
        """Chunks expected for the whole run, extrapolated from the pages chunked so far."""
        if self.pages == 0:
            return total_pages
        return max(self.requests, math.ceil(self.requests / self.pages * total_pages))

    def seconds(self) -> float:
        if not self.requests:
            return 0.0
        par = self._config.parallel
        # Fewer requests than slots leave slots idle: they do not shorten the run.
        concurrency = min(par.effective_max_concurrent_requests, self.requests)
        latency = self.requests * FIRST_TOKEN_S + self.completion_tokens / OUTPUT_TOKENS_PER_S
        longest = FIRST_TOKEN_S + self.longest_completion / OUTPUT_TOKENS_PER_S
        bounds = [latency / concurrency, longest]
        if par.requests_per_minute:
            bounds.append(self.requests / par.requests_per_minute * 60)
        if par.tokens_per_minute:
            bounds.append(
                (self.prompt_tokens + self.completion_tokens) / par.tokens_per_minute * 60
            )
        return max(bounds)

    def cost(self) -> float | None:
        llm = self._config.llm
        if not (llm.input_price_per_mtok or llm.output_price_per_mtok):
            return None
        return (
            self.prompt_tokens * llm.input_price_per_mtok
            + self.completion_tokens * llm.output_price_per_mtok
        ) / 1e6

    def render(self, total_pages: int) -> str:
        par = self._config.parallel
        lines = [
            f"Dry run: {self.pages} of {total_pages} pages crawled and chunked; no LLM request sent.",
            f"  requests:          {self.requests}",
            f"  prompt tokens:     ~{self.prompt_tokens:,}",
            f"  completion tokens: ~{self.completion_tokens:,} (assuming output as long as input)",
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
        return "\n".join(lines)
