"""Batches this machine has sent, kept in the cache directory so no batch is ever paid twice.

Layout: ``<cache_dir>/batches/<local_id>.json`` (a ``BatchRecord``) and
``<local_id>.keys`` (the cache key of every line of the batch's input file, one per line, in
line order: the provider's validation errors name line numbers). The keys file is complete and
fsynced before the input file is uploaded; the record is written (atomically, like cache
entries) right after the upload and again the moment the provider answers ``POST /v1/batches``
with the batch id. A run that is killed, or interrupted, and started again finds the record
and polls the same batch instead of sending its chunks again. The record is removed once every
answer of the batch is in the result cache (or handed downstream).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from crawl4ai_llm_docs.files import mkdir_private, write_atomic

_KEYS_TEMP_SUFFIX = ".keys.tmp"


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What is needed to find one batch again: where it runs, its ids and its size."""

    local_id: str
    base_url: str
    model: str
    input_file_id: str
    batch_id: str | None = None  # None: uploaded, ``POST /v1/batches`` not yet answered
    lines: int
    created_at: float  # unix seconds, when the input file was uploaded
    round: int = 1  # 1 for first sends; higher for lines sent again


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BatchRecord)


def new_local_id() -> str:
    return uuid.uuid4().hex[:16]


class BatchStore:
    """The records under ``<cache_dir>/batches``; every method is blocking (use a thread)."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / "batches"

    def record_path(self, local_id: str) -> Path:
        return self.directory / f"{local_id}.json"

    def keys_path(self, local_id: str) -> Path:
        return self.directory / f"{local_id}.keys"

    def open_keys(self, local_id: str) -> IO[str]:
        """A new keys file, written while the input file is; ``commit_keys`` makes it final."""
        mkdir_private(self.directory)
        fd = os.open(
            self.directory / f"{local_id}{_KEYS_TEMP_SUFFIX}",
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            0o600,
        )
        return os.fdopen(fd, "w", encoding="ascii")

    def commit_keys(self, local_id: str, handle: IO[str]) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(self.directory / f"{local_id}{_KEYS_TEMP_SUFFIX}", self.keys_path(local_id))

    def discard_keys(self, local_id: str, handle: IO[str]) -> None:
        handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self.directory / f"{local_id}{_KEYS_TEMP_SUFFIX}")

    def save(self, record: BatchRecord) -> None:
        mkdir_private(self.directory)
        write_atomic(self.record_path(record.local_id), _encoder.encode(record))

    def load_all(self) -> list[BatchRecord]:
        """Every readable record, oldest first; unreadable files are skipped, never fatal."""
        records: list[BatchRecord] = []
        if not self.directory.is_dir():
            return records
        for path in self.directory.glob("*.json"):
            try:
                records.append(_decoder.decode(path.read_bytes()))
            except (OSError, msgspec.DecodeError):
                continue
        records.sort(key=lambda record: record.created_at)
        return records

    def find(self, batch_or_local_id: str) -> BatchRecord | None:
        for record in self.load_all():
            if batch_or_local_id in (record.local_id, record.batch_id):
                return record
        return None

    def remove(self, local_id: str) -> None:
        for path in (self.record_path(local_id), self.keys_path(local_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def iter_keys(self, local_id: str) -> Iterator[str]:
        """The batch's keys in line order (line 1 first); nothing when the file is gone."""
        try:
            handle = self.keys_path(local_id).open(encoding="ascii")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                yield line.rstrip("\n")

    def key_at(self, local_id: str, line: int) -> str | None:
        """The key on 1-based ``line`` of the input file, or None."""
        for number, key in enumerate(self.iter_keys(local_id), start=1):
            if number == line:
                return key
        return None

    def sweep_temp(self, older_than: float = 86_400.0) -> None:
        """Remove keys files of input files that were never uploaded (the run was killed)."""
        deadline = time.time() - older_than
        with contextlib.suppress(OSError):
            for path in self.directory.glob(f"*{_KEYS_TEMP_SUFFIX}"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime <= deadline:
                        path.unlink()
