"""One run: the stages, wired with bounded channels inside one nursery.

    source ─ch─► crawl ─ch─► chunk ─ch─► LLM (workers) ─ch─► collect ─► spool
      ▲            │           └── failed pages ─────────────────►┘
      └── links ◄──┘  (discovery only: the crawl stage's link sink, a call that answers)
    after the work (lifecycle/): spool ─► .md, llms.txt, llms-full.txt, report.json

Each stage is a module with ``run(receive, send, *, ...)`` (a source has only ``send``):
``sources/``, ``crawl/stage.py``, ``chunk/stage.py``, ``llm/stage.py`` (or ``llm/batch/``),
``collect/stage.py``. LLM work starts with
the first crawled page. ``--sequential`` is the same pipeline with every limit at 1. A signal,
a fatal provider answer or an open circuit breaker cancel the *work* only; what is finished is
still written (marked incomplete) and the cache keeps every answer, so the next run resumes.
The run around the stages (signals, progress, outputs, exit code) is ``lifecycle.Run``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import structlog
import trio
from rich.console import Console

from crawl4ai_llm_docs.cache.results import ResultCache
from crawl4ai_llm_docs.chunk import stage as chunk_stage
from crawl4ai_llm_docs.collect import stage as collect
from crawl4ai_llm_docs.collect.stage import Collector
from crawl4ai_llm_docs.config import LoadedConfig, ParallelConfig
from crawl4ai_llm_docs.crawl import stage as crawl_stage
from crawl4ai_llm_docs.discover.engine import Discovery
from crawl4ai_llm_docs.errors import InputError, ProviderFatalError
from crawl4ai_llm_docs.fetch.credentials import load_credentials
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.lifecycle.paths import check_output_locations
from crawl4ai_llm_docs.lifecycle.run import Run
from crawl4ai_llm_docs.llm import stage as llm_stage
from crawl4ai_llm_docs.llm.batch import stage as batch_stage
from crawl4ai_llm_docs.llm.connect import open_client
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.llm.provider.client import ChatClient
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Page, UrlEntry
from crawl4ai_llm_docs.observe.logging import configure_logging
from crawl4ai_llm_docs.sources import discovery as run_source
from crawl4ai_llm_docs.sources import url_file
from crawl4ai_llm_docs.sources.discovery import discovery_for_run
from crawl4ai_llm_docs.urls import ParsedUrls, read_url_file

log = structlog.get_logger()

# Small on purpose: memory stays flat in the number of URLs, and backpressure reaches the crawler.
CHANNEL_SIZE = 8
OPENAI_HOSTS = ("api.openai.com",)

LLMStage = Callable[
    [trio.MemoryReceiveChannel[Chunk], trio.MemorySendChannel[ChunkResult]], Awaitable[None]
]


def llm_concurrency(par: ParallelConfig) -> int:
    """Requests in flight at most: a pooled client cannot have more than its connections
    (a larger limit would only make requests wait for a connection inside their timeout)."""
    pool = par.max_connections_per_host if par.enable_session_pooling else 100
    return min(par.effective_max_concurrent_requests, pool)


class Stages:
    """The wiring: which stage runs, fed by which channel. ``Run.execute`` calls it once.

    Two seams are one line each: the source (``source = ...`` below; discovery also gets
    the crawled pages' links, through the crawl stage's ``discovery=``) and the LLM stage
    (``_llm_stage``).
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        config = run.config
        sequential = not config.parallel.enable_parallel_processing
        self.crawl_config = (
            msgspec.structs.replace(config.crawl, max_concurrent=1) if sequential else config.crawl
        )
        self.llm_limit = llm_concurrency(config.parallel)
        self.upstream = trio.CancelScope()  # a fatal provider answer: no more pages
        self.discovery: Discovery | None = None  # started from root URLs: the other source

    async def __call__(self, collector: Collector) -> None:
        run, config = self.run, self.run.config
        self._warn_if_capped()
        url_send, url_recv = trio.open_memory_channel[UrlEntry](CHANNEL_SIZE)
        page_send, page_recv = trio.open_memory_channel[Page](CHANNEL_SIZE)
        chunk_send, chunk_recv = trio.open_memory_channel[Chunk](CHANNEL_SIZE)
        result_send, result_recv = trio.open_memory_channel[ChunkResult](CHANNEL_SIZE)

        # Which source: the URL file's entries.
        source = functools.partial(url_file.run, url_send, entries=run.entries)
        if self.discovery is not None:  # root URLs: the pages discovery finds instead
            source = functools.partial(run_source.run, url_send, discovery=self.discovery)
        crawl = functools.partial(
            crawl_stage.run,
            url_recv,
            page_send,
            config=self.crawl_config,
            cache_dir=config.cache_directory(),
            page_states=run.page_states,
            discovery=self.discovery,
        )
        chunk = functools.partial(
            chunk_stage.run,
            page_recv,
            chunk_send,
            max_tokens=chunk_stage.chunk_size(config.llm),
            on_failed=run.page_failed,
            on_chunked=run.page_chunked,
        )
        if run.options.no_llm:  # the crawled Markdown is the document
            async with trio.open_nursery() as nursery:
                nursery.start_soon(source)
                nursery.start_soon(crawl)
                nursery.start_soon(
                    functools.partial(collect.run_raw, page_recv, collector=collector)
                )
            return
        if run.options.dry_run:  # chunks are counted (Run.page_chunked), none is sent
            async with trio.open_nursery() as nursery:
                nursery.start_soon(source)
                nursery.start_soon(crawl)
                nursery.start_soon(chunk)
                nursery.start_soon(_discard, chunk_recv)
            return
        async with open_client(config, self.llm_limit, run.metrics) as (client, cache):
            llm = self._llm_stage(client, cache)
            if config.llm.mode == "batch":  # no Batch API: say so before any page is crawled
                await batch_stage.api_for(client).probe()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._upstream, source, crawl, chunk)
                nursery.start_soon(llm, chunk_recv, result_send)
                nursery.start_soon(functools.partial(collect.run, result_recv, collector=collector))

    def _llm_stage(self, client: ChatClient, cache: ResultCache) -> LLMStage:
        """Which LLM stage: the live one, requests as fast as the provider allows."""
        config = self.run.config
        processor = ChunkProcessor(client=client, cache=cache, llm=config.llm)
        if config.llm.mode == "batch":  # or the Batch API: half the price, results within 24 h
            return functools.partial(
                batch_stage.run,
                processor=processor,
                workers=self.llm_limit,
                on_fatal=self._on_fatal,
                cache_dir=config.cache_directory(),
            )
        return functools.partial(
            llm_stage.run, processor=processor, workers=self.llm_limit, on_fatal=self._on_fatal
        )

    async def _upstream(self, *stages: Callable[[], Awaitable[None]]) -> None:
        """Source, crawl and chunk: the part a fatal provider answer stops at once.

        Cancelled, each stage still closes its channels, so the LLM stage sees the end of its
        input, finishes the chunks in hand and ends.
        """
        with self.upstream:
            async with trio.open_nursery() as nursery:
                for stage in stages:
                    nursery.start_soon(stage)

    def _on_fatal(self, exc: ProviderFatalError) -> None:
        """Stop feeding the LLM at once, but let answers already on their way arrive."""
        self.run.stop(exc.message)
        self.upstream.cancel()

    def _warn_if_capped(self) -> None:
        par = self.run.config.parallel
        if self.llm_limit < par.effective_max_concurrent_requests:
            log.warning(
                "warning",
                message=f"parallel.max_connections_per_host = {par.max_connections_per_host} caps "
                f"the {par.max_concurrent_requests} concurrent requests asked for at "
                f"{self.llm_limit}; raise it to use more.",
            )


async def _discard(receive: trio.MemoryReceiveChannel[Chunk]) -> None:
    """--dry-run's end of the line: the chunks were counted as they were made."""
    async with receive:
        async for _ in receive:
            pass


async def run_command(options: RunOptions, loaded: LoadedConfig) -> int:
    config = loaded.config
    if options.roots:
        parsed = ParsedUrls(entries=[], problems=[], duplicates=0)  # discovery lists them
    else:
        parsed = read_url_file(options.urls_file)
    check_output_locations(options, config)
    # Site credentials (crawl.auth): a missing variable or file stops here (exit 2), and
    # every value is redacted like the API key.
    credentials = load_credentials(config.crawl, source=loaded.origins.get("crawl.auth", ""))
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
        secrets=[api_key, *credentials.secrets] if api_key else credentials.secrets,
        metrics=run.metrics,
        console=console,
    ):
        for warning in credentials.warnings:
            log.warning("warning", message=warning)
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
        stages = Stages(run)
        if options.roots:
            stages.discovery = discovery_for_run(
                list(options.roots), config, run.entries, run.metrics
            )
        return await run.execute(stages)
