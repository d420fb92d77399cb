"""The chunk stage: crawled pages in, chunks of at most the LLM's budget out, in page order.

Failed pages carry nothing to clean: they go to ``on_failed`` (the collector lists them).
Every other page is reported to ``on_chunked`` with its chunks before they are sent, so the
collector expects the page before any of its results can arrive, and progress knows the total.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import trio

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.markdown.chunking import split_page
from crawl4ai_llm_docs.markdown.tokens import preload_encoder
from crawl4ai_llm_docs.models import Chunk, Page

# Pages larger than this are chunked in a worker thread so the trio loop stays responsive.
THREAD_CHUNKING_CHARS = 50_000
# Share of llm.max_tokens a chunk may fill: room for the description line, the answer's own
# formatting, and a provider whose tokenizer counts ~20% more than ours (tiktoken).
ANSWER_HEADROOM = 0.75


def chunk_size(llm: LLMConfig) -> int:
    """Tokens per chunk: ``chunk_max_tokens``, but small enough for the answer to fit.

    A cleaned chunk is about as long as the chunk itself (plus the description line), so a
    chunk near ``max_tokens`` or above it would be cut off (finish_reason=length) and sent
    again as halves: paid for twice (with chunks of 6000 and max_tokens 4096 every large page was).
    In edit mode the answer is a short script: the prompt is the limit, not the answer.
    """
    if llm.cleaning == "edit":
        return llm.chunk_max_tokens
    fits = int(llm.max_tokens * ANSWER_HEADROOM)
    return max(llm.chunk_min_tokens, min(llm.chunk_max_tokens, fits))


async def run(
    receive: trio.MemoryReceiveChannel[Page],
    send: trio.MemorySendChannel[Chunk],
    *,
    max_tokens: int,
    on_failed: Callable[[Page], Awaitable[None]],
    on_chunked: Callable[[Page, list[Chunk]], None],
) -> None:
    async with receive, send:
        # Off the trio thread, while the first pages are still being crawled.
        await trio.to_thread.run_sync(preload_encoder)
        async for page in receive:
            if not page.ok:
                await on_failed(page)
                continue
            if len(page.markdown) > THREAD_CHUNKING_CHARS:
                parts = await trio.to_thread.run_sync(
                    functools.partial(split_page, page, max_tokens=max_tokens)
                )
            else:
                parts = split_page(page, max_tokens=max_tokens)
            on_chunked(page, parts)
            for part in parts:
                await send.send(part)
