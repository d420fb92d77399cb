"""Documents keep their page's metadata on both paths: --no-llm and the LLM's answers."""

from __future__ import annotations

from pathlib import Path

from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.collect.stage import Collector
from crawl4ai_llm_docs.models import ChunkResult, Page

META = {"site_name": "Acme", "meta_description": "About.", "fetched_at": "2025-01-02T03:04:05Z"}


def page(index: int) -> Page:
    return Page(
        index=index,
        url=f"https://h/p{index}",
        final_url=f"https://h/p{index}",
        title=f"P{index}",
        markdown="Text.",
        status=200,
        error=None,
        elapsed=0.1,
        bytes=10,
        **META,  # type: ignore[arg-type]
    )


async def test_metadata_reaches_the_documents(tmp_path: Path) -> None:
    async with DocumentSpool(tmp_path) as spool:
        collector = Collector(spool, None)
        await collector.add_raw(page(0))
        collector.expect(page(1))
        await collector.add_result(
            ChunkResult(
                page_index=1, chunk_index=0, chunk_count=1, markdown="Clean.", description="D."
            )
        )
        documents = list(spool)
    assert [d.markdown for d in documents] == ["Text.", "Clean."]
    for document in documents:
        assert (document.site_name, document.meta_description, document.fetched_at) == tuple(
            META.values()
        )
    assert documents[1].description == "D."
