"""Content-addressed cache of LLM results (resume after a crash or Ctrl-C), and a spool that
keeps finished documents on disk until the write stage assembles them.

Cache layout: ``<cache_dir>/results/ab/abcdef....json``, one msgspec JSON file per chunk
result, named by the SHA-256 of everything that decides the answer (``ResultCache.key_for``).
An entry keeps the answer with the faithfulness check's verdict on it, rejected answers
too, so a re-run sends nothing for a chunk already judged. Each entry is written to a
temporary file in the same directory, fsynced, then renamed over the final name, so a ``kill -9`` leaves either the whole entry or none (plus, at worst, a
``.tmp-*`` file that ``ResultCache.sweep`` removes). Entries hold provider responses: files are
0o600 and the directories this module creates 0o700. An entry that does not decode is a miss
and is deleted; reading the cache never fails a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import msgspec
import psutil
import trio

from crawl4ai_llm_docs.config import AppConfig, LLMConfig
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Document

# Bump when the prompt handling or the entry format changes meaning: old entries become misses.
SCHEMA_VERSION = 1

_KEY = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"
_DIR_MODE = 0o700


class CachedResult(msgspec.Struct, frozen=True, kw_only=True):
    """What is kept of one LLM answer; ``key`` guards against a file copied to the wrong name.

    ``problem`` is the faithfulness check's verdict (None: accepted; else why it was
    rejected) and ``check`` names the check and settings that judged it: an entry judged by
    another check is judged again instead of asked for again.
    """

    key: str
    markdown: str
    description: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    problem: str | None = None
    checks_failed: tuple[str, ...] = ()
    check: str = ""

    def to_result(self, chunk: Chunk) -> ChunkResult:
        return ChunkResult(
            page_index=chunk.page_index,
            chunk_index=chunk.chunk_index,
            chunk_count=chunk.chunk_count,
            markdown=self.markdown,
            description=self.description,
            source="cache",
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )


class CacheStats(msgspec.Struct, kw_only=True):
    hits: int = 0
    misses: int = 0
    corrupt: int = 0  # entries that did not decode, deleted
    writes: int = 0
    write_errors: int = 0
    last_write_error: str | None = None


_decoder = msgspec.json.Decoder(CachedResult)
_encoder = msgspec.json.Encoder()


def mkdir_private(path: Path) -> None:
    """Create ``path`` and missing parents as 0o700 (``mkdir(parents=True)`` gives parents the
    default mode); existing directories are left as their owner set them."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another run made it meanwhile
            directory.mkdir(mode=_DIR_MODE)


