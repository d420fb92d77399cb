"""The live LLM stage: workers send chunks as fast as the limiter admits, results flow on.

Each worker hands its chunk to the shared ``ChunkProcessor`` (``processor.py``: cache, request,
faithfulness check, retries, splits) and sends the result downstream as soon as it is done.
A fatal provider error propagates and cancels the whole stage.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from crawl4ai_llm_docs.errors import ProviderFatalError
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.models import Chunk, ChunkResult


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
