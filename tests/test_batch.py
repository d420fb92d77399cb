"""The batch LLM stage in-process, against the fake provider's Batch API on loopback.

Real time, sized to seconds (the fake's batches take ``batch_latency``; polling every 50 ms).
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from structlog.testing import capture_logs

from crawl4ai_llm_docs.cache.results import ResultCache
from crawl4ai_llm_docs.config import LLMConfig, ParallelConfig
from crawl4ai_llm_docs.errors import ProviderFatalError
from crawl4ai_llm_docs.llm.batch import stage as batch_stage
from crawl4ai_llm_docs.llm.batch.api import BatchUnsupportedError
from crawl4ai_llm_docs.llm.batch.files import WorkDir
from crawl4ai_llm_docs.llm.batch.store import BatchStore
from crawl4ai_llm_docs.llm.limits.breaker import CircuitBreaker
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter
from crawl4ai_llm_docs.llm.processor import ChunkProcessor
from crawl4ai_llm_docs.llm.provider.client import ChatClient
from crawl4ai_llm_docs.markdown.chunking import count_tokens
from crawl4ai_llm_docs.models import Chunk, ChunkResult
from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, serve

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
        "cleaning": "rewrite",  # these tests follow rewrite answers; edit mode: test_provider_edit
        **fields,
    }
    return msgspec.convert(base, LLMConfig)


def chat_client(llm: LLMConfig, *, api_key: str | None = None, workers: int = 1) -> ChatClient:
    """The client every batch test builds: default parallel settings, a fresh limiter."""
    return ChatClient(
        llm=llm,
        parallel=ParallelConfig(),
        api_key=api_key,
        limiter=AdaptiveRateLimiter(max_concurrent=workers),
        breaker=CircuitBreaker(),
    )


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
    client = chat_client(llm, api_key=api_key, workers=4)
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


async def stopped_once_batches_exist(
    provider: FakeProvider, count: int, run: Coroutine[Any, Any, object]
) -> None:
    """Run ``run`` and stop it (as Ctrl-C would) once the provider has ``count`` batches."""
    with trio.move_on_after(GUARD_S) as stop:

        async def watch() -> None:
            for _ in range(int(GUARD_S / 0.05)):
                if len((await batch_listing(provider))["batches"]) >= count:
                    stop.cancel()
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await run
            nursery.cancel_scope.cancel()  # finished before it could be stopped
    assert stop.cancelled_caught, f"the run ended before {count} batch(es) existed"


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


def big_chunk() -> Chunk:
    paragraphs = "\n\n".join(f"Paragraph {n} " + "word " * 60 for n in range(12))
    return make_chunk(0, f"# Big\n\n{paragraphs}\n")


async def test_an_answer_cut_off_is_split_and_its_halves_join_the_next_round(
    tmp_path: Path,
) -> None:
    big = big_chunk()
    async with trio.open_nursery() as nursery:
        # The answer to the whole chunk is cut off; each half's answer fits.
        cap = big.tokens * 3 // 4
        provider = await nursery.start(
            serve, make_config({"batch_latency": 0.2, "max_output_tokens": cap})
        )
        llm = llm_config(provider, chunk_min_tokens=64)
        with capture_logs() as logs:
            results, _, _ = await run_stage(provider, [big], tmp_path, llm=llm)
        again, _, _ = await run_stage(provider, [big], tmp_path, llm=llm)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert provider.stats().successes == 0  # no live request
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [1, 2]
    assert [e["round"] for e in logs if e["event"] == "batch_created"] == [1, 2]
    assert len(results) == 1
    assert results[0].source == "llm"
    assert "Paragraph 0" in results[0].markdown
    assert "Paragraph 11" in results[0].markdown
    assert results[0].completion_tokens > 0
    done = [e for e in logs if e["event"] == "batch_result"]
    assert len(done) == 1  # one chunk, counted once
    # A re-run knows the chunk is answered in halves: nothing is sent again.
    assert [r.source for r in again] == ["cache"]


async def test_a_rejected_answer_is_asked_again_in_the_next_round(tmp_path: Path) -> None:
    chunks = [make_chunk(i) for i in range(3)]
    async with trio.open_nursery() as nursery:
        # Answers above temperature 0.05 lose three quarters of the page; at 0 they are whole.
        provider = await nursery.start(
            serve, make_config({"batch_latency": 0.2, "unfaithful_above_temperature": 0.05})
        )
        with capture_logs() as logs:
            results, _, cache = await run_stage(provider, chunks, tmp_path)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert provider.stats().successes == 0  # the retries were not sent live
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [3, 3]
    assert sorted(r.page_index for r in results) == [0, 1, 2]
    for result in results:
        assert result.source == "llm"
        assert "print(" in result.markdown  # the whole page: the retry's answer
        assert result.completion_tokens > 0
    assert not [e for e in logs if e["event"] == "faithfulness_fallback"]
    assert cache.stats.writes == 6  # both answers of each chunk, with their verdicts
    assert len([e for e in logs if e["event"] == "batch_result"]) == 3


async def test_a_retry_cut_off_is_a_rejected_answer_not_split(tmp_path: Path) -> None:
    big = big_chunk()
    async with trio.open_nursery() as nursery:
        # The first answers lose three quarters (rejected); the big chunk's retry, whole, is
        # cut off: a retry is not split (as live), so the big chunk keeps its crawled text.
        config = {
            "batch_latency": 0.2,
            "max_output_tokens": big.tokens * 3 // 4,
            "unfaithful_above_temperature": 0.05,
        }
        provider = await nursery.start(serve, make_config(config))
        llm = llm_config(provider, chunk_min_tokens=64)
        with capture_logs() as logs:
            results, _, _ = await run_stage(provider, [big, make_chunk(1)], tmp_path, llm=llm)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert provider.stats().successes == 0
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [2, 2]
    by_page = {r.page_index: r for r in results}
    assert by_page[0].source == "fallback"
    assert "answer discarded (2 answers)" in (by_page[0].warning or "")
    assert by_page[1].source == "llm"
    fallbacks = [e for e in logs if e["event"] == "faithfulness_fallback"]
    assert [e["url"] for e in fallbacks] == [big.url]


async def test_fallback_live_sends_failed_lines_live_but_retries_in_batch(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(
            serve,
            make_config({"batch_latency": 0.2, "unfaithful_above_temperature": 0.05}),
        )
        llm = llm_config(provider, batch_fallback="live")
        results, _, _ = await run_stage(
            provider, [make_chunk(i) for i in range(2)], tmp_path, llm=llm
        )
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert provider.stats().successes == 0  # no line failed: nothing live
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [2, 2]
    assert {r.source for r in results} == {"llm"}


async def test_a_run_stopped_during_the_halves_round_resumes_it(tmp_path: Path) -> None:
    """Nothing is paid twice: the halves' batch of a stopped run is polled by the next."""
    big = big_chunk()
    async with trio.open_nursery() as nursery:
        cap = big.tokens * 3 // 4
        provider = await nursery.start(
            serve, make_config({"batch_latency": 1.0, "max_output_tokens": cap})
        )
        llm = llm_config(provider, chunk_min_tokens=64)
        await stopped_once_batches_exist(provider, 2, run_stage(provider, [big], tmp_path, llm=llm))
        assert len(BatchStore(tmp_path / "cache").load_all()) == 1
        with capture_logs() as logs:
            results, _, _ = await run_stage(provider, [big], tmp_path, llm=llm)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert listing["stats"]["batches_created"] == 2  # none made by the second run
    assert [e["event"] for e in logs if e["event"].startswith("batch_")].count("batch_resumed") == 1
    assert [r.source for r in results] == ["llm"]
    assert "Paragraph 11" in results[0].markdown
    assert provider.stats().successes == 0


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
    client = chat_client(llm)
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
            await job.add(chunk)
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


