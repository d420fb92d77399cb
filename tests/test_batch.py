"""The batch LLM stage in-process, against the fake provider's Batch API on loopback.

Real time, sized to seconds (the fake's batches take ``batch_latency``; polling every 50 ms).
"""

from __future__ import annotations

import functools
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from crawl4ai_llm_docs.cache import ResultCache
from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import ProviderFatalError
from crawl4ai_llm_docs.llm import batch as batch_stage
from crawl4ai_llm_docs.llm.batch_api import BatchUnsupportedError
from crawl4ai_llm_docs.llm.batch_files import WorkDir
from crawl4ai_llm_docs.llm.batch_store import BatchStore
from crawl4ai_llm_docs.llm.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.chunking import count_tokens
from crawl4ai_llm_docs.llm.client import ChatClient
from crawl4ai_llm_docs.llm.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.stage import ChunkProcessor
from crawl4ai_llm_docs.models import Chunk, ChunkResult
from crawl4ai_llm_docs.testing.provider import FakeProvider, make_config, serve

GUARD_S = 60


def make_chunk(index: int, text: str | None = None) -> Chunk:
    body = (
        text or f"# Page {index}\n\nParagraph of page {index}.\n\n```python\nprint({index})\n```\n"
    )
    return Chunk(
        page_index=index,
        chunk_index=0,
        chunk_count=1,
        url=f"https://docs.example/page/{index}",
        title=f"Page {index}",
        text=body,
        tokens=count_tokens(body),
    )


def llm_config(provider: FakeProvider, **fields: Any) -> LLMConfig:
    base = {
        "base_url": provider.base_url,
        "model": "fake-model",
        "mode": "batch",
        "batch_poll_initial_s": 0.05,
        "batch_poll_max_s": 0.2,
        **fields,
    }
    return msgspec.convert(base, LLMConfig)


async def run_stage(
    provider: FakeProvider,
    chunks: list[Chunk],
    tmp: Path,
    *,
    llm: LLMConfig | None = None,
    api_key: str | None = None,
    **options: Any,
) -> tuple[list[ChunkResult], list[ProviderFatalError], ResultCache]:
    llm = llm or llm_config(provider)
    parallel = ParallelConfig()
    client = ChatClient(
        llm=llm,
        parallel=parallel,
        api_key=api_key,
        limiter=AdaptiveRateLimiter(max_concurrent=4),
        breaker=CircuitBreaker(),
    )
    cache = ResultCache(tmp / "cache")
    processor = ChunkProcessor(client=client, cache=cache, llm=llm)
    fatal: list[ProviderFatalError] = []
    results: list[ChunkResult] = []
    chunk_send, chunk_recv = trio.open_memory_channel[Chunk](4)
    result_send, result_recv = trio.open_memory_channel[ChunkResult](4)

    async def feed() -> None:
        async with chunk_send:
            for chunk in chunks:
                await chunk_send.send(chunk)

    async def drain() -> None:
        async with result_recv:
            async for result in result_recv:
                results.append(result)

    with trio.fail_after(GUARD_S):
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(drain)
            nursery.start_soon(
                functools.partial(
                    batch_stage.run,
                    chunk_recv,
                    result_send,
                    processor=processor,
                    workers=4,
                    on_fatal=fatal.append,
                    cache_dir=tmp / "cache",
                    **options,
                )
            )
    return results, fatal, cache


async def batch_listing(provider: FakeProvider) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{provider.url}/_batches")
    data: dict[str, Any] = answer.json()
    return data


async def test_lines_split_into_batches_at_max_lines(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 0.3}))
        chunks = [make_chunk(i) for i in range(25)]
        results, fatal, cache = await run_stage(provider, chunks, tmp_path, max_lines=10)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert not fatal
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [10, 10, 5]
    assert sorted(r.page_index for r in results) == list(range(25))
    assert {r.source for r in results} == {"llm"}
    assert cache.stats.writes == 25
    assert BatchStore(tmp_path / "cache").load_all() == []


async def test_max_bytes_splits_too(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 0.2}))
        chunks = [make_chunk(i, f"# Page {i}\n\n" + "text " * 120) for i in range(6)]
        # Every line is over 600 bytes: one line per 1000-byte file.
        results, _, _ = await run_stage(provider, chunks, tmp_path, max_bytes=1000)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [1] * 6
    assert len(results) == 6


async def test_same_text_twice_is_one_line_and_two_results(tmp_path: Path) -> None:
    text = "# Same\n\nThe same page twice.\n"
    chunks = [make_chunk(0, text), make_chunk(1, text), make_chunk(2)]
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 0.2}))
        results, _, _ = await run_stage(provider, chunks, tmp_path)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [2]
    by_page = {r.page_index: r for r in results}
    assert sorted(by_page) == [0, 1, 2]
    assert by_page[0].markdown == by_page[1].markdown
    assert by_page[0].description == by_page[1].description != ""


