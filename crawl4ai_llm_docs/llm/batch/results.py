"""Batch answers back to chunks: reading output and error files, line by line.

Each output or error line is joined on its ``custom_id`` (a cache key ``Waiting`` knows): a
usable answer goes on through ``Waiting.answered`` (judged and cached as a live answer is;
a rejected one's retry joins the next round), a cut-off one through ``Waiting.cut_off`` (its
halves join the next round), a line to send again is handed back to the caller, and a
refusal keeps the crawled text. One answer serves every chunk with the same text.
"""

from __future__ import annotations

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.llm.batch.api import Batch, BatchApi
from crawl4ai_llm_docs.llm.batch.files import WorkDir, output_line_decoder
from crawl4ai_llm_docs.llm.batch.pending import Waiting
from crawl4ai_llm_docs.llm.batch.store import BatchRecord, BatchStore
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.llm.provider.classify import Action, Decision, classify
from crawl4ai_llm_docs.llm.provider.client import Completion, decode_completion

log = structlog.get_logger()


class Answers:
    """What becomes of each line of a batch's output and error files."""

    def __init__(
        self, *, processor: ChunkProcessor, waiting: Waiting, work: WorkDir, store: BatchStore
    ) -> None:
        self._processor = processor
        self.waiting = waiting
        self._work = work
        self._store = store
        self.reasons: dict[str, str] = {}  # key -> why its last send failed
        self.foreign = 0  # answers read for chunks this run does not have, not cached

    async def read(self, api: BatchApi, file_id: str, retry: list[str]) -> None:
        target = self._work.path / f"{file_id}.jsonl"
        await api.download(file_id, target)
        async with await trio.open_file(target, "rb") as handle:
            async for raw in handle:
                if raw.strip():
                    await self.line(raw, retry)
        await trio.Path(target).unlink()

    async def line(self, raw: bytes, retry: list[str]) -> None:
        try:
            line = output_line_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("warning", message=f"ignored an unreadable batch result line: {raw[:80]!r}")
            return
        key = line.custom_id
        if key not in self.waiting.keys:
            # Another run's chunk (one page in two URL lists): unless its answer is cached,
            # the batch must stay stored for that run to collect.
            if not await trio.to_thread.run_sync(self._processor.cache.has, key):
                self.foreign += 1
            return
        response = line.response
        outcome: Completion | Decision
        if response is not None and response.status_code == 200:
            body = bytes(response.body)
            outcome = decode_completion(body)
            if isinstance(outcome, Decision) and outcome.action is Action.SPLIT:
                # Cut off: read as a live answer is (a loop, or a half edit script, is
                # rejected and asked again, not split: a smaller chunk would not help).
                guard = await self._processor.answer_guard(await self.waiting.chunk(key))
                outcome = decode_completion(body, guard)
        elif response is not None and response.status_code:
            outcome = classify(response.status_code, bytes(response.body), {})
        else:
            error = line.error
            reason = f"{error.code}: {error.message}" if error else "no response"
            outcome = Decision(Action.RETRY, reason)
        if isinstance(outcome, Completion):
            await self.waiting.answered(key, outcome)
        elif outcome.action is Action.SPLIT:
            tokens = (outcome.prompt_tokens, outcome.completion_tokens)
            await self.waiting.cut_off(key, outcome.reason, tokens)
        elif outcome.action is Action.RETRY:
            self.reasons[key] = outcome.reason
            retry.append(key)
        else:
            await self.waiting.give_up(key, f"the provider rejected the request: {outcome.reason}")

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
            pending = self.waiting.keys.get(key or "")
            if pending is not None:
                ref = pending.first.ref
                where += f" ({ref.url}, part {ref.chunk_index + 1})"
            described.append(f"{where}: {problem.message}")
            if key is not None and pending is not None:
                await self.waiting.give_up(
                    key, f"rejected by the provider: {problem.message}", quiet=True
                )
        more = f" (and {len(described) - 1} more line(s))" if len(described) > 1 else ""
        log.error(
            "error",
            message=f"The provider rejected batch {batch.id}: {described[0]}{more}. "
            "Those chunks keep their crawled text; any other lines are sent again.",
        )
