"""BatchApi and BatchStore against scripted answers (httpx.MockTransport); time is trio's
autojump clock, so backoff waits are instant."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.errors import ProviderFatalError
from crawl4ai_llm_docs.llm.batch.api import BatchApi, BatchApiError, BatchUnsupportedError
from crawl4ai_llm_docs.llm.batch.stage import BatchJob
from crawl4ai_llm_docs.llm.batch.store import BatchRecord, BatchStore
from crawl4ai_llm_docs.testing.provider.batch_io import multipart

BASE = "https://provider.example/v1"
SECRET = "sk-unit-SECRET-42"


def api_with(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> BatchApi:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), headers={"Authorization": f"Bearer {SECRET}"}
    )
    return BatchApi(
        http, base_url=BASE, timeout=10.0, secret=SECRET, rng=random.Random(0), **options
    )


def batch(batch_id: str = "batch_1", status: str = "validating", **fields: Any) -> dict[str, Any]:
    return {"id": batch_id, "object": "batch", "status": status, **fields}


async def test_upload_streams_a_multipart_body_the_provider_can_read(tmp_path: Path) -> None:
    # Real clock: the file is read in worker threads, which an autojump clock would skip past.
    source = tmp_path / "input.jsonl"
    source.write_bytes(b'{"custom_id": "a"}\n' * 1000)
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        seen["fields"] = multipart(body, request.headers["content-type"])
        seen["length"] = int(request.headers["content-length"])
        seen["size"] = len(body)
        return httpx.Response(200, json={"id": "file-1", "object": "file", "bytes": len(body)})

    uploaded = await api_with(handler).upload(source)
    assert uploaded.id == "file-1"
    assert seen["length"] == seen["size"]
    fields = seen["fields"]
    assert fields["purpose"] == (None, b"batch")
    assert fields["file"] == ("input.jsonl", source.read_bytes())


async def test_a_lost_create_answer_finds_the_batch_instead_of_creating_twice(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The provider creates the batch but the answer is a 502: the next attempt looks it up."""
    created: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/batches"):
            created.append(batch(input_file_id="file-1"))
            return httpx.Response(502, json={"error": {"message": "bad gateway"}})
        if request.method == "GET" and request.url.path.endswith("/batches"):
            return httpx.Response(200, json={"object": "list", "data": created})
        return httpx.Response(404)

    store = BatchStore(tmp_path)
    record = BatchRecord(
        local_id="l1", base_url=BASE, model="m", input_file_id="file-1", lines=3, created_at=1.0
    )
    job = BatchJob.__new__(BatchJob)  # only _create is exercised
    job._api = api_with(handler)
    job._store = store
    job.active = {}
    job._llm = msgspec.convert({"max_retries": 3}, LLMConfig)
    stored = await job._create(record)
    assert len(created) == 1
    assert stored.batch_id == "batch_1"
    assert store.find("batch_1") == stored


async def test_transient_errors_are_retried_then_reported(autojump_clock: trio.abc.Clock) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"error": {"message": f"overloaded {SECRET}"}})

    with pytest.raises(BatchApiError) as caught:
        await api_with(handler, retries=2).retrieve("batch_1")
    assert calls == 3
    assert caught.value.transient
    assert SECRET not in caught.value.message


async def test_a_refused_key_is_fatal(autojump_clock: trio.abc.Clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": {"message": "bad key", "code": "invalid_api_key"}}
        )

    with pytest.raises(ProviderFatalError):
        await api_with(handler).probe()


@pytest.mark.parametrize("path", ["probe", "upload", "create"])
async def test_404_means_no_batch_api(path: str, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "Invalid URL"}})

    api = api_with(handler)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"{}\n")
    calls = {
        "probe": api.probe,
        "upload": lambda: api.upload(source),
        "create": lambda: api.create("file-1", {}),
    }
    with pytest.raises(BatchUnsupportedError) as caught:
        await calls[path]()
    assert BASE in caught.value.message
    assert caught.value.exit_code == 2


async def test_download_retries_a_transient_failure_and_streams_to_disk(tmp_path: Path) -> None:
    # Real clock (the file is written in worker threads); the one backoff is at most 1 s.
    answers = [httpx.Response(500, json={"error": {"message": "oops"}})]
    content = b"".join(b'{"custom_id": "%d"}\n' % n for n in range(5000))

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return answers.pop()
        if request.url.path.endswith("/files/file-9/content"):
            return httpx.Response(200, content=content)
        return httpx.Response(404)

    target = tmp_path / "out.jsonl"
    await api_with(handler).download("file-9", target)
    assert target.read_bytes() == content


async def test_find_by_input_pages_through_the_listing(autojump_clock: trio.abc.Clock) -> None:
    pages = {
        None: {"data": [batch("b3", input_file_id="f3")], "has_more": True, "last_id": "b3"},
        "b3": {"data": [batch("b2", input_file_id="f2")], "has_more": False, "last_id": "b2"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("after")])

    api = api_with(handler)
    found = await api.find_by_input("f2")
    assert found is not None
    assert found.id == "b2"
    assert await api.find_by_input("f-none") is None


def test_store_round_trip_and_bad_files(tmp_path: Path) -> None:
    store = BatchStore(tmp_path)
    assert store.load_all() == []
    keys = store.open_keys("l1")
    keys.write("a" * 64 + "\n" + "b" * 64 + "\n")
    store.commit_keys("l1", keys)
    record = BatchRecord(
        local_id="l1", base_url=BASE, model="m", input_file_id="f", lines=2, created_at=time.time()
    )
    store.save(record)
    (store.directory / "broken.json").write_text("{not json")
    assert store.load_all() == [record]
    assert oct(os.stat(store.record_path("l1")).st_mode & 0o777) == "0o600"
    assert store.key_at("l1", 2) == "b" * 64
    assert store.key_at("l1", 3) is None
    assert store.find("f") is None
    store.remove("l1")
    assert list(store.iter_keys("l1")) == []
    assert store.load_all() == []


def test_store_sweeps_old_keys_files_of_uploads_that_never_happened(tmp_path: Path) -> None:
    store = BatchStore(tmp_path)
    old = store.open_keys("old")
    new = store.open_keys("new")
    old.close()
    new.close()
    stale = store.directory / "old.keys.tmp"
    os.utime(stale, (time.time() - 2 * 86_400,) * 2)
    store.sweep_temp()
    assert not stale.exists()
    assert (store.directory / "new.keys.tmp").exists()
    leftover = store.open_keys("gone")
    store.discard_keys("gone", leftover)
    assert not (store.directory / "gone.keys.tmp").exists()


async def test_a_download_that_stalls_is_retried(tmp_path: Path) -> None:
    """No byte for ``timeout`` seconds: that attempt is abandoned and the file fetched again."""
    attempts = 0

    class Stalling(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b'{"custom_id": "a"}\n'
            await trio.sleep_forever()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return httpx.Response(200, stream=Stalling())
        return httpx.Response(200, content=b'{"custom_id": "b"}\n')

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    api = BatchApi(http, base_url=BASE, timeout=0.3, rng=random.Random(0))
    target = tmp_path / "out.jsonl"
    with trio.fail_after(10):
        await api.download("file-1", target)
    assert attempts == 2
    assert target.read_bytes() == b'{"custom_id": "b"}\n'