async def test_failed_lines_go_live_with_batch_fallback_live(tmp_path: Path) -> None:
    chunks = [make_chunk(i) for i in range(10)]
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(
            serve, make_config({"batch_latency": 0.2, "batch_error_rate": 0.3})
        )
        llm = llm_config(provider, batch_fallback="live")
        results, _, _ = await run_stage(provider, chunks, tmp_path, llm=llm)
        live = provider.stats()
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert listing["stats"]["batches_created"] == 1
    assert live.successes == 3
    assert sorted(r.page_index for r in results) == list(range(10))
    assert {r.source for r in results} == {"llm"}


async def test_lines_failing_every_round_keep_the_crawled_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_stage, "BATCH_ROUNDS", 1)
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(
            serve, make_config({"batch_latency": 0.2, "batch_error_rate": 0.5})
        )
        results, _, _ = await run_stage(provider, [make_chunk(i) for i in range(4)], tmp_path)
        nursery.cancel_scope.cancel()
    kept = [r for r in results if r.source == "fallback"]
    assert len(results) == 4
    assert len(kept) == 2
    assert all("failed 1 times" in (r.warning or "") and r.llm_failed for r in kept)


async def test_an_expired_batch_sends_its_unfinished_half_again(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(
            serve, make_config({"batch_latency": 0.2, "batch_expire_first": 1})
        )
        results, _, _ = await run_stage(provider, [make_chunk(i) for i in range(6)], tmp_path)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert [b["status"] for b in listing["batches"]] == ["expired", "completed"]
    assert [b["request_counts"]["total"] for b in listing["batches"]] == [6, 3]
    assert {r.source for r in results} == {"llm"}


async def test_a_rejected_batch_keeps_the_crawled_text_of_the_named_lines(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"models": ["fake-model"]}))
        llm = llm_config(provider, model="other-model")
        with capture_logs() as logs:
            results, _, _ = await run_stage(
                provider, [make_chunk(i) for i in range(2)], tmp_path, llm=llm
            )
        nursery.cancel_scope.cancel()
    assert {r.source for r in results} == {"fallback"}
    errors = [e["message"] for e in logs if e["event"] == "error"]
    assert len(errors) == 1
    assert "line 1 (https://docs.example/page/0, part 1)" in errors[0]
    assert "other-model" in errors[0]
    assert "(and 1 more line(s))" in errors[0]


