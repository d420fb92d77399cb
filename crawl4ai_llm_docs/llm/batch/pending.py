"""Chunks waiting for batch answers, and where each answer takes them next.

Every batch line is one cache key. ``Pending`` says who waits for it: the chunks with that
text (their text is in the work directory's spool; the same text twice is one line), which
answer of theirs it is (0, or a retry of a rejected answer, asked at temperature 0), and the
tokens this run has paid for them. Nothing here sends a request: each step asks the shared
``ChunkProcessor.next_request`` what a chunk needs, and a request becomes a line of the next
batch round (``write``). A chunk whose answer was cut off waits as a ``Split`` for its two
halves, which wait as chunks of their own (and may be split again); once both are done, their
results are merged and go where the chunk's result would have gone. A half's result waits in
the spool, not in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.cache.results import CachedResult
from crawl4ai_llm_docs.llm.batch.files import ChunkRef, WorkDir
from crawl4ai_llm_docs.llm.processor import Ask, ChunkProcessor, Next, fallback_result
from crawl4ai_llm_docs.llm.provider.client import Completion
from crawl4ai_llm_docs.markdown.reassemble import merge_results
from crawl4ai_llm_docs.models import Chunk, ChunkResult

log = structlog.get_logger()

Write = Callable[[Chunk, Ask], Awaitable[None]]  # a line for the next round (or a stored batch)


@dataclass(slots=True)
class Waiter:
    """One chunk waiting for an answer: for the collector, or as half of a split chunk."""

    ref: ChunkRef
    split: int = -1  # the Split it is a half of; -1: its result goes downstream
    half: int = 0


@dataclass(slots=True)
class Pending:
    """Who waits for one key's answer (a few hundred bytes a line: no list for the one
    waiter most keys have)."""

    first: Waiter
    attempt: int = 0
    prompt_tokens: int = 0  # paid so far in this run for these chunks' answers
    completion_tokens: int = 0
    more: list[Waiter] | None = None  # other chunks with the same text
    # This run's verdicts on the earlier answers, all rejected (kept without their text):
    # they hold when the cache keeps nothing (--no-cache).
    judged: tuple[CachedResult, ...] = ()

    @property
    def waiters(self) -> list[Waiter]:
        return [self.first, *(self.more or ())]

    def join(self, waiters: list[Waiter]) -> None:
        self.more = [*(self.more or ()), *waiters]

    @property
    def billed(self) -> list[int]:
        return [self.prompt_tokens, self.completion_tokens]


@dataclass(slots=True)
class Split:
    """A chunk cut off and split: its waiters get the merged result of its two halves."""

    waiters: list[Waiter]
    tokens: list[int]  # what the cut-off answer cost
    halves: list[tuple[int, int] | None] = field(default_factory=lambda: [None, None])


class Waiting:
    """The keys this run waits for, its split chunks, and the delivery of results."""

    def __init__(
        self,
        *,
        processor: ChunkProcessor,
        work: WorkDir,
        send: trio.MemorySendChannel[ChunkResult],
        write: Write,
    ) -> None:
        self._processor = processor
        self._work = work
        self._send = send
        self._write = write
        self.keys: dict[str, Pending] = {}
        self._splits: dict[int, Split] = {}
        self._split_ids = itertools.count()

    async def chunk(self, key: str) -> Chunk:
        """The chunk a key's answer is for (the first of those with its text)."""
        return await trio.to_thread.run_sync(self._work.chunk, self.keys[key].first.ref)

    # ------------------------------------------------------------ chunks coming in

    async def add(self, chunk: Chunk) -> None:
        """A chunk from the chunk stage: answered from the cache, or a line of a batch."""
        outcome = await self._processor.next_request(chunk)
        if isinstance(outcome, ChunkResult):
            log.info("chunk_cached", url=chunk.url, chunk=chunk.chunk_index)
            await self._send.send(outcome)
            return
        await self._follow(chunk, [await self._waiter(chunk)], outcome, [0, 0])

    async def _waiter(self, chunk: Chunk, split: int = -1, half: int = 0) -> Waiter:
        ref = await trio.to_thread.run_sync(self._work.add_chunk, chunk)
        return Waiter(ref, split, half)

    async def _follow(
        self,
        chunk: Chunk,
        waiters: list[Waiter],
        outcome: Next,
        billed: list[int],
        judged: tuple[CachedResult, ...] = (),
    ) -> None:
        """Take the chunk where ``next_request`` says: done, a line, or its two halves."""
        if isinstance(outcome, ChunkResult):
            await self.deliver(waiters, outcome)
        elif isinstance(outcome, Ask):
            pending = self.keys.get(outcome.key)
            if pending is not None:  # the same text is on its way already: one line, one answer
                pending.join(waiters)
                return
            self.keys[outcome.key] = Pending(
                waiters[0], outcome.attempt, billed[0], billed[1], waiters[1:] or None, judged
            )
            await self._write(chunk, outcome)
        else:
            number = next(self._split_ids)
            self._splits[number] = Split(waiters, billed)
            for half, part in enumerate(outcome):
                waiter = await self._waiter(part, number, half)
                await self._follow(part, [waiter], await self._processor.next_request(part), [0, 0])

    # ------------------------------------------------------------ answers

    async def answered(self, key: str, completion: Completion) -> None:
        """An answer: judged and cached, then the chunk's next step (a retry joins the next
        round, as a line at temperature 0)."""
        pending = self.keys[key]
        pending.prompt_tokens += completion.prompt_tokens
        pending.completion_tokens += completion.completion_tokens
        chunk = await self.chunk(key)
        await self._next(key, chunk, await self._processor.record_answer(chunk, key, completion))

    async def cut_off(self, key: str, reason: str, tokens: tuple[int, int] = (0, 0)) -> None:
        """An answer cut off (``tokens``: what it cost), or a chunk too large for the context:
        its halves join the next round (a retry's is a rejected answer)."""
        pending = self.keys[key]
        pending.prompt_tokens += tokens[0]
        pending.completion_tokens += tokens[1]
        chunk = await self.chunk(key)
        outcome = await self._processor.cut_off(chunk, Ask(pending.attempt, key), reason)
        if isinstance(outcome, CachedResult):  # a retry's: a rejected answer
            await self._next(key, chunk, outcome)
        else:
            del self.keys[key]
            await self._follow(chunk, pending.waiters, outcome, pending.billed)

    async def _next(self, key: str, chunk: Chunk, verdict: CachedResult) -> None:
        """The chunk's next step after the verdict on its latest answer."""
        pending = self.keys.pop(key)
        judged = (*pending.judged, verdict)
        outcome = await self._processor.next_request(chunk, billed=pending.billed, judged=judged)
        # Verdicts kept for a retry are rejected ones: their text is not needed any more.
        slim = tuple(msgspec.structs.replace(v, markdown="-" if v.markdown else "") for v in judged)
        await self._follow(chunk, pending.waiters, outcome, pending.billed, slim)

    async def give_up(self, key: str, warning: str, *, quiet: bool = False) -> None:
        """The chunk keeps its crawled text (listed with ``warning``)."""
        chunk = await self.chunk(key)
        if not quiet:
            log.warning(
                "warning",
                message=f"{chunk.url} part {chunk.chunk_index + 1}: {warning}; "
                "kept the crawled Markdown",
            )
        await self.deliver(self.keys.pop(key).waiters, fallback_result(chunk, warning))

    async def settle(self, key: str, result: ChunkResult) -> None:
        """A result found another way (a live request, with ``batch_fallback = "live"``)."""
        await self.deliver(self.keys.pop(key).waiters, result)

    # ------------------------------------------------------------ results

    async def deliver(self, waiters: list[Waiter], result: ChunkResult) -> None:
        """``result`` for every waiter (each with its own page and chunk number; the tokens
        are counted once), downstream or into the split it is a half of."""
        for number, waiter in enumerate(waiters):
            ref = waiter.ref
            own = msgspec.structs.replace(
                result,
                page_index=ref.page_index,
                chunk_index=ref.chunk_index,
                chunk_count=ref.chunk_count,
                **({"prompt_tokens": 0, "completion_tokens": 0} if number else {}),
            )
            if waiter.split >= 0:
                await self._into_split(waiter, own)
                continue
            log.info(
                "batch_result",
                url=ref.url,
                chunk=ref.chunk_index,
                source=own.source,
                prompt_tokens=own.prompt_tokens,
                completion_tokens=own.completion_tokens,
            )
            await self._send.send(own)

    async def _into_split(self, waiter: Waiter, result: ChunkResult) -> None:
        split = self._splits[waiter.split]
        split.halves[waiter.half] = await trio.to_thread.run_sync(self._work.add_result, result)
        if None in split.halves:
            return
        del self._splits[waiter.split]
        halves = [await trio.to_thread.run_sync(self._work.result, h) for h in split.halves if h]
        merged = merge_results(halves)
        merged = msgspec.structs.replace(
            merged,
            prompt_tokens=merged.prompt_tokens + split.tokens[0],
            completion_tokens=merged.completion_tokens + split.tokens[1],
        )
        await self.deliver(split.waiters, merged)
