"""The run's lifecycle around the wiring: start, signals, progress, finish, exit code.

    Run.execute(work)
      run_started ─► cache directory, spool, collector ─► signal watcher ─► progress, live view
        ─► work(collector), the stages, under the work scope
        ─► outputs from the spool ─► run report ─► summary ─► exit code (``Ending``)

Signals (SIGINT, SIGTERM): the first one while the stages run cancels the work scope, and
what is finished is written, marked incomplete (exit 130, or 143 for SIGTERM). The first one
after the work only says so: the outputs being written will be complete. A second signal,
at any time, exits at once. The watcher stays until the outputs and the report are written,
so a signal there never falls back to trio's default (a traceback, a half-written report).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import structlog
import trio
from rich.console import Console

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.cache.directory import prepare_cache_directory
from crawl4ai_llm_docs.cache.page_state import PageStateStore
from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.collect.stage import Collector
from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.config_show import redact_settings
from crawl4ai_llm_docs.lifecycle.ending import Ending, signal_exit_code
from crawl4ai_llm_docs.lifecycle.estimate import Estimate
from crawl4ai_llm_docs.lifecycle.finish import finish, write_outputs
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.lifecycle.paths import index_request, output_paths
from crawl4ai_llm_docs.models import Chunk, Page, UrlEntry
from crawl4ai_llm_docs.observe.live import run_live_view
from crawl4ai_llm_docs.observe.metrics import RunMetrics, report_metrics

log = structlog.get_logger()

# After a fatal provider answer, the longest wait for requests that were already sent.
FATAL_DRAIN_S = 30.0


def _redacted_config(config: AppConfig) -> dict[str, Any]:
    data: dict[str, Any] = redact_settings(msgspec.to_builtins(config))
    for key in ("system_prompt", "user_prompt"):
        data["llm"][key] = f"<{len(data['llm'][key])} characters>"
    return data


class Run:
    """One invocation: ``execute(work)`` runs the stages ``work`` wires and returns the exit code."""

    def __init__(
        self, options: RunOptions, config: AppConfig, entries: list[UrlEntry], console: Console
    ) -> None:
        self.options = options
        self.config = config
        self.entries = entries
        self.console = console
        self.paths = output_paths(options, config)
        self.metrics = RunMetrics()
        self.estimate = Estimate(config)
        self.work_scope = trio.CancelScope()  # a signal: stop the stages
        self.ending = Ending()
        # What the last run learnt per URL (refresh); None with --no-cache.
        self.page_states = PageStateStore(
            config.cache_directory() if config.output.cache else None,
            conditional=config.crawl.refresh == "changed",
        )
        self._signals = 0  # received so far: the second one exits at once
        self._collector: Collector | None = None

    @property
    def interrupted(self) -> bool:
        return self.ending.how == "interrupted"

    # ------------------------------------------------------------ what the stages report

    def stop(self, reason: str) -> None:
        """A fatal provider answer: no new requests, and answers already on their way get a
        bounded time to arrive, be cached and be written (they were accepted and paid for)."""
        if self.ending.how != "working":
            return
        self.ending = self.ending.stopping(reason)
        drain = min(self.config.parallel.request_timeout, FATAL_DRAIN_S)
        log.error(
            "error",
            message=f"Stopping: {reason} (waiting up to {drain:g} s for answers "
            "already on their way; Ctrl-C to stop now)",
        )
        self.work_scope.deadline = min(self.work_scope.deadline, trio.current_time() + drain)

    async def page_failed(self, page: Page) -> None:
        assert self._collector is not None
        await self._collector.add_failed(page)
        self._project_chunks()

    def page_chunked(self, page: Page, chunks: list[Chunk]) -> None:
        assert self._collector is not None
        self.estimate.add_page(chunks)
        self._project_chunks()
        if not self.options.dry_run:  # --dry-run: counted only, nothing is sent
            # The collector keeps only the page's metadata while its chunks are in flight.
            self._collector.expect(msgspec.structs.replace(page, markdown=""))

    def _project_chunks(self) -> None:
        # Failed pages bring no chunks: once every page is seen the total is exact, so the
        # progress bar ends full and the ETA at zero.
        assert self._collector is not None
        pages = len(self.entries) - len(self._collector.failures)
        self.metrics.set_totals(chunks=self.estimate.projected_chunks(pages))

    def end_work(self) -> None:
        self.ending = self.ending.work_over()

    # ------------------------------------------------------------ the run

    async def execute(self, work: Callable[[Collector], Awaitable[None]]) -> int:
        self.metrics.set_totals(pages=len(self.entries))
        log.info(
            "run_started",
            version=__version__,
            urls=len(self.entries),
            config=_redacted_config(self.config),
        )
        cache_dir = self.config.cache_directory()
        await trio.to_thread.run_sync(prepare_cache_directory, cache_dir)
        async with DocumentSpool(cache_dir / "spool") as spool, trio.open_nursery() as outer:
            collector = self._collector = Collector(spool, self.metrics)
            if threading.current_thread() is threading.main_thread():  # signals need it
                await outer.start(self._watch_signals)
            async with self._progress():
                with self.work_scope:
                    await work(collector)
                self.end_work()  # before the live view stops: a signal now is a late one
            self.metrics.finish()
            failures = self._failures(collector)
            outputs: list[str] = []
            if not self.options.dry_run:
                outputs, self.ending = await write_outputs(
                    self.options,
                    self.config,
                    self.paths,
                    spool,
                    failures,
                    self.ending,
                    pages=len(self.entries),
                    index=index_request(
                        self.options,
                        self.config,
                        urls=[entry.url for entry in self.entries],
                        complete=not self.ending.incomplete,
                    ),
                )
                await self._note_removed_pages()
            # A run shorter than the progress interval was never sampled.
            await self.metrics.refresh_memory()
            # Still under the signal watcher: a second Ctrl-C here exits at once, cleanly.
            exit_code = await finish(
                self.ending,
                self.paths,
                metrics=self.metrics,
                outputs=outputs,
                failures=failures,
                warnings=collector.warnings,
                console=self.console,
                estimate=self.estimate.render(len(self.entries)) if self.options.dry_run else None,
            )
            outer.cancel_scope.cancel()
        return exit_code

    async def _note_removed_pages(self) -> None:
        """Count the pages the last run of this output had and this one has not, then
        remember this run's list for the next."""
        urls = [entry.url for entry in self.entries]
        removed = await self.page_states.removed_since_last_run(self.paths.markdown, urls)
        self.metrics.set_removed(len(removed))
        await self.page_states.record_output(self.paths.markdown, urls)

    @asynccontextmanager
    async def _progress(self) -> AsyncIterator[None]:
        """Metrics events every interval and, unless turned off, the live view."""
        interval = self.config.parallel.progress_update_interval
        async with trio.open_nursery() as progress:
            await progress.start(functools.partial(report_metrics, self.metrics, interval=interval))
            if self.config.logging.progress:
                await progress.start(
                    functools.partial(
                        run_live_view, self.metrics, console=self.console, interval=interval
                    )
                )
            yield
            progress.cancel_scope.cancel()

    def _failures(self, collector: Collector) -> list[tuple[str, str]]:
        """Failed pages, LLM failures and pages never finished, in input order."""
        # Pages the LLM never answered are written (crawled text) and listed as failed.
        failures = [*collector.failures, *collector.llm_failed, *self._unfinished(collector)]
        position = {entry.url: entry.index for entry in self.entries}
        failures.sort(key=lambda failure: position.get(failure[0], len(position)))
        return failures

    def _unfinished(self, collector: Collector) -> list[tuple[str, str]]:
        """Every URL without a document: not reached, or cut off mid-way by the stop.

        Judged by what reached the spool, not by which stage last saw the page, so a page
        cancelled between two stages (or lost to a bug) is still reported, never dropped.
        """
        if self.options.dry_run:
            return []  # nothing is sent, so no page is expected to finish
        why = self.ending.unfinished_reason
        return [(entry.url, why) for entry in self.entries if entry.index not in collector.stored]

    # ------------------------------------------------------------ signals

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        """First signal: stop the work, write what is finished. Second: exit at once."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self._signals += 1
                if self._signals > 1:
                    # os._exit skips the live view's clean-up: give the terminal its cursor back.
                    self.console.show_cursor(True)
                    self.console.print("Interrupted again: exiting at once.")
                    os._exit(signal_exit_code(signum))
                if signum == signal.SIGTERM:
                    how, again = "Terminated (SIGTERM)", "send it again"
                else:
                    how, again = "Interrupted", "Ctrl-C again"
                if not self.ending.working:
                    # The work is finished; the output being written will be complete.
                    log.warning(
                        "warning",
                        message=f"{how} while writing the output: finishing it "
                        f"({again} to quit at once).",
                    )
                    continue
                self.ending = Ending.interrupted(signum)
                log.warning(
                    "warning",
                    message=f"{how}: stopping and writing the finished documents "
                    f"({again} to quit at once).",
                )
                self.work_scope.cancel()