async def test_an_upload_whose_batch_was_never_created_is_created_on_resume(
    tmp_path: Path,
) -> None:
    """Killed between the upload and ``POST /v1/batches``: the next run creates that batch."""
    chunks = [make_chunk(i) for i in range(3)]
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 0.2}))
        llm = llm_config(provider)
        store = BatchStore(tmp_path / "cache")
        client = chat_client(llm)
        async with client:
            work = WorkDir(tmp_path / "cache")
            processor = ChunkProcessor(client=client, cache=ResultCache.disabled(), llm=llm)
            send, _recv = trio.open_memory_channel[ChunkResult](10)
            api = batch_stage.BatchApi(client.http(), base_url=llm.base_url, timeout=10)
            job = batch_stage.BatchJob(
                processor=processor, send=send, api=api, store=store, work=work, workers=1
            )
            for chunk in chunks:
                await job.add(chunk)
            assert job._input is not None
            current = job._input
            current.commit()
            uploaded = await api.upload(current.path)
            store.save(
                batch_stage.BatchRecord(
                    local_id=current.local_id,
                    base_url=api.base_url,
                    model=llm.model,
                    input_file_id=uploaded.id,
                    lines=current.lines,
                    created_at=1.0,
                )
            )
            work.close()
        with capture_logs() as logs:
            results, _, _ = await run_stage(provider, chunks, tmp_path, llm=llm)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert listing["stats"]["files_uploaded"] == 1  # not uploaded again
    assert listing["stats"]["batches_created"] == 1
    assert {r.source for r in results} == {"llm"}
    assert [e["batch_id"] for e in logs if e["event"] == "batch_resumed"] == [None]
    assert store.load_all() == []


async def test_a_stored_batch_the_provider_does_not_know_is_sent_again(tmp_path: Path) -> None:
    chunk = make_chunk(0)
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 0.2}))
        llm = llm_config(provider)
        store = BatchStore(tmp_path / "cache")
        key = ResultCache.key_for(chunk, llm)
        keys = store.open_keys("gone")
        keys.write(key + "\n")
        store.commit_keys("gone", keys)
        record = batch_stage.BatchRecord(
            local_id="gone",
            base_url=provider.base_url,
            model=llm.model,
            input_file_id="file-old",
            batch_id="batch_forgotten",
            lines=1,
            created_at=1.0,
        )
        store.save(record)
        with capture_logs() as logs:
            results, _, _ = await run_stage(provider, [chunk], tmp_path, llm=llm)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert [r.source for r in results] == ["llm"]
    assert listing["stats"]["batches_created"] == 1
    assert any("batch_forgotten" in e.get("message", "") for e in logs if e["event"] == "warning")


