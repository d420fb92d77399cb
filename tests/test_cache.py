"""The LLM result cache (resume) and the document spool."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import msgspec
import pytest
import trio

from crawl4ai_llm_docs.cache import results as cache_module
from crawl4ai_llm_docs.cache.results import CachedResult, ResultCache
from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.config import AppConfig, LLMConfig, OutputConfig
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Document

LLM = LLMConfig(cleaning="rewrite")  # the keys of rewrite answers; edit keys: test_cleaning


def chunk(text: str = "# Page\n\nBody.", **changes: object) -> Chunk:
    base = Chunk(
        page_index=2,
        chunk_index=1,
        chunk_count=3,
        url="https://docs.example.com/p",
        title="P",
        text=text,
        tokens=5,
    )
    return msgspec.structs.replace(base, **changes)


def answer(markdown: str = "# Page\n\nBody.", **changes: object) -> ChunkResult:
    base = ChunkResult(
        page_index=2,
        chunk_index=1,
        chunk_count=3,
        markdown=markdown,
        description="About the page.",
        source="llm",
        prompt_tokens=120,
        completion_tokens=40,
    )
    return msgspec.structs.replace(base, **changes)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def listing(path: Path) -> list[Path]:
    # Blocking, but tests may block: nothing else runs in their event loop.
    return list(path.iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- keys


def test_key_is_sha256_hex_and_stable() -> None:
    key = ResultCache.key_for(chunk(), LLM)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == ResultCache.key_for(chunk(), LLMConfig(cleaning="rewrite"))


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other-model"},
        {"system_prompt": "Another system prompt."},
        {"user_prompt": "Other {content}"},
        {"temperature": 0.2},
        {"max_tokens": 4095},
    ],
)
def test_key_changes_with_each_llm_part(change: dict[str, object]) -> None:
    changed = msgspec.structs.replace(LLM, **change)
    assert ResultCache.key_for(chunk(), changed) != ResultCache.key_for(chunk(), LLM)


def test_key_changes_with_text_and_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ResultCache.key_for(chunk(), LLM)
    assert ResultCache.key_for(chunk("# Page\n\nBody!"), LLM) != key
    monkeypatch.setattr(cache_module, "SCHEMA_VERSION", cache_module.SCHEMA_VERSION + 1)
    assert ResultCache.key_for(chunk(), LLM) != key


def test_key_ignores_where_the_text_came_from() -> None:
    # Content-addressed: the same text elsewhere reuses the answer.
    moved = chunk(url="https://other.example.com/", title="Q", chunk_index=0, page_index=9)
    assert ResultCache.key_for(moved, LLM) == ResultCache.key_for(chunk(), LLM)


def test_parts_cannot_run_into_each_other() -> None:
    a = msgspec.structs.replace(LLM, model="ab", system_prompt="c")
    b = msgspec.structs.replace(LLM, model="a", system_prompt="bc")
    assert ResultCache.key_for(chunk(), a) != ResultCache.key_for(chunk(), b)


def test_bad_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a cache key"):
        ResultCache(tmp_path).path_for("../../etc/passwd")


# ---------------------------------------------------------------- get / put


async def test_round_trip(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    key = ResultCache.key_for(chunk(), LLM)
    assert await cache.get(key) is None
    assert await cache.put(key, answer()) is True
    entry = await cache.get(key)
    assert entry == CachedResult(
        key=key,
        markdown="# Page\n\nBody.",
        description="About the page.",
        prompt_tokens=120,
        completion_tokens=40,
    )
    result = entry.to_result(chunk(chunk_index=2, chunk_count=4))
    assert (result.page_index, result.chunk_index, result.chunk_count) == (2, 2, 4)
    assert result.source == "cache"
    assert result.markdown == "# Page\n\nBody."
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 1, 1)


async def test_layout_and_permissions(tmp_path: Path) -> None:
    root = tmp_path / "new" / "cache"
    cache = ResultCache(root)
    key = ResultCache.key_for(chunk(), LLM)
    await cache.put(key, answer())
    path = root / "results" / key[:2] / f"{key}.json"
    assert cache.path_for(key) == path
    assert mode(path) == 0o600
    for directory in (path.parent, root / "results", root, root.parent):
        assert mode(directory) == 0o700, directory
    assert temp_files(root) == []


async def test_only_provider_answers_are_stored(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = ResultCache.key_for(chunk(), LLM)
    for source in ("fallback", "raw", "cache"):
        assert await cache.put(key, answer(source=source)) is False
    assert await cache.get(key) is None
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"key": "',  # torn write
        b"\x00\x01binary",
        b"[1, 2, 3]",
        b'{"key": "KEY", "markdown": 5}',  # wrong type
        b'{"markdown": "no key"}',
        b'{"key": "0000000000000000000000000000000000000000000000000000000000000000", "markdown": "m"}',
    ],
)
async def test_bad_entry_is_a_miss_and_removed(tmp_path: Path, content: bytes) -> None:
    cache = ResultCache(tmp_path)
    key = ResultCache.key_for(chunk(), LLM)
    await cache.put(key, answer())
    path = cache.path_for(key)
    path.write_bytes(content.replace(b"KEY", key.encode()))
    assert await cache.get(key) is None
    assert not path.exists()
    assert cache.stats.corrupt == 1
    # And the next answer is stored again.
    assert await cache.put(key, answer())
    assert await cache.get(key) is not None


async def test_directory_in_place_of_an_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = ResultCache.key_for(chunk(), LLM)
    cache.path_for(key).mkdir(parents=True)
    assert await cache.get(key) is None


async def test_disabled_cache_stores_nothing(tmp_path: Path) -> None:
    cache = ResultCache.disabled()
    assert not cache.enabled
    key = ResultCache.key_for(chunk(), LLM)
    assert await cache.put(key, answer()) is False
    assert await cache.get(key) is None
    assert await cache.sweep() == 0
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (0, 0, 0)


def test_cache_from_config(tmp_path: Path) -> None:
    on = AppConfig(output=OutputConfig(cache_dir=str(tmp_path / "c")))
    assert ResultCache.for_config(on).directory == tmp_path / "c"
    off = AppConfig(output=OutputConfig(cache=False, cache_dir=str(tmp_path / "c")))
    assert not ResultCache.for_config(off).enabled


@pytest.mark.parametrize("failing", ["fsync", "replace"])
async def test_failed_write_leaves_no_entry_and_no_litter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    cache = ResultCache(tmp_path)
    key = ResultCache.key_for(chunk(), LLM)
    await cache.put(key, answer("old"))

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    assert await cache.put(key, answer("new")) is False
    monkeypatch.undo()
    assert cache.stats.write_errors == 1
    assert cache.stats.last_write_error is not None
    assert "No space left" in cache.stats.last_write_error
    assert temp_files(tmp_path) == []
    entry = await cache.get(key)
    assert entry is not None
    assert entry.markdown == "old"  # the previous entry is intact


async def test_sweep_removes_only_stale_temp_files(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = ResultCache.key_for(chunk(), LLM)
    await cache.put(key, answer())
    shard = cache.path_for(key).parent
    stale = shard / ".tmp-stale"
    fresh = shard / ".tmp-fresh"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    assert await cache.get(key) is not None  # litter does not disturb reads
    assert await cache.sweep(older_than=600) == 1
    assert not stale.exists()
    assert fresh.exists()
    assert cache.path_for(key).exists()


_WRITER = textwrap.dedent(
    """
    import hashlib, sys, trio
    from pathlib import Path
    from crawl4ai_llm_docs.cache.results import ResultCache
    from crawl4ai_llm_docs.models import ChunkResult

    async def main() -> None:
        cache = ResultCache(Path(sys.argv[1]))
        number = 0
        while True:
            key = hashlib.sha256(str(number).encode()).hexdigest()
            text = str(number) * (3_000_000 // len(str(number)))
            result = ChunkResult(page_index=0, chunk_index=0, chunk_count=1, markdown=text)
            assert await cache.put(key, result)
            number += 1

    trio.run(main)
    """
)


def writing(root: Path) -> bool:
    sizes = []
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                sizes.append(path.stat().st_size)
    return any(size < 2_900_000 for size in sizes)


def test_kill_9_never_leaves_a_torn_entry(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)])
    try:
        deadline = time.monotonic() + 60
        # Kill it in the middle of a write: after a few entries, while a file is growing.
        while not (len(list(root.rglob("*.json"))) >= 3 and writing(root)):
            assert writer.poll() is None, "the writer died"
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.001)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    entries = list(root.rglob("*.json"))
    assert len(entries) >= 3
    for path in entries:
        if path.name.startswith(".tmp-"):
            continue
        entry = msgspec.json.decode(path.read_bytes(), type=CachedResult)
        assert f"{entry.key}.json" == path.name
        assert len(entry.markdown) >= 2_999_000

    async def sweep() -> int:
        return await ResultCache(root).sweep(older_than=0)

    trio.run(sweep)
    assert temp_files(root) == []


# ---------------------------------------------------------------- spool


def document(index: int, markdown: str = "", error: str | None = None) -> Document:
    return Document(
        index=index,
        url=f"https://docs.example.com/{index}",
        title=f"Page {index}",
        markdown=markdown or f"# Page {index}\n\nBody {index}.",
        description=f"Page number {index}.",
        error=error,
    )


async def test_spool_returns_documents_in_input_order(tmp_path: Path) -> None:
    async with DocumentSpool(tmp_path) as spool:
        for index in (5, 0, 3, 1):
            await spool.add(document(index))
        await spool.add(document(3, "replaced"))
        await spool.add(document(2, error="HTTP 404"))
        assert len(spool) == 5
        documents = list(spool)
        assert [d.index for d in documents] == [0, 1, 2, 3, 5]
        assert documents[3].markdown == "replaced"
        assert documents[2].error == "HTTP 404"
        assert documents[0] == document(0)
        assert list(spool) == documents  # may be read more than once
        directory = spool.directory
        assert mode(directory) == 0o700
        assert {mode(p) for p in directory.iterdir()} == {0o600}
    assert not directory.exists()
    assert listing(tmp_path) == []


async def test_spool_is_removed_on_cancellation(tmp_path: Path) -> None:
    with trio.move_on_after(0.1):
        async with DocumentSpool(tmp_path) as spool:
            await spool.add(document(0))
            await trio.sleep_forever()
    assert listing(tmp_path) == []


async def test_spool_reads_one_document_at_a_time(tmp_path: Path) -> None:
    size = 2_000_000
    async with DocumentSpool(tmp_path) as spool:
        for index in range(20):
            await spool.add(document(index, "x" * size))
        tracemalloc.start()
        try:
            count = 0
            for doc in spool:
                count += len(doc.markdown) // size
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == 20
        # About two documents' worth (the bytes read and the decoded string), never twenty.
        assert peak < 5 * size


def test_spool_must_be_open() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        DocumentSpool().add_sync(document(0))
