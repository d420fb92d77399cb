"""The LLM stage in batch mode: chunks go through the provider's Batch API instead of live.

Same shape as ``llm.stage.run``. Each arriving chunk is looked up in the result cache (a hit
goes downstream at once); a miss becomes one JSONL line (``custom_id`` = the cache key) in an
input file on disk, split at 50,000 lines or 200 MB. When the input ends, the files are
uploaded and run as batches; their ids are stored in the cache directory (``batch_store``)
the moment they exist. Polling backs off from ``llm.batch_poll_initial_s`` to
``batch_poll_max_s``, logging ``batch_progress``. A finished batch's output and error files
are downloaded and joined on ``custom_id``; every answer goes through the live stage's own
post-processing (``ChunkProcessor.finish``: parse, faithfulness check, cache).

Failed lines and the unfinished lines of an expired batch are sent again: in a next batch
(at most ``BATCH_ROUNDS`` sends a line), or live with ``llm.batch_fallback = "live"``. A line
whose chunk is too large is split and its halves sent live (a batch cannot be split). A line
of a cancelled batch, or one the provider rejected, keeps the crawled text. A run started
again finds its chunks' keys in the stored batches and polls those instead of sending again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import structlog
import trio

from crawl4ai_llm_docs.errors import ProviderFatalError
from crawl4ai_llm_docs.llm import batch_api
from crawl4ai_llm_docs.llm.batch_api import Batch, BatchApi, BatchApiError
from crawl4ai_llm_docs.llm.batch_files import (
    MAX_BYTES,
    MAX_LINES,
    ChunkRef,
    InputFile,
    WorkDir,
    output_line_decoder,
    request_line,
)
from crawl4ai_llm_docs.llm.batch_store import BatchRecord, BatchStore, new_local_id
from crawl4ai_llm_docs.llm.classify import Action, Decision, classify
from crawl4ai_llm_docs.llm.client import Completion, decode_completion
from crawl4ai_llm_docs.llm.prompts import build_messages
from crawl4ai_llm_docs.llm.stage import ChunkProcessor, fallback_result
from crawl4ai_llm_docs.models import Chunk, ChunkResult

log = structlog.get_logger()

# How many times one line is sent in a batch before its chunk keeps the crawled text.
BATCH_ROUNDS = 3


def collect_hint(batch_ids: list[str]) -> str:
    shown = ", ".join(batch_ids)
    return (
        f"The batch(es) {shown} keep running at the provider; what they finish is paid for "
        "once and kept. Run the same command again to collect the results "
        "(`crawl4ai-llm-docs batch status` lists them, `crawl4ai-llm-docs batch cancel` stops them)."
    )


class BatchJob:
    """The batches of one run: writing, submitting, polling and harvesting them."""

    def __init__(
        self,
        *,
        processor: ChunkProcessor,
        send: trio.MemorySendChannel[ChunkResult],
        api: BatchApi,
        store: BatchStore,
        work: WorkDir,
        workers: int,
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._processor = processor
        self._llm = processor.llm
        self._send = send
        self._api = api
        self._store = store
        self._work = work
        self._workers = workers
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self.waiting: dict[str, list[ChunkRef]] = {}  # cache key -> chunks awaiting its answer
        self._covered: dict[str, BatchRecord] = {}  # key -> stored batch already sending it
        self.active: dict[str, BatchRecord] = {}  # local id -> batch this run waits for
        self._last_seen: dict[str, tuple[str, int, int]] = {}  # batch id -> last progress
        self._resumed: set[str] = set()  # local ids of batches an earlier run created
        self._attempts: dict[str, int] = {}
        self._reasons: dict[str, str] = {}
        self._input: InputFile | None = None
        self._round = 1

    # ------------------------------------------------------------ intake

    async def resume(self) -> None:
        """Load the stored batches of this provider and model: their keys are not sent again."""

        def load() -> None:
            for record in self._store.load_all():
                if record.base_url == self._api.base_url and record.model == self._llm.model:
                    for key in self._store.iter_keys(record.local_id):
                        self._covered[key] = record

        await trio.to_thread.run_sync(load)
        await trio.to_thread.run_sync(self._store.sweep_temp)

    async def add(self, chunk: Chunk, key: str) -> None:
        ref = await trio.to_thread.run_sync(self._work.add_chunk, chunk)
        if key in self.waiting:  # the same text twice: one line, one answer
            self.waiting[key].append(ref)
            return
        self.waiting[key] = [ref]
        record = self._covered.get(key)
        if record is not None:
            if record.local_id not in self.active:
                log.info("batch_resumed", batch_id=record.batch_id, lines=record.lines)
            self.active[record.local_id] = record
            self._resumed.add(record.local_id)
            return
        await self._write(chunk, key)

    async def _write(self, chunk: Chunk, key: str) -> None:
        body = self._processor.client.payload(build_messages(chunk, self._llm))
        line = request_line(key, body, batch_api.ENDPOINT)
        if self._input is not None and not self._input.fits(line):
            await self.submit()
        if self._input is None:
            self._input = await trio.to_thread.run_sync(
                functools.partial(
                    InputFile,
                    self._work,
                    self._store,
                    new_local_id(),
                    max_lines=self._max_lines,
                    max_bytes=self._max_bytes,
                )
            )
        await trio.to_thread.run_sync(self._input.add, key, line)

    async def submit(self) -> None:
        """Upload the input file being written and create its batch; store both ids at once."""
        current, self._input = self._input, None
        if current is None:
            return
        await trio.to_thread.run_sync(current.commit)
        uploaded = await self._api.upload(current.path)
        record = BatchRecord(
            local_id=current.local_id,
            base_url=self._api.base_url,
            model=self._llm.model,
            input_file_id=uploaded.id,
            lines=current.lines,
            created_at=time.time(),
            round=self._round,
        )
        await trio.to_thread.run_sync(self._store.save, record)
        self.active[record.local_id] = record
        await trio.to_thread.run_sync(current.path.unlink)
        await self._create(record)

    async def _create(self, record: BatchRecord) -> BatchRecord:
        """``POST /v1/batches`` for an uploaded file, unless an earlier attempt already did."""
        batch: Batch | None = None
        for attempt in range(1, self._llm.max_retries + 2):
            batch = await self._api.find_by_input(record.input_file_id)
            if batch is not None:
                break
            try:
                batch = await self._api.create(
                    record.input_file_id, {"crawl4ai_llm_docs": record.local_id}
                )
                break
            except BatchApiError as exc:
                # The answer may be lost while the batch exists: look it up before sending again.
                if not exc.transient or attempt > self._llm.max_retries:
                    raise
                await trio.sleep(min(2.0**attempt, 60.0))
        assert batch is not None
        with trio.CancelScope(shield=True):  # the id must be stored once the batch exists
            record = msgspec.structs.replace(record, batch_id=batch.id)
            await trio.to_thread.run_sync(self._store.save, record)
        self.active[record.local_id] = record
        log.info("batch_created", batch_id=batch.id, lines=record.lines, round=record.round)
        return record

    # ------------------------------------------------------------ polling

    async def collect(self, *, initial: float, maximum: float) -> None:
        """Poll every active batch until none is left; harvest each as it ends."""
        interval = initial
        while self.active:
            retry: list[str] = []
            split: list[str] = []
            for record in list(self.active.values()):
                if record.batch_id is None:
                    record = await self._create(record)
                assert record.batch_id is not None
                batch = await self._api.retrieve(record.batch_id)
                counts = batch.counts
                seen = (batch.status, counts.completed, counts.failed)
                if self._last_seen.get(batch.id) == seen:
                    continue  # no news: say nothing, ask again later
                self._last_seen[batch.id] = seen
                log.info(
                    "batch_progress",
                    batch_id=batch.id,
                    status=batch.status,
                    completed=counts.completed,
                    failed=counts.failed,
                    total=counts.total or record.lines,
                    elapsed_s=round(time.time() - record.created_at, 1),
                )
                if batch.status in batch_api.TERMINAL:
                    await self._harvest(record, batch, retry, split)
            if split:
                await self._live(split, split=True)
            if retry:
                await self._resend(retry)
            if self.active:
                await trio.sleep(interval)
                interval = min(interval * 2, maximum)

    async def _harvest(
        self, record: BatchRecord, batch: Batch, retry: list[str], split: list[str]
    ) -> None:
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                await self._read(file_id, retry, split)
        if batch.status == "failed":
            await self._rejected(record, batch)
        local_id = record.local_id
        leftover = await trio.to_thread.run_sync(
            lambda: [k for k in self._store.iter_keys(local_id) if k in self.waiting]
        )
        handled = set(retry) | set(split)
        for key in leftover:
            if key in handled:
                continue
            if batch.status == "cancelled" and local_id not in self._resumed:
                # Cancelled while this run waited (`batch cancel`): stop spending on it now.
                await self._give_up(key, f"batch {batch.id} was cancelled; run again to send it")
            else:
                self._reasons[key] = f"unfinished when batch {batch.id} ended {batch.status}"
                retry.append(key)
        # Every answer is cached (or downstream): the record has done its job.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._store.remove, local_id)
        self.active.pop(local_id, None)
        log.info(
            "batch_finished",
            batch_id=batch.id,
            status=batch.status,
            completed=batch.counts.completed,
            failed=batch.counts.failed,
        )

    async def _read(self, file_id: str, retry: list[str], split: list[str]) -> None:
        target = self._work.path / f"{file_id}.jsonl"
        await self._api.download(file_id, target)
        async with await trio.open_file(target, "rb") as handle:
            async for raw in handle:
                if raw.strip():
                    await self._line(raw, retry, split)
        await trio.Path(target).unlink()

    async def _line(self, raw: bytes, retry: list[str], split: list[str]) -> None:
        try:
            line = output_line_decoder.decode(raw)
        except Exception:
            log.warning("warning", message=f"ignored an unreadable batch result line: {raw[:80]!r}")
            return
        key = line.custom_id
        if key not in self.waiting:
            return  # another run's chunk, or already answered
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
            chunk = await self._chunk(key)
            result = await self._processor.finish(chunk, key, outcome)
            await self._emit(key, result)
        elif outcome.action is Action.SPLIT:
            split.append(key)
        elif outcome.action is Action.RETRY:
            self._reasons[key] = outcome.reason
            retry.append(key)
        else:
            await self._give_up(key, f"the provider rejected the request: {outcome.reason}")

    async def _rejected(self, record: BatchRecord, batch: Batch) -> None:
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
                await self._give_up(key, f"rejected by the provider: {problem.message}", quiet=True)
        more = f" (and {len(described) - 1} more line(s))" if len(described) > 1 else ""
        log.error(
            "error",
            message=f"The provider rejected batch {batch.id}: {described[0]}{more}. "
            "Those chunks keep their crawled text; the other lines are sent again.",
        )

    # ------------------------------------------------------------ sending again

    async def _resend(self, keys: list[str]) -> None:
        if self._llm.batch_fallback == "live":
            await self._live(keys, split=False)
            return
        self._round += 1
        for key in keys:
            attempts = self._attempts.get(key, 1) + 1
            if attempts > BATCH_ROUNDS:
                reason = self._reasons.get(key, "failed")
                await self._give_up(key, f"batch line failed {BATCH_ROUNDS} times ({reason})")
                continue
            self._attempts[key] = attempts
            await self._write(await self._chunk(key), key)
        await self.submit()

    async def _live(self, keys: list[str], *, split: bool) -> None:
        """Send these chunks as ordinary requests (``batch_fallback = "live"``, or a split)."""
        limiter = trio.CapacityLimiter(self._workers)

        async def one(key: str) -> None:
            async with limiter:
                chunk = await self._chunk(key)
                if split:
                    result = await self._processor.split(chunk, "too large for one request")
                else:
                    result = await self._processor.process(chunk)
                await self._emit(key, result)

        async with trio.open_nursery() as nursery:
            for key in keys:
                nursery.start_soon(one, key)

    # ------------------------------------------------------------ results

    async def _chunk(self, key: str) -> Chunk:
        return await trio.to_thread.run_sync(self._work.chunk, self.waiting[key][0])

    async def _give_up(self, key: str, warning: str, *, quiet: bool = False) -> None:
        chunk = await self._chunk(key)
        if not quiet:
            log.warning(
                "warning",
                message=f"{chunk.url} part {chunk.chunk_index + 1}: {warning}; "
                "kept the crawled Markdown",
            )
        await self._emit(key, fallback_result(chunk, warning))

    async def _emit(self, key: str, result: ChunkResult) -> None:
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


async def run(
    receive: trio.MemoryReceiveChannel[Chunk],
    send: trio.MemorySendChannel[ChunkResult],
    *,
    processor: ChunkProcessor,
    workers: int,
    on_fatal: Callable[[ProviderFatalError], None],
    cache_dir: Path,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
) -> None:
    """Batch-mode LLM stage: cached chunks at once, the rest when their batch is done."""
    llm = processor.llm
    api = BatchApi(
        processor.client.http(),
        base_url=llm.base_url,
        timeout=processor.client.request_timeout,
        secret=processor.client.secret,
        retries=llm.max_retries,
    )
    async with receive, send:
        try:
            await api.probe()  # before any work: a provider without a Batch API says so now
        except ProviderFatalError as exc:
            on_fatal(exc)
            return
        work = await trio.to_thread.run_sync(WorkDir, cache_dir)
        job = BatchJob(
            processor=processor,
            send=send,
            api=api,
            store=BatchStore(cache_dir),
            work=work,
            workers=workers,
            max_lines=max_lines,
            max_bytes=max_bytes,
        )
        try:
            await job.resume()
            async for chunk in receive:
                key, cached = await processor.lookup(chunk)
                if cached is not None:
                    await send.send(cached)
                else:
                    await job.add(chunk, key)
            await job.submit()
            await job.collect(initial=llm.batch_poll_initial_s, maximum=llm.batch_poll_max_s)
        except ProviderFatalError as exc:
            on_fatal(exc)
        except BatchApiError as exc:
            log.error("error", message=f"Batch mode stopped: {exc}")
            on_fatal(ProviderFatalError(f"batch mode stopped: {exc}"))
        except trio.Cancelled:
            running = [r.batch_id for r in job.active.values() if r.batch_id is not None]
            if running:
                log.warning("warning", message=collect_hint(running))
            raise
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(work.close)