def test_dry_run_batch_price_is_half_the_live_price() -> None:
    from crawl4ai_llm_docs.config import AppConfig
    from crawl4ai_llm_docs.lifecycle.estimate import Estimate

    prices = {"input_price_per_mtok": 1.0, "output_price_per_mtok": 4.0}
    live = Estimate(msgspec.convert({"llm": prices}, AppConfig))
    batch = Estimate(msgspec.convert({"llm": {**prices, "mode": "batch"}}, AppConfig))
    for estimate in (live, batch):
        estimate.add_page([make_chunk(0)])
    live_cost = live.cost()
    assert live_cost is not None
    text = batch.render(1)
    assert f"~${live_cost / 2:.4f} with the Batch API (50% of ~${live_cost:.4f} live)" in text
    assert "within 24 h" in text
    unpriced = Estimate(msgspec.convert({"llm": {"mode": "batch"}}, AppConfig))
    assert "unknown" in unpriced.render(0)


async def test_cancelled_while_polling_says_how_to_collect_and_keeps_the_record(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 30.0}))
        with capture_logs() as logs, trio.move_on_after(1.5):
            await run_stage(provider, [make_chunk(0)], tmp_path)
        nursery.cancel_scope.cancel()
    hints = [e["message"] for e in logs if "keep running at the provider" in e.get("message", "")]
    assert len(hints) == 1
    assert "batch_fake" in hints[0]
    assert "Run the same command again" in hints[0]
    records = BatchStore(tmp_path / "cache").load_all()
    assert len(records) == 1
    assert records[0].batch_id is not None
    # The work directory (chunk spool, JSONL) is gone; the keys file stays with the record.
    assert not list((tmp_path / "cache" / "spool").glob("spool-*"))


def test_batch_events_feed_the_metrics_and_the_live_view() -> None:
    from rich.console import Console

    from crawl4ai_llm_docs.observe.live import plain_line, render
    from crawl4ai_llm_docs.observe.metrics import RunMetrics

    metrics = RunMetrics(clock=lambda: 0.0)
    metrics.observe(
        {
            "event": "batch_progress",
            "batch_id": "batch_7",
            "status": "in_progress",
            "completed": 3,
            "failed": 1,
            "total": 9,
            "elapsed_s": 12.0,
        }
    )
    for _ in range(2):
        metrics.observe(
            {"event": "batch_result", "prompt_tokens": 100, "completion_tokens": 40, "url": "u"}
        )
    snap = metrics.snapshot()
    assert snap.batch == "batch_7 in_progress 3/9 done, 1 failed"
    assert snap.chunks_done == 2
    assert (snap.prompt_tokens, snap.completion_tokens) == (200, 80)
    assert "batch batch_7 in_progress 3/9 done, 1 failed" in plain_line(snap)
    console = Console(record=True, width=160, color_system=None)
    console.print(render(snap))
    assert "batch batch_7 in_progress" in console.export_text()


async def test_a_batch_shared_by_two_url_lists_stays_stored_until_both_collected(
    tmp_path: Path,
) -> None:
    """One page in two URL lists: neither run may drop the other's paid answers."""
    first, second = make_chunk(0), make_chunk(1)
    store = BatchStore(tmp_path / "cache")
    async with trio.open_nursery() as nursery:
        provider = await nursery.start(serve, make_config({"batch_latency": 1.0}))
        await stopped_once_batches_exist(
            provider, 1, run_stage(provider, [first, second], tmp_path)
        )
        assert len(store.load_all()) == 1
        only_first, _, _ = await run_stage(provider, [first], tmp_path)
        kept = store.load_all()
        only_second, _, _ = await run_stage(provider, [second], tmp_path)
        listing = await batch_listing(provider)
        nursery.cancel_scope.cancel()
    assert [r.source for r in only_first] == ["llm"]
    assert len(kept) == 1  # the second chunk's answer was still only at the provider
    assert [r.source for r in only_second] == ["llm"]
    assert store.load_all() == []
    assert listing["stats"]["batches_created"] == 1


