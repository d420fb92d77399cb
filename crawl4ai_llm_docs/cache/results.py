"""Content-addressed cache of LLM results, so a run resumes after a crash or Ctrl-C.

Cache layout: ``<cache_dir>/results/ab/abcdef....json``, one msgspec JSON file per chunk
result, named by the SHA-256 of everything that decides the answer (``ResultCache.key_for``).
An entry keeps the answer with the faithfulness check's verdict on it, rejected answers
too, so a re-run sends nothing for a chunk already judged. Each entry is written to a
temporary file in the same directory, fsynced, then renamed over the final name
(``files.write_atomic``), so a ``kill -9`` leaves either the whole entry or none (plus, at worst, a
``.tmp-*`` file that ``ResultCache.sweep`` removes). Entries hold provider responses: files are
0o600 and the directories this module creates 0o700. An entry that does not decode is a miss
and is deleted; reading the cache never fails a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from pathlib import Path

import msgspec
import trio

from crawl4ai_llm_docs.config import AppConfig, LLMConfig
from crawl4ai_llm_docs.files import TEMP_PREFIX, mkdir_private, write_atomic
from crawl4ai_llm_docs.models import Chunk, ChunkResult

# Bump when the prompt handling or the entry format changes meaning: old entries become misses.
SCHEMA_VERSION = 1
# Edit mode's entries hold the chunk with a script applied: bump when the numbering of lines
# or the applying of scripts (llm/edits.py) changes meaning. Rewrite keys do not include it.
EDIT_RULES_VERSION = 1

_KEY = re.compile(r"^[0-9a-f]{64}$")


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
        Edit mode (``llm.cleaning = "edit"``) has keys of its own: its prompt, its budget and
        the version of its rules instead of the rewrite prompt and ``max_tokens``.
        """
        temperature = llm.temperature if attempt == 0 else 0.0
        parts: list[object] = [
            SCHEMA_VERSION,
            llm.model,
            llm.system_prompt,
            llm.user_prompt,
            temperature,
            llm.max_tokens,
            chunk.text,
        ]
        if llm.cleaning == "edit":
            parts = [
                SCHEMA_VERSION,
                llm.model,
                ["edit", EDIT_RULES_VERSION],
                llm.edit_system_prompt,
                llm.user_prompt,
                temperature,
                llm.edit_max_tokens,
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
                    if not entry.name.startswith(TEMP_PREFIX):
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
