"""Batch answers back to chunks: reading output and error files, and sending results on.

``Answers`` owns the map from cache key to the chunks waiting for that key's answer (their
text is in the work directory's spool). Each output or error line is joined on its
``custom_id``: a usable answer goes through ``ChunkProcessor.finish`` (parse, faithfulness
check, cache), exactly as a live answer does; a line to send again or to split is handed
back to the caller; anything else keeps the crawled text. One answer serves every chunk with
the same text.
"""

from __future__ import annotations

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.llm.batch.api import Batch, BatchApi
from crawl4ai_llm_docs.llm.batch.files import ChunkRef, WorkDir, output_line_decoder
from crawl4ai_llm_docs.llm.batch.store import BatchRecord, BatchStore
from crawl4ai_llm_docs.llm.processor import ChunkProcessor, fallback_result
from crawl4ai_llm_docs.llm.provider.classify import Action, Decision, classify
from crawl4ai_llm_docs.llm.provider.client import Completion, decode_completion
from crawl4ai_llm_docs.models import Chunk, ChunkResult

log = structlog.get_logger()


class Answers:
    """Chunks waiting for answers, and what becomes of each answer."""

    def __init__(
        self,
        *,
        processor: ChunkProcessor,
        send: trio.MemorySendChannel[ChunkResult],
        work: WorkDir,
        store: BatchStore,
    ) -> None:
        self._processor = processor
        self._send = send
        self._work = work
        self._store = store
        self.waiting: dict[str, list[ChunkRef]] = {}  # cache key -> chunks awaiting its answer
        self.reasons: dict[str, str] = {}  # key -> why its last send failed
        self.foreign = 0  # answers read for chunks this run does not have, not cached

    async def read(self, api: BatchApi, file_id: str, retry: list[str], split: list[str]) -> None:
        target = self._work.path / f"{file_id}.jsonl"
        await api.download(file_id, target)
        async with await trio.open_file(target, "rb") as handle:
            async for raw in handle:
                if raw.strip():
                    await self.line(raw, retry, split)
        await trio.Path(target).unlink()

    async def line(self, raw: bytes, retry: list[str], split: list[str]) -> None:
        try:
            line = output_line_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("warning", message=f"ignored an unreadable batch result line: {raw[:80]!r}")
            return
        key = line.custom_id
        if key not in self.waiting:
            # Another run's chunk (one page in two URL lists): unless its answer is cached,
            # the batch must stay stored for that run to collect.
            if not await trio.to_thread.run_sync(self._processor.cache.has, key):
                self.foreign += 1
            return
        response = line.response
        outcome: Completion | Decision
        if response is not None and response.status_code == 200:
            outcome = decode_completion(bytes(response.body))
        elif response is not None and response.status_code:
            outcome = classify(response.status_code, bytes(response.body), {})
        else:
            error = line.error
            reason = f"{error.code}: {error.message}" if error else "no response"
            outcome = Decision(Action.RETRY, reason)
        if isinstance(outcome, Completion):
            chunk = await self.chunk(key)
            result = await self._processor.finish(chunk, key, outcome)
            await self.emit(key, result)
        elif outcome.action is Action.SPLIT:
            split.append(key)
        elif outcome.action is Action.RETRY:
            self.reasons[key] = outcome.reason
            retry.append(key)
        else:
            await self.give_up(key, f"the provider rejected the request: {outcome.reason}")

    async def rejected(self, record: BatchRecord, batch: Batch) -> None:
        """A batch that failed validation: name the bad line; those chunks keep their text."""
        problems = batch.errors.data if batch.errors else []
        if not problems:
            log.error("error", message=f"The provider rejected batch {batch.id} without a reason.")
            return
        described: list[str] = []
        for problem in problems:
            key = None
            if problem.line is not None:
                key = await trio.to_thread.run_sync(
                    self._store.key_at, record.local_id, problem.line
                )
            where = f"line {problem.line}" if problem.line is not None else "the input file"
            refs = self.waiting.get(key or "")
            if refs:
                where += f" ({refs[0].url}, part {refs[0].chunk_index + 1})"
            described.append(f"{where}: {problem.message}")
            if key is not None and key in self.waiting:
                await self.give_up(key, f"rejected by the provider: {problem.message}", quiet=True)
        more = f" (and {len(described) - 1} more line(s))" if len(described) > 1 else ""
        log.error(
            "error",
            message=f"The provider rejected batch {batch.id}: {described[0]}{more}. "
            "Those chunks keep their crawled text; any other lines are sent again.",
        )

    async def chunk(self, key: str) -> Chunk:
        return await trio.to_thread.run_sync(self._work.chunk, self.waiting[key][0])

    async def give_up(self, key: str, warning: str, *, quiet: bool = False) -> None:
        chunk = await self.chunk(key)
        if not quiet:
            log.warning(
                "warning",
                message=f"{chunk.url} part {chunk.chunk_index + 1}: {warning}; "
                "kept the crawled Markdown",
            )
        await self.emit(key, fallback_result(chunk, warning))

    async def emit(self, key: str, result: ChunkResult) -> None:
        """Send ``result`` for every chunk waiting on ``key`` (duplicates share one answer)."""
        refs = self.waiting.pop(key, [])
        for ref in refs:
            log.info(
                "batch_result",
                url=ref.url,
                chunk=ref.chunk_index,
                source=result.source,
                prompt_tokens=result.prompt_tokens if ref is refs[0] else 0,
                completion_tokens=result.completion_tokens if ref is refs[0] else 0,
            )
            if ref is not refs[0]:
                result = msgspec.structs.replace(
                    result,
                    page_index=ref.page_index,
                    chunk_index=ref.chunk_index,
                    chunk_count=ref.chunk_count,
                )
            await self._send.send(result)
