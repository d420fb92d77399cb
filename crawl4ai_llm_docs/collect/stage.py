"""The collect stage: chunk results -> finished documents, spooled to disk.

Only pages with chunks still in flight are held in memory; each finished document goes to
the ``DocumentSpool`` at once, and the outputs are assembled from the spool in input order at
the end. Failures are remembered as (url, reason) for the report and the output's last section.
"""

from __future__ import annotations

import structlog
import trio

from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.markdown.reassemble import reassemble
from crawl4ai_llm_docs.models import ChunkResult, Document, Page
from crawl4ai_llm_docs.observe.metrics import RunMetrics

log = structlog.get_logger()


class _Pending:
    __slots__ = ("page", "results")

    def __init__(self, page: Page) -> None:
        self.page = page
        self.results: list[ChunkResult] = []


class Collector:
    """Turns pages and chunk results into documents as soon as each page is complete."""

    def __init__(self, spool: DocumentSpool, metrics: RunMetrics | None) -> None:
        self._spool = spool
        self._metrics = metrics
        self._pending: dict[int, _Pending] = {}
        self.failures: list[tuple[str, str]] = []  # (url, reason), pages that failed outright
        self.warnings: list[tuple[str, str]] = []  # (url, reason), pages written with fallbacks
        # (url, reason), pages written with a part the LLM never answered: listed as failed too
        self.llm_failed: list[tuple[str, str]] = []
        self.documents = 0
        self.stored: set[int] = set()  # input indices with a document (or failure) in the spool
        self.prompt_tokens = 0
        self.completion_tokens = 0

    @property
    def pending_pages(self) -> list[Page]:
        return [pending.page for pending in self._pending.values()]

    def expect(self, page: Page) -> None:
        """Register a page whose chunks were sent to the LLM stage."""
        self._pending[page.index] = _Pending(page)

    async def add_failed(self, page: Page) -> None:
        reason = page.error or "failed"
        self.failures.append((page.url, reason))
        await self._store(
            Document(index=page.index, url=page.url, title=page.title, markdown="", error=reason)
        )

    async def add_raw(self, page: Page) -> None:
        """``--no-llm``: the crawled Markdown is the document."""
        if not page.ok:
            await self.add_failed(page)
            return
        await self._store(
            Document(
                index=page.index,
                url=page.url,
                title=page.title,
                markdown=page.markdown,
                fetched_at=page.fetched_at,
                changed_at=page.changed_at,
                site_name=page.site_name,
                meta_description=page.meta_description,
                source_format=page.source_format,
            )
        )

    async def add_result(self, result: ChunkResult) -> None:
        pending = self._pending[result.page_index]
        pending.results.append(result)
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        if len(pending.results) < result.chunk_count:
            return
        del self._pending[result.page_index]
        page = pending.page
        ordered = sorted(pending.results, key=lambda r: r.chunk_index)
        notes = [f"part {r.chunk_index + 1}: {r.warning}" for r in ordered if r.warning]
        if notes:
            self.warnings.append((page.url, "; ".join(notes)))
        unanswered = [f"part {r.chunk_index + 1}: {r.warning}" for r in ordered if r.llm_failed]
        if unanswered:
            reason = "; ".join(unanswered)
            self.llm_failed.append(
                (page.url, f"crawled text kept, not cleaned by the LLM ({reason})")
            )
        description = next((r.description for r in ordered if r.description), "")
        await self._store(
            Document(
                index=page.index,
                url=page.url,
                title=page.title,
                markdown=reassemble(ordered),
                description=description,
                fetched_at=page.fetched_at,
                changed_at=page.changed_at,
                site_name=page.site_name,
                meta_description=page.meta_description,
                source_format=page.source_format,
            )
        )

    async def _store(self, document: Document) -> None:
        await self._spool.add(document)
        self.stored.add(document.index)
        # A failed page is stored only to be listed; it is not a document written.
        if document.ok:
            self.documents += 1
            if self._metrics is not None:
                self._metrics.document_written()


async def run(receive: trio.MemoryReceiveChannel[ChunkResult], *, collector: Collector) -> None:
    """The last stage: every result into ``collector``; nothing goes further downstream."""
    async with receive:
        async for result in receive:
            await collector.add_result(result)


async def run_raw(receive: trio.MemoryReceiveChannel[Page], *, collector: Collector) -> None:
    """``--no-llm``: the last stage takes the crawled pages themselves."""
    async with receive:
        async for page in receive:
            await collector.add_raw(page)
