"""The stage modules on their own: the source and link-sink seams, the chunk stage, the collect stage, Ending."""

from __future__ import annotations

import signal
from functools import partial
from pathlib import Path

import trio

from crawl4ai_llm_docs.chunk import stage as chunk_stage
from crawl4ai_llm_docs.collect import stage as collect
from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.collect.stage import Collector
from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.crawl import stage as crawl_stage
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, Route
from crawl4ai_llm_docs.lifecycle.ending import Ending
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Page, PageReport, UrlEntry
from crawl4ai_llm_docs.sources import url_file
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, serve_site

HTTP = CrawlConfig(mode="http", page_timeout=5.0, max_concurrent=2)


def _page(index: int, markdown: str = "# Title\n\nSome text.", error: str | None = None) -> Page:
    return Page(
        index=index,
        url=f"https://docs.test/{index}",
        final_url=f"https://docs.test/{index}",
        title=f"Page {index}",
        markdown=markdown,
        status=200 if error is None else 404,
        error=error,
        elapsed=0.1,
        bytes=100,
    )


async def _site(nursery: trio.Nursery, pages: int) -> SiteHandle:
    site: SiteHandle = await nursery.start(serve_site, SiteConfig(pages=pages))
    return site


# ---------------------------------------------------------------- source <-> crawl