class ResultLines:
    """A batch's result lines read into a run's waiting chunks; the lines written for the
    next round are collected in ``written``."""

    def __init__(self, tmp_path: Path, **llm_settings: Any) -> None:
        from crawl4ai_llm_docs.llm.batch.pending import Waiting
        from crawl4ai_llm_docs.llm.batch.results import Answers
        from crawl4ai_llm_docs.llm.processor import Ask

        settings = {"mode": "batch", "chunk_min_tokens": 64, **llm_settings}
        llm = msgspec.convert(settings, LLMConfig)
        client = chat_client(llm)
        cache = ResultCache(tmp_path / "cache")
        processor = ChunkProcessor(client=client, cache=cache, llm=llm)
        send, self.receive = trio.open_memory_channel[ChunkResult](10)
        self.work = WorkDir(tmp_path / "cache")
        self.written: list[Ask] = []

        async def write(chunk: Chunk, ask: Ask) -> None:
            self.written.append(ask)

        self.waiting = Waiting(processor=processor, work=self.work, send=send, write=write)
        store = BatchStore(tmp_path)
        self.answers = Answers(
            processor=processor, waiting=self.waiting, work=self.work, store=store
        )


async def test_result_lines_are_sorted_into_answers_retries_splits_and_refusals(
    tmp_path: Path,
) -> None:
    # Rewrites: one cut off (not looping) is split, as a live one is.
    reading = ResultLines(tmp_path, cleaning="rewrite")
    answers, waiting, written, work = (
        reading.answers,
        reading.waiting,
        reading.written,
        reading.work,
    )
    receive = reading.receive
    chunks = [big_chunk(), make_chunk(1), make_chunk(2), make_chunk(3)]
    for chunk in chunks:
        await waiting.add(chunk)
    keys = [ask.key for ask in written]
    written.clear()

    def line(key: str, status: int | None, body: Any = None, error: Any = None) -> bytes:
        response = None if status is None else {"status_code": status, "body": body}
        return msgspec.json.encode({"custom_id": key, "response": response, "error": error})

    cut_off = {"choices": [{"message": {"content": "x"}, "finish_reason": "length"}]}
    refused = {"error": {"message": "bad request", "type": "invalid_request_error"}}
    retry: list[str] = []
    with capture_logs() as logs:
        await answers.line(b"not json", retry)
        await answers.line(line(keys[0], 200, cut_off), retry)
        await answers.line(line(keys[1], 400, refused), retry)
        expired = {"code": "batch_expired", "message": "too late"}
        await answers.line(line(keys[2], None, error=expired), retry)
        await answers.line(line("f" * 64, 200, cut_off), retry)  # not this run's
    work.close()
    # The cut-off chunk's two halves are the next round's lines, nothing was sent.
    assert len(written) == 2
    assert {ask.attempt for ask in written} == {0}
    assert retry == [keys[2]]
    assert answers.reasons[keys[2]] == "batch_expired: too late"
    assert answers.foreign == 1
    refusal = receive.receive_nowait()
    assert refusal.source == "fallback"
    assert refusal.page_index == 1
    assert "bad request" in (refusal.warning or "")
    assert any("unreadable batch result line" in e.get("message", "") for e in logs)
    assert set(waiting.keys) == {keys[2], keys[3], *(ask.key for ask in written)}


async def test_an_edit_script_cut_off_in_a_batch_is_asked_again_not_split(
    tmp_path: Path,
) -> None:
    # A half edit script is no script, and a model that ran on to max_tokens would do so on
    # half the chunk too: live requests ask again (temperature 0), never split. Batch
    # answers were read without that guard and split, paying for two more lines each.
    reading = ResultLines(tmp_path)  # edit scripts, the default
    answers, waiting, written, work = (
        reading.answers,
        reading.waiting,
        reading.written,
        reading.work,
    )
    await waiting.add(big_chunk())
    [first] = written
    written.clear()
    script = '{"drop": [' + ", ".join(["[3, 4]"] * 40)  # looping, then cut off
    body = {"choices": [{"message": {"content": script}, "finish_reason": "length"}]}
    line = {"custom_id": first.key, "response": {"status_code": 200, "body": body}}
    await answers.line(msgspec.json.encode(line), [])
    work.close()
    [again] = written  # one line, the retry; not two halves
    assert again.attempt == 1
