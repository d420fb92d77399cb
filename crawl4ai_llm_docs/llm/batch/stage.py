"""The LLM stage in batch mode: chunks go through the provider's Batch API instead of live.

Same shape as ``llm.stage.run``. Each arriving chunk is looked up in the result cache (a hit
goes downstream at once); a miss becomes one JSONL line (``custom_id`` = the cache key) in an
input file on disk, split at 50,000 lines or 200 MB. When the input ends, the files are
uploaded and run as batches; their ids are stored in the cache directory (``batch_store``)
the moment they exist. Polling backs off from ``llm.batch_poll_initial_s`` to
``batch_poll_max_s``, logging ``batch_progress``. A finished batch's output and error files
are downloaded and joined on ``custom_id``; every answer goes through the live stage's own
steps (``ChunkProcessor``: parse, faithfulness check, cache), driven by ``pending.Waiting``.

No request is sent live unless ``llm.batch_fallback = "live"`` says so. What an answer leads
to joins the next batch round: the retry of a rejected answer (at temperature 0), the halves
of a chunk whose answer was cut off. Failed lines and the unfinished lines of an expired
batch are sent again: in a next round (at most ``BATCH_ROUNDS`` sends a line), or live with
``batch_fallback = "live"``. A line of a cancelled batch, or one the provider rejected, keeps
the crawled text. A run started again finds its chunks' keys in the stored batches and polls
those instead of sending again.
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
from crawl4ai_llm_docs.llm.batch import api as batch_api
from crawl4ai_llm_docs.llm.batch.api import Batch, BatchApi, BatchApiError, BatchNotFoundError
from crawl4ai_llm_docs.llm.batch.files import MAX_BYTES, MAX_LINES, InputFile, WorkDir, request_line
from crawl4ai_llm_docs.llm.batch.pending import Waiting
from crawl4ai_llm_docs.llm.batch.results import Answers
from crawl4ai_llm_docs.llm.batch.store import BatchRecord, BatchStore, new_local_id
from crawl4ai_llm_docs.llm.processor import Ask, ChunkProcessor
from crawl4ai_llm_docs.llm.provider.client import ChatClient
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
        self.waiting = Waiting(processor=processor, work=work, send=send, write=self._line)
        self.answers = Answers(processor=processor, waiting=self.waiting, work=work, store=store)
        self._covered: dict[str, BatchRecord] = {}  # key -> stored batch already sending it
        self.active: dict[str, BatchRecord] = {}  # local id -> batch this run waits for
        self._last_seen: dict[str, tuple[str, int, int]] = {}  # batch id -> last progress
        self._resumed: set[str] = set()  # local ids of batches an earlier run created
        self._attempts: dict[str, int] = {}
        self._input: InputFile | None = None
        self._round = 1  # of the lines being written: 1 for the chunks, more for what followed
        self._next_round = False  # the next input file starts a new round

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

    async def add(self, chunk: Chunk) -> None:
        """A chunk from upstream: from the cache at once, else a line (or a stored batch)."""
        await self.waiting.add(chunk)

    async def _line(self, chunk: Chunk, ask: Ask) -> None:
        """The request ``ask`` as a line of the batch being written, unless a stored batch of
        an earlier run is sending it already (then that batch is polled)."""
        record = self._covered.get(ask.key)
        if record is None:
            await self._write(chunk, ask)
            return
        if record.local_id not in self.active:
            log.info("batch_resumed", batch_id=record.batch_id, lines=record.lines)
        self.active[record.local_id] = record
        self._resumed.add(record.local_id)

    async def _write(self, chunk: Chunk, ask: Ask) -> None:
        body = self._processor.request_body(chunk, attempt=ask.attempt)
        line = request_line(ask.key, body, batch_api.ENDPOINT)
        if self._input is not None and not self._input.fits(line):
            await self.submit()
        if self._input is None:
            if self._next_round:
                self._round, self._next_round = self._round + 1, False
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
        await trio.to_thread.run_sync(self._input.add, ask.key, line)

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
        await self._create(record, fresh=True)

    async def _create(self, record: BatchRecord, *, fresh: bool = False) -> BatchRecord:
        """``POST /v1/batches`` for an uploaded file, unless an earlier attempt already did.

        ``fresh``: the file was uploaded just now by this run, so no batch can exist yet and
        the provider's batch list need not be searched before the first attempt.
        """
        batch: Batch | None = None
        for attempt in range(1, self._llm.max_retries + 2):
            if not (fresh and attempt == 1):
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
        """Poll every active batch until none is left; harvest each as it ends. What the
        answers of one poll lead to (retries, halves, lines to send again) is one next round."""
        interval = initial
        while self.active:
            retry: list[str] = []
            self._next_round = True
            for record in list(self.active.values()):
                if record.batch_id is None:
                    record = await self._create(record)
                assert record.batch_id is not None
                try:
                    batch = await self._api.retrieve(record.batch_id)
                except BatchNotFoundError:
                    log.warning(
                        "warning",
                        message=f"The provider does not know the stored batch {record.batch_id} "
                        "(deleted, or made with another account): sending its lines again.",
                    )
                    batch = Batch(id=record.batch_id, status="lost")
                except BatchApiError as exc:
                    if not exc.transient:
                        raise
                    # A network blip must not end a wait that may last hours: ask again later.
                    log.warning(
                        "warning",
                        message=f"Could not check batch {record.batch_id} ({exc}); "
                        f"trying again in {interval:g} s.",
                    )
                    continue
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
                if batch.status in batch_api.TERMINAL or batch.status == "lost":
                    await self._harvest(record, batch, retry)
            if retry:
                await self._resend(retry)
            await self.submit()  # the next round: retries, halves, lines sent again
            if self.active:
                await trio.sleep(interval)
                interval = min(interval * 2, maximum)

    async def _harvest(self, record: BatchRecord, batch: Batch, retry: list[str]) -> None:
        self.answers.foreign = 0
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                await self.answers.read(self._api, file_id, retry)
        if batch.status == "failed":
            await self.answers.rejected(record, batch)
        local_id = record.local_id
        leftover = await trio.to_thread.run_sync(
            lambda: [k for k in self._store.iter_keys(local_id) if k in self.waiting.keys]
        )
        handled = set(retry)
        for key in leftover:
            if key in handled:
                continue
            if batch.status == "cancelled" and local_id not in self._resumed:
                # Cancelled while this run waited (`batch cancel`): stop spending on it now.
                await self.waiting.give_up(
                    key, f"batch {batch.id} was cancelled; run again to send it"
                )
            else:
                self.answers.reasons[key] = f"unfinished when batch {batch.id} ended {batch.status}"
                retry.append(key)
                if batch.status == "failed":
                    # A rejection may hold for every line (a quota, a bad model): one more try.
                    self._attempts[key] = max(self._attempts.get(key, 1), BATCH_ROUNDS - 1)
        if self.answers.foreign:
            log.info(
                "warning",
                message=f"Batch {batch.id} also answered {self.answers.foreign} chunk(s) of "
                "another URL list; it stays stored until that command runs again.",
            )
        else:
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

    # ------------------------------------------------------------ sending again

    async def _resend(self, keys: list[str]) -> None:
        """Failed or unfinished lines: in the next round, or live (``batch_fallback``)."""
        if self._llm.batch_fallback == "live":
            await self._live(keys)
            return
        for key in dict.fromkeys(keys):  # a custom_id must be unique within a batch
            attempts = self._attempts.get(key, 1) + 1
            if attempts > BATCH_ROUNDS:
                reason = self.answers.reasons.get(key, "failed")
                await self.waiting.give_up(
                    key, f"batch line failed {BATCH_ROUNDS} times ({reason})"
                )
                continue
            self._attempts[key] = attempts
            pending = self.waiting.keys[key]
            await self._write(await self.waiting.chunk(key), Ask(pending.attempt, key))

    async def _live(self, keys: list[str]) -> None:
        """Send these chunks as ordinary requests (``batch_fallback = "live"`` only)."""
        limiter = trio.CapacityLimiter(self._workers)
        fatal: list[ProviderFatalError] = []

        async def one(key: str) -> None:
            async with limiter:
                if fatal:
                    return
                chunk = await self.waiting.chunk(key)
                try:
                    result = await self._processor.process(chunk)
                except ProviderFatalError as exc:
                    fatal.append(exc)  # raised once, below, not as an exception group
                    return
                await self.waiting.settle(key, result)

        async with trio.open_nursery() as nursery:
            for key in dict.fromkeys(keys):
                nursery.start_soon(one, key)
        if fatal:
            raise fatal[0]


def api_for(client: ChatClient) -> BatchApi:
    """The Batch API of ``client``'s provider, on the same pooled connections."""
    return BatchApi(
        client.http(),
        base_url=client.llm.base_url,
        timeout=client.request_timeout,
        secret=client.secret,
        retries=client.llm.max_retries,
    )


def _hint(job: BatchJob) -> None:
    running = [r.batch_id for r in job.active.values() if r.batch_id is not None]
    if running:
        log.warning("warning", message=collect_hint(running))


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
    api = api_for(processor.client)
    try:
        # Before any work: a provider without a Batch API says so now. That error leaves the
        # channels open, so the stages upstream are cancelled by it rather than finding their
        # channel closed (which would add a second, unrelated error to the run's).
        await api.probe()
    except ProviderFatalError as exc:
        on_fatal(exc)
        async with receive, send:
            return
    async with receive, send:
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
                await job.add(chunk)
            await job.submit()
            await job.collect(initial=llm.batch_poll_initial_s, maximum=llm.batch_poll_max_s)
        except ProviderFatalError as exc:
            _hint(job)
            on_fatal(exc)
        except BatchApiError as exc:
            log.error("error", message=f"Batch mode stopped: {exc}")
            _hint(job)
            on_fatal(ProviderFatalError(f"batch mode stopped: {exc}"))
        except trio.Cancelled:
            _hint(job)
            raise
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(work.close)