async def test_cached_chunks_are_not_sent_and_a_second_run_sends_nothing(tmp_path: Path) -> None:
    chunks = [make_chunk(i) for i in range(4)]
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 0.2}))
        await run_stage(provider, chunks, tmp_path)
        again, _, _ = await run_stage(provider, [*chunks, make_chunk(9)], tmp_path)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [4, 1]
    assert sorted(r.source for r in again) == ["cache"] * 4 + ["llm"]


async def test_an_answer_cut_off_is_split_and_its_halves_sent_live(tmp_path: Path) -> None:
    paragraphs = "\n\n".join(f"Paragraph {n} " + "word " * 60 for n in range(12))
    big = make_chunk(0, f"# Big\n\n{paragraphs}\n")
    async with trio.open_nursery() as nursery:
        # The answer to the whole chunk is cut off; each half's answer fits.
        cap = big.tokens * 3 // 4
        provider = await nursery.start(
            serve, make_config({"batch_latency": 0.2, "max_output_tokens": cap})
        )
        llm = llm_config(provider, chunk_min_tokens=64)
        results, _, _ = await run_stage(provider, [big], tmp_path, llm=llm)
        live = provider.stats()
        nursery.cancel_scope.cancel()
    assert len(results) == 1
    assert results[0].source == "llm"
    assert live.successes >= 2  # the halves, live
    assert "Paragraph 11" in results[0].markdown


async def test_a_batch_cancelled_while_waiting_keeps_the_crawled_text(tmp_path: Path) -> None:
    chunks = [make_chunk(i) for i in range(4)]
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 5.0}))

        async def cancel_soon() -> None:
            async with httpx.AsyncClient() as http:
                listing = await batch_listing(provider)
                for _ in range(400):
                    if listing["batches"]:
                        break
                    await trio.sleep(0.05)
                    listing = await batch_listing(provider)
                batch_id = listing["batches"][0]["id"]
                await http.post(f"{provider.base_url}/batches/{batch_id}/cancel")

        nursery.start_soon(cancel_soon)
        results, _, _ = await run_stage(provider, chunks, tmp_path)
        nursery.cancel_scope.cancel()
    assert len(results) == 4
    assert {r.source for r in results} == {"fallback"}
    assert all("cancelled" in (r.warning or "") for r in results)
    assert all(r.llm_failed for r in results)


async def test_no_batch_api_raises_the_usage_error(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_api": False}))
        with pytest.RaisesGroup(BatchUnsupportedError, flatten_subgroups=True) as caught:
            await run_stage(provider, [make_chunk(0)], tmp_path)
        nursery.cancel_scope.cancel()
    message = str(caught.value.exceptions[0])
    assert "has no Batch API" in message
    assert "llm.mode" in message


async def test_a_wrong_key_is_fatal_before_any_upload(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"require_api_key": "sk-right"}))
        results, fatal, _ = await run_stage(
            provider, [make_chunk(0)], tmp_path, api_key="sk-wrong-key-123"
        )
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert results == []
    assert len(fatal) == 1
    assert "sk-wrong-key-123" not in fatal[0].message
    assert listing["stats"]["files_uploaded"] == 0


async def test_intake_memory_is_flat_in_the_number_of_lines(tmp_path: Path) -> None:
    """The JSONL is streamed to disk: memory per line is bookkeeping, not the line itself."""
    llm = msgspec.convert({"mode": "batch"}, LLMConfig)
    client = ChatClient(
        llm=llm,
        parallel=ParallelConfig(),
        api_key=None,
        limiter=AdaptiveRateLimiter(max_concurrent=1),
        breaker=CircuitBreaker(),
    )
    processor = ChunkProcessor(client=client, cache=ResultCache.disabled(), llm=llm)
    text = "word " * 2000  # ~10 KB per chunk, ~12 KB per line with the prompts
    url, title = "https://docs.example/page", "Page"

    async def peak_growth(lines: int) -> int:
        send, _recv = trio.open_memory_channel[ChunkResult](1)
        work = WorkDir(tmp_path / f"cache-{lines}")
        job = batch_stage.BatchJob(
            processor=processor,
            send=send,
            api=None,  # type: ignore[arg-type]  # intake never calls the provider
            store=BatchStore(tmp_path / f"cache-{lines}"),
            work=work,
            workers=1,
        )
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        for index in range(lines):
            chunk = Chunk(
                page_index=index,
                chunk_index=0,
                chunk_count=1,
                url=url,
                title=title,
                text=f"{index} {text}",
                tokens=2000,
            )
            await job.add(chunk, f"{index:064x}")
            del chunk
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        work.close()
        return peak - start

    small = await peak_growth(200)
    large = await peak_growth(2000)
    per_line = (large - small) / 1800
    print(f"intake peak: {small} B for 200 lines, {large} B for 2000; {per_line:.0f} B/line")
    # ~12 KB lines, 10x more of them: memory grows by the key and position only.
    assert per_line < 600, f"{per_line:.0f} bytes per line"
    assert large < 4_000_000, f"{large} bytes for 2000 lines of ~12 KB"
