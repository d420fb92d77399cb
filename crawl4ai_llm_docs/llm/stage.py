"""The LLM stage: workers turn chunks into cleaned Markdown, as fast as the limiter admits.

Each chunk is looked up in the result cache first; a miss goes through ``ChatClient`` (which
waits on the circuit breaker and the shared rate limiter). A chunk the provider finds too
large is split and its halves processed in order. An answer that fails the faithfulness
check, or a chunk whose retries ran out, keeps the crawled Markdown for that chunk, so
nothing already crawled is lost. Every successful answer is committed to the cache the moment
it arrives. A fatal provider error propagates and cancels the whole stage.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
import trio

from crawl4ai_llm_docs.cache import ResultCache
from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.errors import ProviderError, ProviderFatalError
from crawl4ai_llm_docs.llm.chunking import split_chunk
from crawl4ai_llm_docs.llm.client import ChatClient, NeedsSplitError
from crawl4ai_llm_docs.llm.prompts import build_messages, check_faithful, parse_answer
from crawl4ai_llm_docs.llm.reassemble import merge_results
from crawl4ai_llm_docs.models import Chunk, ChunkResult

log = structlog.get_logger()

# Tokens the system prompt and template add around the chunk, for the limiter's estimate.
PROMPT_OVERHEAD_TOKENS = 400


def _fallback(chunk: Chunk, warning: str) -> ChunkResult:
    return ChunkResult(
        page_index=chunk.page_index,
        chunk_index=chunk.chunk_index,
        chunk_count=chunk.chunk_count,
        markdown=chunk.text,
        source="fallback",
        warning=warning,
        llm_failed=True,
    )


class ChunkProcessor:
    """Cache lookup, request, split-and-retry and faithfulness check for one chunk."""

    def __init__(self, *, client: ChatClient, cache: ResultCache, llm: LLMConfig) -> None:
        self._client = client
        self._cache = cache
        self._llm = llm

    async def process(self, chunk: Chunk) -> ChunkResult:
        key = ResultCache.key_for(chunk, self._llm)
        cached = await self._cache.get(key)
        if cached is not None:
            log.info("chunk_cached", url=chunk.url, chunk=chunk.chunk_index)
            return cached.to_result(chunk)
        try:
            completion = await self._client.complete(
                build_messages(chunk, self._llm),
                prompt_tokens=chunk.tokens + PROMPT_OVERHEAD_TOKENS,
                url=chunk.url,
                chunk=chunk.chunk_index,
            )
        except NeedsSplitError as exc:
            return await self._split(chunk, str(exc))
        except ProviderFatalError:
            raise
        except ProviderError as exc:
            # Not cached: a later run should try this chunk again.
            log.warning(
                "warning",
                message=f"{chunk.url} part {chunk.chunk_index + 1}: {exc}; kept the crawled Markdown",
            )
            return _fallback(chunk, f"LLM request failed: {exc}")

        description, markdown = parse_answer(completion.content)
        problem = check_faithful(chunk.text, markdown, min_ratio=self._llm.min_output_ratio)
        if problem is not None:
            log.warning(
                "faithfulness_fallback", url=chunk.url, chunk=chunk.chunk_index, reason=problem
            )
        result = ChunkResult(
            page_index=chunk.page_index,
            chunk_index=chunk.chunk_index,
            chunk_count=chunk.chunk_count,
            markdown=markdown if problem is None else chunk.text,
            description=description,
            source="llm" if problem is None else "fallback",
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            warning=None if problem is None else f"answer discarded: {problem}",
        )
        # The provider's work is paid for: keep it even if this run is interrupted next.
        with trio.CancelScope(shield=True):
            await self._cache.put(key, result)
        return result

    async def _split(self, chunk: Chunk, reason: str) -> ChunkResult:
        halves = await trio.to_thread.run_sync(
            lambda: split_chunk(chunk, min_tokens=self._llm.chunk_min_tokens)
        )
        if halves is None:
            log.warning(
                "warning",
                message=f"{chunk.url} part {chunk.chunk_index + 1} cannot be split further ({reason}); kept the crawled Markdown",
            )
            return _fallback(
                chunk, f"too large for the provider and cannot be split further: {reason}"
            )
        return merge_results([await self.process(half) for half in halves])


async def run(
    receive: trio.MemoryReceiveChannel[Chunk],
    send: trio.MemorySendChannel[ChunkResult],
    *,
    processor: ChunkProcessor,
    workers: int,
    on_fatal: Callable[[ProviderFatalError], None],
) -> None:
    """Fan out ``workers`` tasks over the chunk channel; results go downstream as they finish.

    Concurrency on the wire is bounded by the rate limiter's CapacityLimiter, not by the
    worker count; workers only keep that many chunks in hand. A fatal provider error is handed
    to ``on_fatal`` (the wiring stops the upstream stages and the run) instead of crashing the nursery.
    """

    async def worker(
        chunks: trio.MemoryReceiveChannel[Chunk], results: trio.MemorySendChannel[ChunkResult]
    ) -> None:
        async with chunks, results:
            try:
                async for chunk in chunks:
                    await results.send(await processor.process(chunk))
            except ProviderFatalError as exc:
                on_fatal(exc)

    async with trio.open_nursery() as nursery, receive, send:
        for _ in range(workers):
            nursery.start_soon(worker, receive.clone(), send.clone())
