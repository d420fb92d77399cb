"""One chunk to cleaned Markdown, shared by the live and the batch LLM stages.

Each chunk is looked up in the result cache first; a miss goes through ``ChatClient`` (which
waits on the circuit breaker and the shared rate limiter). A chunk the provider finds too
large is split and its halves processed in order. An answer that fails the faithfulness
check (``faithful.judge``) is asked for again (``llm.unfaithful_retries``, at temperature
0); when that fails too, or the chunk's retries ran out, the chunk keeps its crawled
Markdown, so nothing already crawled is lost. Every answer is committed to the cache with its
verdict the moment it arrives, and so is the fact that a chunk's answer was cut off (its
halves are asked from then on).

What is asked for and how an answer becomes Markdown depend on the cleaning mode
(``cleaning.py``: a rewrite, or an edit script applied to the chunk).

Batch mode drives the same steps without sending anything here: ``next_request`` says what a
chunk needs next (its result, the request to send, or its halves), ``record_answer`` and
``cut_off`` take an answer that came back in a batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.cache.results import CachedResult, ResultCache
from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.errors import ProviderError, ProviderFatalError
from crawl4ai_llm_docs.llm.cleaning import Cleaning
from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts
from crawl4ai_llm_docs.llm.faithfulness.judge import FaithfulSettings, Verdict, invented_code, judge
from crawl4ai_llm_docs.llm.provider.client import ChatClient, Completion, NeedsSplitError
from crawl4ai_llm_docs.llm.provider.completion import AnswerGuard
from crawl4ai_llm_docs.markdown.chunking import split_chunk
from crawl4ai_llm_docs.markdown.reassemble import merge_results
from crawl4ai_llm_docs.models import Chunk, ChunkResult

log = structlog.get_logger()

# Texts longer than this are parsed and judged in a worker thread (about 5 ms of CPU).
THREAD_CHARS = 50_000

T = TypeVar("T")
# ``checks_failed`` of a cache entry for a chunk the provider cut off and that cannot be split.
TOO_LARGE = ("too large",)
# ``checks_failed`` of the entry of a chunk whose first answer was cut off: its halves are
# asked instead, also by a later run with the same max_tokens.
SPLIT = ("split",)


class Ask(NamedTuple):
    """A chunk's next request, for a caller that sends it another way (batch mode)."""

    attempt: int  # 0: the first answer; more: a retry of a rejected one
    key: str  # the cache key its answer is stored under (a batch line's custom_id)

    @property
    def temperature(self) -> float | None:
        """None: ``llm.temperature``; a retry is asked at 0."""
        return None if self.attempt == 0 else 0.0


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


fallback_result = _fallback  # the batch stage's name for it
Next = ChunkResult | Ask | list[Chunk]  # what a chunk needs next: done, a request, its halves


