"""The LLM stage: workers turn chunks into cleaned Markdown, as fast as the limiter admits.

Each chunk is looked up in the result cache first; a miss goes through ``ChatClient`` (which
waits on the circuit breaker and the shared rate limiter). A chunk the provider finds too
large is split and its halves processed in order. An answer that fails the faithfulness
check (``faithful.judge``) is asked for again (``llm.unfaithful_retries``, at temperature
0); when that fails too, or the chunk's retries ran out, the chunk keeps its crawled
Markdown, so nothing already crawled is lost. Every answer is committed to the cache with its
verdict the moment it arrives. A fatal provider error propagates and cancels the whole stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.cache import CachedResult, ResultCache
from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.errors import ProviderError, ProviderFatalError
from crawl4ai_llm_docs.llm.chunking import merge_results, split_chunk
from crawl4ai_llm_docs.llm.client import ChatClient, Completion, NeedsSplitError
from crawl4ai_llm_docs.llm.faithful import FaithfulSettings, Verdict, invented_code, judge
from crawl4ai_llm_docs.llm.markdown_facts import MarkdownFacts
from crawl4ai_llm_docs.llm.prompts import (
    build_messages,
    parse_answer,
    part_label,
    render_user_prompt,
)
from crawl4ai_llm_docs.models import Chunk, ChunkResult

log = structlog.get_logger()

# Tokens the system prompt and template add around the chunk, for the limiter's estimate.
PROMPT_OVERHEAD_TOKENS = 400
# Texts longer than this are parsed and judged in a worker thread (about 5 ms of CPU).
THREAD_CHARS = 50_000

T = TypeVar("T")


async def _in_thread_if_large(text: str, work: Callable[[], T]) -> T:
    if len(text) > THREAD_CHARS:
        return await trio.to_thread.run_sync(work)
    return work()


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
    """Cache lookup, request, split-and-retry and faithfulness check for one chunk.

    An answer is judged by ``faithful.judge``; one that fails is asked for again
    ``llm.unfaithful_retries`` times at temperature 0, then the chunk keeps its crawled
    Markdown. Every answer is cached under its attempt's key with the verdict, so a re-run
    sends nothing for a chunk already judged; an answer judged under other check settings is
    judged again, not asked for again.

    Progress counts a chunk once: the first answer's ``llm_request`` (or ``chunk_cached`` when
    no request is sent), and ``unfaithful_retry`` takes that back when the chunk is asked again.
    """

    def __init__(self, *, client: ChatClient, cache: ResultCache, llm: LLMConfig) -> None:
        self._client = client
        self._cache = cache
        self._llm = llm
        self._settings = FaithfulSettings.from_llm(llm)
        self._check = self._settings.fingerprint()

    async def process(self, chunk: Chunk) -> ChunkResult:
        facts = await _in_thread_if_large(chunk.text, lambda: MarkdownFacts.of(chunk.text))
        prompt = self._prompt_text(chunk)
        counted = False  # whether progress has counted this chunk as done
        sent = False  # whether a request was answered in this run
        billed = [0, 0]  # prompt and completion tokens of the answers received in this run
        judged: list[CachedResult] = []  # the answers so far, all rejected
        for attempt in range(1 + self._llm.unfaithful_retries):
            key = ResultCache.key_for(chunk, self._llm, attempt=attempt)
            entry = await self._cache.get(key)
            if entry is not None:
                entry = await self._rejudge(entry, facts, prompt)
                if not counted:
                    log.info("chunk_cached", url=chunk.url, chunk=chunk.chunk_index)
                    counted = True
            else:
                if judged and counted:
                    log.info(
                        "unfaithful_retry",
                        url=chunk.url,
                        chunk=chunk.chunk_index,
                        attempt=attempt,
                        reason=judged[-1].problem or "",
                    )
                outcome = await self._ask(chunk, first=not judged)
                if not isinstance(outcome, Completion):
                    return outcome if outcome is not None else self._rejected(chunk, judged, billed)
                counted = sent = True
                billed[0] += outcome.prompt_tokens
                billed[1] += outcome.completion_tokens
                entry = await self._judged(key, outcome, facts, prompt)
            if entry.problem is None:
                return self._accepted(chunk, entry, billed if sent else None)
            judged.append(entry)
        return self._rejected(chunk, judged, billed)

    async def _ask(self, chunk: Chunk, *, first: bool) -> Completion | ChunkResult | None:
        """An answer; else the result of the chunk when it cannot have one (split halves or
        the crawled text), or None for a retry that failed (the rejected answer's verdict
        stands)."""
        try:
            return await self._client.complete(
                build_messages(chunk, self._llm),
                prompt_tokens=chunk.tokens + PROMPT_OVERHEAD_TOKENS,
                url=chunk.url,
                chunk=chunk.chunk_index,
                temperature=None if first else 0.0,
            )
        except NeedsSplitError as exc:
            # A retry cut off at max_tokens is not split: the first answer was complete.
            return await self._split(chunk, str(exc)) if first else None
        except ProviderFatalError:
            raise
        except ProviderError as exc:
            # Not cached: a later run should try this chunk again.
            log.warning(
                "warning",
                message=f"{chunk.url} part {chunk.chunk_index + 1}: {exc}; kept the crawled Markdown",
            )
            return _fallback(chunk, f"LLM request failed: {exc}") if first else None

    @staticmethod
    def _rejected(chunk: Chunk, judged: list[CachedResult], billed: list[int]) -> ChunkResult:
        """The crawled text, since every answer failed the check."""
        problem = judged[-1].problem or "rejected"
        log.warning("faithfulness_fallback", url=chunk.url, chunk=chunk.chunk_index, reason=problem)
        tries = f" ({len(judged)} answers)" if len(judged) > 1 else ""
        return ChunkResult(
            page_index=chunk.page_index,
            chunk_index=chunk.chunk_index,
            chunk_count=chunk.chunk_count,
            markdown=chunk.text,
            source="fallback",
            prompt_tokens=billed[0],
            completion_tokens=billed[1],
            warning=f"answer discarded{tries}: {problem}",
        )

    def _prompt_text(self, chunk: Chunk) -> str:
        """What the model was told besides the chunk: its identifiers are not invented."""
        template = render_user_prompt(
            self._llm.user_prompt,
            url=chunk.url,
            title=chunk.title,
            part=part_label(chunk),
            content="",
        )
        return f"{self._llm.system_prompt}\n{template}"

    async def _judge(self, facts: MarkdownFacts, markdown: str, prompt: str) -> Verdict:
        return await _in_thread_if_large(
            markdown, lambda: judge(facts, markdown, self._settings, prompt=prompt)
        )

    async def _judged(
        self, key: str, completion: Completion, facts: MarkdownFacts, prompt: str
    ) -> CachedResult:
        """The verdict on a fresh answer, cached with it at once (accepted or not)."""
        description, markdown = parse_answer(completion.content)
        verdict = await self._judge(facts, markdown, prompt)
        if description and invented_code(facts, MarkdownFacts.of(description), prompt=prompt):
            description = ""  # an invented name in the one-line summary: drop the summary
        entry = CachedResult(
            key=key,
            markdown=markdown,
            description=description,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            problem=verdict.reason,
            checks_failed=tuple(p.check for p in verdict.problems),
            check=self._check,
        )
        # The provider's work is paid for: keep it even if this run is interrupted next.
        with trio.CancelScope(shield=True):
            await self._cache.put_entry(entry)
        return entry

    async def _rejudge(
        self, entry: CachedResult, facts: MarkdownFacts, prompt: str
    ) -> CachedResult:
        """A cached answer with a verdict of this check: judged again if another one made it."""
        if entry.check == self._check:
            return entry
        verdict = await self._judge(facts, entry.markdown, prompt)
        description = entry.description
        if description and invented_code(facts, MarkdownFacts.of(description), prompt=prompt):
            description = ""
        entry = msgspec.structs.replace(
            entry,
            description=description,
            problem=verdict.reason,
            checks_failed=tuple(p.check for p in verdict.problems),
            check=self._check,
        )
        with trio.CancelScope(shield=True):
            await self._cache.put_entry(entry)
        return entry

    @staticmethod
    def _accepted(chunk: Chunk, entry: CachedResult, billed: list[int] | None) -> ChunkResult:
        """The answer; ``billed`` is None when every answer came from the cache."""
        return ChunkResult(
            page_index=chunk.page_index,
            chunk_index=chunk.chunk_index,
            chunk_count=chunk.chunk_count,
            markdown=entry.markdown,
            description=entry.description,
            source="cache" if billed is None else "llm",
            prompt_tokens=entry.prompt_tokens if billed is None else billed[0],
            completion_tokens=entry.completion_tokens if billed is None else billed[1],
        )

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
    to ``on_fatal`` (the pipeline cancels the run's scope) instead of crashing the nursery.
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
