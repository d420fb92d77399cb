"""One run: a nursery wires crawl -> chunk -> LLM -> collect with bounded channels.

    URLs ─ch─► crawl.stage ─ch─► chunker ─ch─► llm.stage (workers) ─ch─► collector ─► spool
                                    └── failed pages ─────────────────────────┘
    after the work scope: spool ─► consolidated .md, llms.txt, llms-full.txt, report.json

LLM work starts with the first crawled page. ``--sequential`` is the same pipeline with every
limit at 1. Ctrl-C, a fatal provider answer or an open circuit breaker cancel the *work*
scope only; what is finished is still written (marked incomplete) and the cache keeps every
answer, so the next run resumes.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog
import trio
from rich.console import Console

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.cache import DocumentSpool, ResultCache, prepare_cache_directory
from crawl4ai_llm_docs.collect import Collector
from crawl4ai_llm_docs.config import AppConfig, LLMConfig, LoadedConfig
from crawl4ai_llm_docs.crawl import stage as crawl_stage
from crawl4ai_llm_docs.errors import (
    EXIT_FATAL_PROVIDER,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PAGES_FAILED,
    InputError,
    ProviderFatalError,
)
from crawl4ai_llm_docs.estimate import Estimate
from crawl4ai_llm_docs.llm import stage as llm_stage
from crawl4ai_llm_docs.llm.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.chunking import preload_encoder, split_page
from crawl4ai_llm_docs.llm.client import ChatClient
from crawl4ai_llm_docs.llm.concurrency import QueueAwareLimit
from crawl4ai_llm_docs.llm.concurrency import attach as attach_queue_limit
from crawl4ai_llm_docs.llm.concurrency import log_change as _on_queue_limit
from crawl4ai_llm_docs.llm.ratelimit import AdaptiveRateLimiter, WaitEvent
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Page, UrlEntry
from crawl4ai_llm_docs.observe.live import run_live_view
from crawl4ai_llm_docs.observe.logging import configure_logging
from crawl4ai_llm_docs.observe.metrics import RunMetrics, log_metrics, report_metrics
from crawl4ai_llm_docs.observe.summary import print_summary, run_finished_fields
from crawl4ai_llm_docs.output import write_consolidated, write_llms_txt, write_report
from crawl4ai_llm_docs.paths import check_output_locations, output_paths
from crawl4ai_llm_docs.run_options import RunOptions
from crawl4ai_llm_docs.urls import read_url_file

log = structlog.get_logger()

# Small on purpose: memory stays flat in the number of URLs, and backpressure reaches the crawler.
CHANNEL_SIZE = 8
# Pages larger than this are chunked in a worker thread so the trio loop stays responsive.
THREAD_CHUNKING_CHARS = 50_000
OPENAI_HOSTS = ("api.openai.com",)
# Share of llm.max_tokens a chunk may fill: room for the description line, the answer's own
# formatting, and a provider whose tokenizer counts ~20% more than ours (tiktoken).
ANSWER_HEADROOM = 0.75
# After a fatal provider answer, the longest wait for requests that were already sent.
FATAL_DRAIN_S = 30.0


def chunk_size(llm: LLMConfig) -> int:
    """Tokens per chunk: ``chunk_max_tokens``, but small enough for the answer to fit.

    A cleaned chunk is about as long as the chunk itself (plus the description line), so a
    chunk near ``max_tokens`` or above it would be cut off (finish_reason=length) and sent
    again as halves: paid for twice. With the defaults (6000 vs 4096) every large page was.
    """
    fits = int(llm.max_tokens * ANSWER_HEADROOM)
    return max(llm.chunk_min_tokens, min(llm.chunk_max_tokens, fits))


def _redacted_config(config: AppConfig) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(config)
    for key in ("system_prompt", "user_prompt"):
        data["llm"][key] = f"<{len(data['llm'][key])} characters>"
    return data


class Run:
    """State of one invocation; ``execute`` returns the exit code."""

    def __init__(
        self, options: RunOptions, config: AppConfig, entries: list[UrlEntry], console: Console
    ) -> None:
        self.options = options
        self.config = config
        self.entries = entries
        self.console = console
        self.metrics = RunMetrics()
        self.work_scope = trio.CancelScope()  # Ctrl-C: stop everything
        self.feed_scope = trio.CancelScope()  # fatal provider answer: stop sending new work
        self.interrupted = False  # Ctrl-C stopped the work
        self.work_done = False  # the stages ended (finished, interrupted or stopped)
        self.late_interrupt = False  # a Ctrl-C came after the work, while writing
        self.fatal: str | None = None
        self.estimate = Estimate(config)
        sequential = not config.parallel.enable_parallel_processing
        self.crawl_config = (
            msgspec.structs.replace(config.crawl, max_concurrent=1) if sequential else config.crawl
        )
        par = config.parallel
        # A pooled client cannot have more requests in flight than connections: a larger limit
        # would only make requests wait for a connection inside their own request_timeout.
        pool = par.max_connections_per_host if par.enable_session_pooling else 100
        self.llm_limit = min(par.effective_max_concurrent_requests, pool)
        self.cache = ResultCache.disabled()

    # ------------------------------------------------------------ stages

    async def _feed(self, send: trio.MemorySendChannel[UrlEntry]) -> None:
        async with send:
            for entry in self.entries:
                await send.send(entry)

    async def _write_raw(
        self, pages: trio.MemoryReceiveChannel[Page], collector: Collector
    ) -> None:
        async with pages:
            async for page in pages:
                await collector.add_raw(page)

    async def _chunk(
        self,
        pages: trio.MemoryReceiveChannel[Page],
        chunks: trio.MemorySendChannel[Chunk] | None,
        collector: Collector,
    ) -> None:
        """Split pages into chunks; failed pages go straight to the collector."""
        max_tokens = chunk_size(self.config.llm)
        try:
            # Off the trio thread, while the first pages are still being crawled.
            await trio.to_thread.run_sync(preload_encoder)
            await self._chunk_pages(pages, chunks, collector, max_tokens)
        finally:
            if chunks is not None:
                chunks.close()

    async def _chunk_pages(
        self,
        pages: trio.MemoryReceiveChannel[Page],
        chunks: trio.MemorySendChannel[Chunk] | None,
        collector: Collector,
        max_tokens: int,
    ) -> None:
        async with pages:
            async for page in pages:
                if not page.ok:
                    await collector.add_failed(page)
                    self._project_chunks(collector)
                    continue
                if len(page.markdown) > THREAD_CHUNKING_CHARS:
                    parts = await trio.to_thread.run_sync(
                        functools.partial(split_page, page, max_tokens=max_tokens)
                    )
                else:
                    parts = split_page(page, max_tokens=max_tokens)
                self.estimate.add_page(parts)
                self._project_chunks(collector)
                if chunks is None:  # --dry-run: count only
                    continue
                # The collector keeps only the page's metadata while its chunks are in flight.
                collector.expect(msgspec.structs.replace(page, markdown=""))
                for part in parts:
                    await chunks.send(part)

    def _project_chunks(self, collector: Collector) -> None:
        # Failed pages bring no chunks: once every page is seen the total is exact, so the
        # progress bar ends full and the ETA at zero.
        pages = len(self.entries) - len(collector.failures)
        self.metrics.set_totals(chunks=self.estimate.projected_chunks(pages))

    async def _collect(
        self, results: trio.MemoryReceiveChannel[ChunkResult], collector: Collector
    ) -> None:
        async with results:
            async for result in results:
                await collector.add_result(result)

    def _on_fatal(self, exc: ProviderFatalError) -> None:
        """Stop feeding the LLM at once, but let answers already on their way arrive.

        The breaker is open for good, so no new request is sent; requests in flight were
        accepted (and are paid for), so they get a bounded time to come back, be cached and
        be written, instead of being thrown away.
        """
        if self.fatal is not None:
            return
        self.fatal = exc.message
        drain = min(self.config.parallel.request_timeout, FATAL_DRAIN_S)
        log.error(
            "error",
            message=f"Stopping: {exc.message} (waiting up to {drain:g} s for answers "
            "already on their way; Ctrl-C to stop now)",
        )
        self.feed_scope.cancel()
        self.work_scope.deadline = min(self.work_scope.deadline, trio.current_time() + drain)

    def _on_wait(self, event: WaitEvent) -> None:
        log.info(
            "rate_limit",
            reason=event.reason,
            wait_s=round(event.wait_s, 3),
            remaining=event.remaining,
            reset_s=event.reset_s,
            effective_concurrency=event.effective_concurrency,
        )

    @staticmethod
    def _on_breaker(old: str, new: str, reason: str) -> None:
        log.warning("circuit_breaker", old_state=old, new_state=new, reason=reason)

    def _llm_parts(self) -> tuple[ChatClient, llm_stage.ChunkProcessor]:
        config = self.config
        par = config.parallel
        limiter = AdaptiveRateLimiter(
            max_concurrent=self.llm_limit,
            adaptive=par.enable_adaptive_rate_limiting,
            buffer_percent=par.rate_limit_buffer_percent,
            requests_per_minute=par.requests_per_minute,
            tokens_per_minute=par.tokens_per_minute,
            on_wait=self._on_wait,
        )
        breaker = CircuitBreaker(
            enabled=par.enable_circuit_breaker,
            threshold_percent=par.error_threshold_percent,
            on_change=self._on_breaker,
        )
        queue_limit = QueueAwareLimit(
            max_limit=self.llm_limit,
            enabled=par.queue_aware_concurrency and par.enable_adaptive_rate_limiting,
            on_change=_on_queue_limit,
        )
        self.metrics.set_limiter_probe(attach_queue_limit(limiter, queue_limit))
        self.metrics.set_breaker_probe(lambda: breaker.state)
        client = ChatClient(
            llm=config.llm,
            parallel=par,
            api_key=config.api_key(),
            limiter=limiter,
            breaker=breaker,
            stream=config.llm.stream,
            queue_limit=queue_limit,
            on_tokens=self.metrics.stream_tokens,
        )
        cache = (
            ResultCache(config.cache_directory()) if config.output.cache else ResultCache.disabled()
        )
        self.cache = cache
        return client, llm_stage.ChunkProcessor(client=client, cache=cache, llm=config.llm)

    async def _stages(self, collector: Collector) -> None:
        cache_dir = self.config.cache_directory()
        url_send, url_recv = trio.open_memory_channel[UrlEntry](CHANNEL_SIZE)
        page_send, page_recv = trio.open_memory_channel[Page](CHANNEL_SIZE)
        crawl = functools.partial(
            crawl_stage.run, url_recv, page_send, config=self.crawl_config, cache_dir=cache_dir
        )
        if self.options.no_llm or self.options.dry_run:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._feed, url_send)
                nursery.start_soon(crawl)
                if self.options.no_llm:
                    nursery.start_soon(self._write_raw, page_recv, collector)
                else:
                    nursery.start_soon(self._chunk, page_recv, None, collector)
            return
        client, processor = self._llm_parts()
        await self.cache.sweep()  # temp files a killed run left mid-write
        chunk_send, chunk_recv = trio.open_memory_channel[Chunk](CHANNEL_SIZE)
        result_send, result_recv = trio.open_memory_channel[ChunkResult](CHANNEL_SIZE)
        llm = functools.partial(
            llm_stage.run,
            chunk_recv,
            result_send,
            processor=processor,
            workers=self.llm_limit,
            on_fatal=self._on_fatal,
        )
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(self._upstream, url_send, crawl, page_recv, chunk_send, collector)
            nursery.start_soon(llm)
            nursery.start_soon(self._collect, result_recv, collector)

    async def _upstream(
        self,
        url_send: trio.MemorySendChannel[UrlEntry],
        crawl: Callable[[], Awaitable[None]],
        page_recv: trio.MemoryReceiveChannel[Page],
        chunk_send: trio.MemorySendChannel[Chunk],
        collector: Collector,
    ) -> None:
        """Feed, crawl and chunk: the part a fatal provider answer stops at once."""
        with self.feed_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._feed, url_send)
                nursery.start_soon(crawl)
                nursery.start_soon(self._chunk, page_recv, chunk_send, collector)
        chunk_send.close()  # also when cancelled before _chunk started: the LLM stage ends

    # ------------------------------------------------------------ signals and progress

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        """First Ctrl-C: stop the work, write what is finished. Second: exit at once.

        Watches until the outputs are written: a Ctrl-C while writing must not fall back to
        trio's default (a KeyboardInterrupt traceback and a half-finished report).
        """
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for _ in signals:
                if self.interrupted or self.late_interrupt:
                    # os._exit skips the live view's clean-up: give the terminal its cursor back.
                    self.console.show_cursor(True)
                    self.console.print("Interrupted again: exiting at once.")
                    os._exit(EXIT_INTERRUPTED)
                if self.work_done:
                    # The work is finished; the output being written will be complete.
                    self.late_interrupt = True
                    log.warning(
                        "warning",
                        message="Interrupted while writing the output: finishing it (Ctrl-C again to quit at once).",
                    )
                    continue
                self.interrupted = True
                log.warning(
                    "warning",
                    message="Interrupted: stopping and writing the finished documents (Ctrl-C again to quit at once).",
                )
                self.work_scope.cancel()

    # ------------------------------------------------------------ the run

    async def execute(self) -> int:
        par = self.config.parallel
        self.metrics.set_totals(pages=len(self.entries))
        log.info(
            "run_started",
            version=__version__,
            urls=len(self.entries),
            config=_redacted_config(self.config),
        )
        if self.llm_limit < par.effective_max_concurrent_requests:
            log.warning(
                "warning",
                message=f"parallel.max_connections_per_host = {par.max_connections_per_host} caps "
                f"the {par.max_concurrent_requests} concurrent requests asked for at "
                f"{self.llm_limit}; raise it to use more.",
            )
        outputs: list[str] = []
        cache_dir = self.config.cache_directory()
        await trio.to_thread.run_sync(prepare_cache_directory, cache_dir)
        async with DocumentSpool(cache_dir / "spool") as spool, trio.open_nursery() as outer:
            collector = Collector(spool, self.metrics)
            if threading.current_thread() is threading.main_thread():  # signals need it
                await outer.start(self._watch_signals)
            async with trio.open_nursery() as progress:
                await progress.start(
                    functools.partial(
                        report_metrics, self.metrics, interval=par.progress_update_interval
                    )
                )
                if self.config.logging.progress:
                    await progress.start(
                        functools.partial(
                            run_live_view,
                            self.metrics,
                            console=self.console,
                            interval=par.progress_update_interval,
                        )
                    )
                with self.work_scope:
                    await self._stages(collector)
                self.work_done = True
                progress.cancel_scope.cancel()
            self.metrics.finish()
            # Pages the LLM never answered are written (crawled text) and listed as failed.
            failures = [*collector.failures, *collector.llm_failed, *self._unfinished(collector)]
            position = {entry.url: entry.index for entry in self.entries}
            failures.sort(
                key=lambda failure: position.get(failure[0], len(position))
            )  # input order
            if not self.options.dry_run:
                outputs = await self._write_outputs(spool, failures)
            # A run shorter than the progress interval was never sampled.
            await self.metrics.refresh_memory()
            # Still under the signal watcher: a second Ctrl-C here exits at once, cleanly.
            exit_code = await self._finish(collector, outputs, failures)
            outer.cancel_scope.cancel()
        return exit_code

    def _unfinished(self, collector: Collector) -> list[tuple[str, str]]:
        """Every URL without a document: not reached, or cut off mid-way by the stop.

        Judged by what reached the spool, not by which stage last saw the page, so a page
        cancelled between two stages (or lost to a bug) is still reported, never dropped.
        """
        if self.options.dry_run:
            return []  # nothing is sent, so no page is expected to finish
        if self.interrupted:
            why = "not finished (run interrupted)"
        elif self.fatal:
            why = f"not finished (run stopped: {self.fatal})"
        else:
            why = "no result was produced for this page (a bug: please report it)"
        return [(entry.url, why) for entry in self.entries if entry.index not in collector.stored]

    async def _write_outputs(
        self, spool: DocumentSpool, failures: list[tuple[str, str]]
    ) -> list[str]:
        config, options = self.config, self.options
        markdown_path, llms_dir, _ = output_paths(options, config)
        incomplete = bool(self.interrupted or self.fatal)
        note = ""
        if incomplete:
            why = "interrupted with Ctrl-C" if self.interrupted else f"stopped: {self.fatal}"
            note = (
                f"the run was {why}. Run the same command again to finish; finished work is cached."
            )
        title = (
            config.output.title
            or options.urls_file.stem.replace("_", " ").replace("-", " ").title()
        )
        summary = (
            f"Documentation from {len(self.entries)} pages, cleaned for use by language models."
        )
        now = datetime.now(UTC)

        def write_all() -> list[str]:
            write_consolidated(
                markdown_path,
                iter(spool),
                title=title,
                failed=failures,
                incomplete=incomplete,
                incomplete_reason=note,
                generated_at=now,
            )
            written = [str(markdown_path)]
            if llms_dir is not None:
                llms_dir.mkdir(parents=True, exist_ok=True)
                written += map(
                    str, write_llms_txt(llms_dir, iter(spool), title=title, summary=summary)
                )
            return written

        try:
            return await trio.to_thread.run_sync(write_all)
        except OSError as exc:  # e.g. disk full: one message, and the work is not lost
            raise InputError(
                f"Could not write the output ({exc.strerror or exc}: {exc.filename or markdown_path}). "
                "Every LLM answer is cached: fix the problem and run the same command again."
            ) from None

    def _exit_code(self, failures: list[tuple[str, str]]) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.fatal:
            return EXIT_FATAL_PROVIDER
        # ``failures`` holds pages kept as crawled because no answer came; a discarded
        # (unfaithful) answer is not one: the provider worked, the check protected the text.
        return EXIT_PAGES_FAILED if failures else EXIT_OK

    async def _finish(
        self, collector: Collector, outputs: list[str], failures: list[tuple[str, str]]
    ) -> int:
        exit_code = self._exit_code(failures)
        incomplete = bool(self.interrupted or self.fatal)
        _, _, report_path = output_paths(self.options, self.config)
        if report_path is not None and not self.options.dry_run:
            outputs = [*outputs, str(report_path)]
        snapshot = log_metrics(self.metrics)
        fields = run_finished_fields(
            snapshot, exit_code=exit_code, outputs=outputs, incomplete=incomplete, failures=failures
        )
        log.info("run_finished", **fields)
        if self.options.dry_run:
            # The estimate is the command's result: stdout, where a script can capture it.
            print(self.estimate.render(len(self.entries)), flush=True)
            return exit_code
        if report_path is not None:
            report = {"run_finished": fields, "failures": failures, "warnings": collector.warnings}
            try:
                await trio.to_thread.run_sync(write_report, report_path, report)
            except OSError as exc:
                # The documents are written; a lost report is worth a message, not a traceback.
                log.error("error", message=f"Could not write the run report {report_path}: {exc}")
                outputs = [path for path in outputs if path != str(report_path)]
        print_summary(
            self.console, snapshot, failures=failures, outputs=outputs, incomplete=incomplete
        )
        return exit_code


async def run_command(options: RunOptions, loaded: LoadedConfig) -> int:
    config = loaded.config
    parsed = read_url_file(options.urls_file)
    check_output_locations(options, config)
    api_key = config.api_key()
    uses_llm = not (options.no_llm or options.dry_run)
    if uses_llm and not api_key and config.llm.base_url.split("/")[2] in OPENAI_HOSTS:
        raise InputError(
            f"No API key: ${config.llm.api_key_env} is not set. Export your OpenAI API key "
            f"(export {config.llm.api_key_env}=sk-...), point --base-url at another "
            "OpenAI-compatible provider, or use --no-llm to write the crawled Markdown only."
        )
    console = Console(stderr=True, highlight=False)
    run = Run(options, config, parsed.entries, console)
    json_file = Path(config.logging.json_file) if config.logging.json_file else None
    with configure_logging(
        run_id=uuid.uuid4().hex[:12],
        json_file=json_file,
        level=config.logging.level,
        secrets=[api_key] if api_key else [],
        metrics=run.metrics,
        console=console,
    ):
        for problem in parsed.problems:
            log.warning(
                "warning",
                message=f"{options.urls_file}:{problem.line}: skipped {problem.text!r}: {problem.reason}",
            )
        if parsed.duplicates:
            log.info(
                "warning",
                message=f"{parsed.duplicates} duplicate URL(s) in {options.urls_file} skipped",
            )
        return await run.execute()