async def test_url_file_source_feeds_the_crawl_through_tiny_channels(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """More URLs than channel room and crawl slots: every page still comes through."""
    site = await _site(nursery, 12)
    entries = [UrlEntry(index=i, url=url, line=i + 1) for i, url in enumerate(site.page_urls())]
    url_send, url_recv = trio.open_memory_channel[UrlEntry](0)
    page_send, page_recv = trio.open_memory_channel[Page](0)
    pages: list[Page] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as run:
            run.start_soon(partial(url_file.run, url_send, entries=entries))
            run.start_soon(
                partial(crawl_stage.run, url_recv, page_send, config=HTTP, cache_dir=tmp_path)
            )
            async with page_recv:
                async for page in page_recv:
                    pages.append(page)
    assert sorted(page.index for page in pages) == list(range(12))
    assert all(page.ok for page in pages)


async def test_the_crawl_stage_asks_its_link_sink_before_passing_a_page_on(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """The seam discovery uses: each crawled page's links go to the sink, which answers
    whether the page is listed; a page it does not list never reaches downstream."""
    site = await _site(nursery, 6)
    urls = site.page_urls()
    reports: list[PageReport] = []
    passed: list[int] = []

    class Sink:
        async def submit(self, report: PageReport) -> tuple[bool, str]:
            reports.append(report)
            assert report.index not in passed  # asked before the page went on
            return (report.index != 2, "a duplicate")

        def route(self, index: int) -> Route:
            return OPEN_ROUTE

    entries = [UrlEntry(index=i, url=url, line=0) for i, url in enumerate(urls)]
    url_send, url_recv = trio.open_memory_channel[UrlEntry](1)
    page_send, page_recv = trio.open_memory_channel[Page](1)
    with trio.fail_after(60):
        async with trio.open_nursery() as run:
            run.start_soon(partial(url_file.run, url_send, entries=entries))
            run.start_soon(
                partial(
                    crawl_stage.run,
                    url_recv,
                    page_send,
                    config=HTTP,
                    cache_dir=tmp_path,
                    discovery=Sink(),
                )
            )
            async with page_recv:
                async for page in page_recv:
                    passed.append(page.index)
    assert sorted(report.index for report in reports) == list(range(6))
    assert sorted(passed) == [0, 1, 3, 4, 5]
    by_index = {report.index: report for report in reports}
    # The generated pages link to the next page: the links came from the same fetch.
    assert any(urls[1] in link for link in by_index[0].links.links)


# ---------------------------------------------------------------- chunk


async def test_chunk_stage_reports_every_page_before_sending_its_chunks() -> None:
    events: list[tuple[str, int, int]] = []
    page_send, page_recv = trio.open_memory_channel[Page](0)
    chunk_send, chunk_recv = trio.open_memory_channel[Chunk](0)

    async def failed(page: Page) -> None:
        events.append(("failed", page.index, 0))

    def chunked(page: Page, chunks: list[Chunk]) -> None:
        assert page.markdown  # the whole page, for the collector to keep what it needs
        events.append(("chunked", page.index, len(chunks)))

    big = "\n\n".join(f"## Part {i}\n\n" + "word " * 200 for i in range(6))
    chunks: list[Chunk] = []

    async def receive_all() -> None:
        async with chunk_recv:
            async for chunk in chunk_recv:  # ends when the stage closes its output
                reported = [e[:2] for e in events]
                assert ("chunked", chunk.page_index) in reported, "chunk before its page"
                chunks.append(chunk)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(
                    chunk_stage.run,
                    page_recv,
                    chunk_send,
                    max_tokens=300,
                    on_failed=failed,
                    on_chunked=chunked,
                )
            )
            nursery.start_soon(receive_all)
            async with page_send:
                await page_send.send(_page(0))
                await page_send.send(_page(1, markdown="", error="HTTP 404"))
                await page_send.send(_page(2, markdown=big))
    assert [e[:2] for e in events] == [("chunked", 0), ("failed", 1), ("chunked", 2)]
    assert events[2][2] > 1
    assert [(c.page_index, c.chunk_index) for c in chunks] == [(0, 0)] + [
        (2, i) for i in range(events[2][2])
    ]
    assert all(c.tokens <= 300 for c in chunks)


# ---------------------------------------------------------------- collect


async def test_collect_stages_spool_documents(tmp_path: Path) -> None:
    async with DocumentSpool(tmp_path / "a") as spool:
        collector = Collector(spool, None)
        collector.expect(_page(0, markdown=""))
        send, receive = trio.open_memory_channel[ChunkResult](1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(collect.run, receive, collector=collector))
            async with send:
                for chunk in (1, 0):
                    await send.send(
                        ChunkResult(
                            page_index=0, chunk_index=chunk, chunk_count=2, markdown=f"part {chunk}"
                        )
                    )
        [document] = list(spool)
    assert document.markdown == "part 0\n\npart 1"

    async with DocumentSpool(tmp_path / "b") as spool:
        collector = Collector(spool, None)
        pages, receive_pages = trio.open_memory_channel[Page](1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(collect.run_raw, receive_pages, collector=collector))
            async with pages:
                await pages.send(_page(0))
                await pages.send(_page(1, markdown="", error="HTTP 404"))
        assert [d.ok for d in spool] == [True, False]
    assert collector.failures == [("https://docs.test/1", "HTTP 404")]


# ---------------------------------------------------------------- Ending


def test_ending_moves_on_once_and_gives_the_exit_code() -> None:
    failed = [("https://docs.test/1", "HTTP 404")]
    working = Ending()
    assert working.working
    assert not working.incomplete

    finished = working.work_over()
    assert finished.how == "finished"
    assert not finished.working
    assert finished.note == ""
    assert (finished.exit_code([]), finished.exit_code(failed)) == (0, 1)
    assert finished.work_over() is finished

    stopping = working.stopping("no quota")
    assert stopping.working  # answers already on their way may still arrive
    assert stopping.stopping("bad key") is stopping  # the first reason stays
    stopped = stopping.work_over()
    assert (stopped.how, stopped.why) == ("stopped", "no quota")
    assert stopped.incomplete
    assert stopped.exit_code([]) == 3
    assert stopped.unfinished_reason == "not finished (run stopped: no quota)"
    assert "stopped: no quota" in stopped.note

    for signum, code, words in (
        (signal.SIGINT, 130, "interrupted with Ctrl-C"),
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    ):
        interrupted = Ending.interrupted(signum)
        assert interrupted.incomplete
        assert not interrupted.working
        assert interrupted.exit_code(failed) == code
        assert interrupted.stopping("no quota") is interrupted
        assert interrupted.work_over() is interrupted
        assert interrupted.unfinished_reason == "not finished (run interrupted)"
        assert words in interrupted.note