class ChunkProcessor:
    """Cache lookup, request, split-and-retry and faithfulness check for one chunk.

    An answer is judged by ``faithful.judge``; one that fails is asked for again
    ``llm.unfaithful_retries`` times at temperature 0, then the chunk keeps its crawled
    Markdown. Every answer is cached under its attempt's key with the verdict, so a re-run
    sends nothing for a chunk already judged; an answer judged under other check settings is
    judged again, not asked for again.

    Progress counts a chunk once: its first answer's ``llm_request`` (or ``chunk_cached`` when
    it comes from the cache); ``unfaithful_retry``, logged when a retry's answer arrives,
    takes back the count of the answer it replaces.
    """

    def __init__(self, *, client: ChatClient, cache: ResultCache, llm: LLMConfig) -> None:
        self._client = client
        self._cache = cache
        self._llm = llm
        self._settings = FaithfulSettings.from_llm(llm)
        self._cleaning = Cleaning(llm, self._settings)
        self._check = self._settings.fingerprint()
        # A chunk found too large holds for this smallest size only, a cut-off answer for this
        # answer size.
        self._too_large_check = f"chunk_min_tokens={llm.chunk_min_tokens}"
        self._split_check = f"max_tokens={llm.max_tokens}"

    # ------------------------------------------------------------ for the batch stage

    @property
    def client(self) -> ChatClient:
        return self._client

    @property
    def llm(self) -> LLMConfig:
        return self._llm

    @property
    def cache(self) -> ResultCache:
        return self._cache

    async def next_request(
        self,
        chunk: Chunk,
        *,
        billed: list[int] | None = None,
        judged: Sequence[CachedResult] = (),
    ) -> Next:
        """The chunk's result when its answers settle it, else the request to send next, or
        its halves when its first answer was cut off; nothing is sent here. ``judged``: the
        verdicts this run made on the chunk's answers, first to last (they hold also when the
        cache keeps nothing); later ones come from the cache. ``billed``: the tokens of the
        answers this run received (None: all were cached)."""
        facts: MarkdownFacts | None = None  # made only to judge a cached answer again
        rejected: list[CachedResult] = []
        for attempt in range(1 + self._llm.unfaithful_retries):
            key = ResultCache.key_for(chunk, self._llm, attempt=attempt)
            entry = judged[attempt] if attempt < len(judged) else await self._cache.get(key)
            if entry is not None and entry.checks_failed == TOO_LARGE:
                if entry.check == self._too_large_check:
                    return _fallback(chunk, entry.problem or "too large")
                entry = None
            if entry is not None and entry.checks_failed == SPLIT:
                if attempt == 0 and entry.check == self._split_check:
                    return await self.halves(chunk, key, entry.problem or "cut off")
                entry = None
            if entry is None:
                return Ask(attempt, key)
            if entry.check != self._check and entry.markdown:
                if facts is None:
                    facts = await _in_thread_if_large(
                        chunk.text, functools.partial(MarkdownFacts.of, chunk.text)
                    )
                entry = await self._rejudge(entry, facts, self._cleaning.prompt_text(chunk))
            if entry.problem is None:
                return self._accepted(chunk, entry, billed)
            rejected.append(entry)
        return self._rejected(chunk, rejected, billed or [0, 0])

    async def record_answer(self, chunk: Chunk, key: str, completion: Completion) -> CachedResult:
        """An answer that came another way (a batch): judged and cached like a live one."""
        facts = await _in_thread_if_large(chunk.text, lambda: MarkdownFacts.of(chunk.text))
        return await self._judged(chunk, key, completion, facts)

    async def answer_guard(self, chunk: Chunk) -> AnswerGuard:
        """What reads an answer for this chunk as a live request's does (a batch's answer,
        cut off: a loop, or any edit script, is no reason to split)."""
        facts = await _in_thread_if_large(chunk.text, lambda: MarkdownFacts.of(chunk.text))
        return self._cleaning.request(chunk, facts).guard()

    def request_body(self, chunk: Chunk, *, attempt: int = 0) -> bytes:
        """A chunk's request as a batch line sends it (a retry, ``attempt`` > 0, at
        temperature 0, as live retries are)."""
        facts = MarkdownFacts.of(chunk.text)
        request = self._cleaning.request(chunk, facts)
        return self._client.payload(
            request.messages,
            temperature=0.0 if attempt else None,
            max_tokens=request.max_tokens,
            structured=request.structured,
        )

    async def cut_off(
        self, chunk: Chunk, ask: Ask, reason: str
    ) -> list[Chunk] | ChunkResult | CachedResult:
        """An answer that came back cut off (or a chunk too large for the context): a first
        answer's chunk is split (its halves, or its crawled text when it cannot be); a retry's
        is a rejected answer like any other (its verdict, for ``next_request``)."""
        if ask.attempt > 0:
            problem = f"the retry's {reason}"
            entry = CachedResult(key=ask.key, markdown="", problem=problem, check=self._check)
            await self._put(entry)
            return entry
        return await self._mark_split(chunk, ask.key, reason)

    async def halves(self, chunk: Chunk, key: str, reason: str) -> list[Chunk] | ChunkResult:
        """The chunk's two halves, or its crawled text (and a cached verdict, so a re-run with
        the same settings does not ask again) when it cannot be split further."""
        halves = await trio.to_thread.run_sync(
            lambda: split_chunk(chunk, min_tokens=self._llm.chunk_min_tokens)
        )
        if halves is not None:
            return halves
        log.warning(
            "warning",
            message=f"{chunk.url} part {chunk.chunk_index + 1} cannot be split further ({reason}); kept the crawled Markdown",
        )
        problem = f"too large for the provider and cannot be split further: {reason}"
        # A verdict too (the answer was paid for): a re-run with the same settings would only
        # be cut off again.
        await self._put(
            CachedResult(
                key=key,
                markdown="",
                problem=problem,
                checks_failed=TOO_LARGE,
                check=self._too_large_check,
            )
        )
        return _fallback(chunk, problem)

    async def _mark_split(self, chunk: Chunk, key: str, reason: str) -> list[Chunk] | ChunkResult:
        """Remember that the chunk's answer was cut off, then its halves."""
        await self._put(
            CachedResult(
                key=key, markdown="", problem=reason, checks_failed=SPLIT, check=self._split_check
            )
        )
        return await self.halves(chunk, key, reason)

    # ------------------------------------------------------------ live

    async def process(self, chunk: Chunk) -> ChunkResult:
        facts = await _in_thread_if_large(chunk.text, lambda: MarkdownFacts.of(chunk.text))
        prompt = self._cleaning.prompt_text(chunk)
        counted = False  # whether progress has counted this chunk as done
        sent = False  # whether a request was answered in this run
        billed = [0, 0]  # prompt and completion tokens of the answers received in this run
        judged: list[CachedResult] = []  # the answers so far, all rejected
        for attempt in range(1 + self._llm.unfaithful_retries):
            key = ResultCache.key_for(chunk, self._llm, attempt=attempt)
            entry = await self._cache.get(key)
            if entry is not None and entry.checks_failed == TOO_LARGE:
                if entry.check == self._too_large_check:
                    log.info("chunk_cached", url=chunk.url, chunk=chunk.chunk_index)
                    return _fallback(chunk, entry.problem or "too large")
                entry = None  # judged too large under another chunk_min_tokens: ask again
            if entry is not None and entry.checks_failed == SPLIT:
                if attempt == 0 and entry.check == self._split_check:
                    return await self._split(chunk, key, entry.problem or "cut off", marked=True)
                entry = None  # cut off under another max_tokens: ask again
            if entry is not None:
                entry = await self._rejudge(entry, facts, prompt)
                if not counted:
                    log.info("chunk_cached", url=chunk.url, chunk=chunk.chunk_index)
                    counted = True
            else:
                outcome = await self._ask(chunk, key, facts, first=not judged)
                if outcome is None:
                    break  # a retry failed: the rejected answer's verdict stands
                if isinstance(outcome, ChunkResult):
                    return outcome
                if isinstance(outcome, str):  # a retry cut off at max_tokens
                    entry = CachedResult(key=key, markdown="", problem=outcome, check=self._check)
                    await self._put(entry)
                    judged.append(entry)
                    continue
                if judged and counted:
                    # Logged once the new answer is here: progress counted the chunk done for
                    # its first answer and counts it again for this one.
                    log.info(
                        "unfaithful_retry",
                        url=chunk.url,
                        chunk=chunk.chunk_index,
                        attempt=attempt,
                        reason=judged[-1].problem or "",
                    )
                counted = sent = True
                billed[0] += outcome.prompt_tokens
                billed[1] += outcome.completion_tokens
                entry = await self._judged(chunk, key, outcome, facts)
            if entry.problem is None:
                return self._accepted(chunk, entry, billed if sent else None)
            judged.append(entry)
        return self._rejected(chunk, judged, billed)

    async def _ask(
        self, chunk: Chunk, key: str, facts: MarkdownFacts, *, first: bool
    ) -> Completion | ChunkResult | str | None:
        """An answer; else the chunk's result when the first request cannot be answered
        (split halves, or the crawled text), why a retry was cut off, or None when a retry
        failed."""
        request = self._cleaning.request(chunk, facts)
        try:
            return await self._client.complete(
                request.messages,
                prompt_tokens=request.prompt_tokens,
                url=chunk.url,
                chunk=chunk.chunk_index,
                temperature=None if first else 0.0,
                max_tokens=request.max_tokens,
                structured=request.structured,
                guard=request.guard,
            )
        except NeedsSplitError as exc:
            # A retry cut off at max_tokens is not split (the first answer was complete): it
            # is a rejected answer like any other.
            return await self._split(chunk, key, str(exc)) if first else f"the retry's {exc}"
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
        # The last answer's reason, unless it was only cut off: then the last judged one's.
        problems = [entry.problem for entry in judged if entry.problem and entry.markdown]
        problem = (problems or [judged[-1].problem or "rejected"])[-1]
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

    async def _put(self, entry: CachedResult) -> None:
        # The provider's work is paid for: keep it even if this run is interrupted next.
        with trio.CancelScope(shield=True):
            await self._cache.put_entry(entry)

    async def _judge(self, facts: MarkdownFacts, markdown: str, prompt: str) -> Verdict:
        return await _in_thread_if_large(
            markdown, lambda: judge(facts, markdown, self._settings, prompt=prompt)
        )

    async def _judged(
        self, chunk: Chunk, key: str, completion: Completion, facts: MarkdownFacts
    ) -> CachedResult:
        """The verdict on a fresh answer, cached with it at once (accepted or not)."""
        # A rewrite is as long as the chunk; an edit script is short but applied to the chunk.
        longer = max(completion.content, chunk.text, key=len)
        reading = await _in_thread_if_large(
            longer, lambda: self._cleaning.read(chunk, completion, facts)
        )
        if reading.problem is not None:
            # Nothing to judge (stopped, cut off by a loop, no valid script): kept without
            # Markdown, so no later check can accept it.
            entry = CachedResult(
                key=key,
                markdown="",
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                problem=reading.problem,
                checks_failed=("unusable",),
                check=self._check,
            )
            await self._put(entry)
            return entry
        prompt = self._cleaning.prompt_text(chunk)
        description, markdown = reading.description, reading.markdown
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
        await self._put(entry)
        return entry

    async def _rejudge(
        self, entry: CachedResult, facts: MarkdownFacts, prompt: str
    ) -> CachedResult:
        """A cached answer with a verdict of this check: judged again if another one made it."""
        if entry.check == self._check or not entry.markdown:
            return entry  # judged by this check, or a retry cut off (nothing to judge)
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
        await self._put(entry)
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

    async def _split(
        self, chunk: Chunk, key: str, reason: str, *, marked: bool = False
    ) -> ChunkResult:
        halves = (
            await self.halves(chunk, key, reason)
            if marked
            else await self._mark_split(chunk, key, reason)
        )
        if isinstance(halves, ChunkResult):
            return halves
        return merge_results([await self.process(half) for half in halves])