def prepare_cache_directory(path: Path) -> None:
    """Create the cache directory user-only, before anything else (crawl4ai) creates it with
    the umask's mode, and remove the document spools of runs that were killed."""
    mkdir_private(path)
    spools = path / "spool"
    if not spools.is_dir():
        return
    for stale in spools.glob("spool-*-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0o600) so readers see the old file or the new, never a part."""
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


class ResultCache:
    """LLM results by content key. ``ResultCache(None)`` is the disabled cache (``--no-cache``):
    every ``get`` misses and ``put`` stores nothing."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.stats = CacheStats()

    @classmethod
    def disabled(cls) -> ResultCache:
        return cls(None)

    @classmethod
    def for_config(cls, config: AppConfig) -> ResultCache:
        """The cache ``[output] cache`` / ``cache_dir`` ask for; disabled when cache is off."""
        return cls(config.cache_directory() if config.output.cache else None)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    @staticmethod
    def key_for(chunk: Chunk, llm: LLMConfig, *, attempt: int = 0) -> str:
        """SHA-256 over everything that decides the answer for this chunk's text.

        ``attempt`` 1, 2 ... are the retries of an unfaithful answer, sent at temperature 0.
        """
        parts: list[object] = [
            SCHEMA_VERSION,
            llm.model,
            llm.system_prompt,
            llm.user_prompt,
            llm.temperature if attempt == 0 else 0.0,
            llm.max_tokens,
            chunk.text,
        ]
        if attempt:
            parts.append(["unfaithful retry", attempt])
        # A JSON array: unambiguous where plain concatenation of the parts would not be.
        return hashlib.sha256(_encoder.encode(parts)).hexdigest()

    def has(self, key: str) -> bool:
        """Whether an entry for ``key`` exists (blocking; not counted in ``stats``)."""
        return (
            self.directory is not None
            and _KEY.match(key) is not None
            and self.path_for(key).is_file()
        )

    def path_for(self, key: str) -> Path:
        if self.directory is None:
            raise RuntimeError("the cache is disabled")
        if not _KEY.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.directory / "results" / key[:2] / f"{key}.json"

    # ---------------------------------------------------------------- get

    def _read(self, key: str) -> tuple[CachedResult | None, bool]:
        """The entry, and whether a bad entry was found (and removed)."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except OSError:  # missing, or unreadable: either way a miss
            return None, False
        try:
            entry = _decoder.decode(data)
        except msgspec.DecodeError:
            entry = None
        if entry is None or entry.key != key:
            with contextlib.suppress(OSError):
                path.unlink()
            return None, True
        return entry, False

    async def get(self, key: str) -> CachedResult | None:
        if self.directory is None:
            return None
        entry, corrupt = await trio.to_thread.run_sync(self._read, key)
        if entry is None:
            self.stats.misses += 1
            self.stats.corrupt += corrupt
        else:
            self.stats.hits += 1
        return entry

    # ---------------------------------------------------------------- put

    def _write(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        mkdir_private(path.parent)  # the cache directory, results/ and results/ab/
        write_atomic(path, data)

    async def put(self, key: str, result: ChunkResult) -> bool:
        """Store an LLM answer as soon as it arrives; True when it was written.

        Only answers from the provider are stored (a fallback to the crawled text is retried on
        the next run). A failed write (disk full, permissions) costs only resumability, so it
        is counted in ``stats`` instead of failing the run.
        """
        if self.directory is None or result.source != "llm":
            return False
        entry = CachedResult(
            key=key,
            markdown=result.markdown,
            description=result.description,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        return await self.put_entry(entry)

    async def put_entry(self, entry: CachedResult) -> bool:
        """Store one answer with its verdict (accepted or not); True when it was written."""
        if self.directory is None:
            return False
        key = entry.key
        data = _encoder.encode(entry)
        try:
            await trio.to_thread.run_sync(self._write, key, data)
        except OSError as exc:
            self.stats.write_errors += 1
            self.stats.last_write_error = f"{type(exc).__name__}: {exc}"
            return False
        self.stats.writes += 1
        return True

    # ---------------------------------------------------------------- sweep

    def _sweep(self, older_than: float) -> int:
        assert self.directory is not None
        results = self.directory / "results"
        deadline = time.time() - older_than
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for shard in os.scandir(results):
                if not shard.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(shard.path):
                    if not entry.name.startswith(_TEMP_PREFIX):
                        continue
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime <= deadline:
                            os.unlink(entry.path)
                            removed += 1
        return removed

    async def sweep(self, *, older_than: float = 600.0) -> int:
        """Remove temporary files left by killed runs; returns how many.

        Only files older than ``older_than`` seconds go, so a run sharing the cache keeps the
        file it is writing right now.
        """
        if self.directory is None:
            return 0
        return await trio.to_thread.run_sync(self._sweep, older_than)


# ---------------------------------------------------------------- document spool

_document_encoder = msgspec.msgpack.Encoder()
_document_decoder = msgspec.msgpack.Decoder(Document)


class DocumentSpool:
    """Finished documents on disk, one file each, read back one at a time in input order.

    Keeps memory flat however many pages a run has. Use as ``async with DocumentSpool() as
    spool``: the directory (0o700, under ``parent`` or the system temp dir) is removed on exit.
    """

    def __init__(self, parent: Path | None = None) -> None:
        self._parent = parent
        self._directory: Path | None = None
        self._indices: set[int] = set()

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise RuntimeError("the spool is not open")
        return self._directory

    def open(self) -> None:
        if self._parent is not None:
            mkdir_private(self._parent)
        # The pid in the name lets a later run remove the spool of a killed one.
        prefix = f"spool-{os.getpid()}-"
        self._directory = Path(tempfile.mkdtemp(prefix=prefix, dir=self._parent))  # 0o700

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
            self._indices.clear()

    async def __aenter__(self) -> DocumentSpool:
        await trio.to_thread.run_sync(self.open)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Runs on cancellation too: shield the clean-up, bounded.
        with trio.move_on_after(30, shield=True):
            await trio.to_thread.run_sync(self.close)

    def __len__(self) -> int:
        return len(self._indices)

    def _path(self, index: int) -> Path:
        return self.directory / f"{index:010d}.msgpack"

    def add_sync(self, document: Document) -> None:
        """Store ``document``; a second document with the same index replaces the first."""
        path = self._path(document.index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_document_encoder.encode(document))
        self._indices.add(document.index)

    async def add(self, document: Document) -> None:
        await trio.to_thread.run_sync(self.add_sync, document)

    def __iter__(self) -> Iterator[Document]:
        """The documents in input-index order, each read from disk when it is reached."""
        for index in sorted(self._indices):
            yield _document_decoder.decode(self._path(index).read_bytes())
