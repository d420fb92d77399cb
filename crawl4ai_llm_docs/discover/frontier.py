"""The frontier and the seen set: memory flat in the size of the site.

``SpillQueue`` is a FIFO that keeps at most ``memory_items`` records in memory; the middle
of the queue lives in an append-only file (msgpack records) and is read back in batches, so
a breadth-first crawl of a 100,000-page site holds the same few thousand records as one of
1,000 pages. ``SeenSet`` keeps an 8-byte fingerprint (BLAKE2b) per URL key instead of the
URL: a collision between two of a million URLs has odds of about 1 in 10^7.
"""

from __future__ import annotations

import array
import bisect
import collections
import hashlib
import itertools
import os
import tempfile
from pathlib import Path
from typing import IO

import msgspec
import trio
from msgspec import Struct


class Queued(Struct, frozen=True, kw_only=True, array_like=True):
    url: str
    depth: int
    via: str  # where it was found: "root", "llms.txt", "sitemap <file>", "link <page>"
    lastmod: str = ""
    listed: bool = True  # False: fetched only for its links (an --include/--exclude glob)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Queued)
_LENGTH = 4


class SpillQueue:
    """FIFO of ``Queued`` records: memory for ``2 * memory_items``, the rest on disk."""

    def __init__(self, directory: Path | None = None, *, memory_items: int = 2_000) -> None:
        self._directory = directory
        self._memory_items = memory_items
        self._head: collections.deque[Queued] = collections.deque()
        self._tail: list[Queued] = []
        self._file: IO[bytes] | None = None
        self._read_at = 0
        self._write_at = 0
        self._spilled = 0  # records in the file not yet read back
        self.total = 0  # records ever pushed
        self._file_lock = trio.Lock()
        self._writing = 0  # records on their way to the file

    def __len__(self) -> int:
        return len(self._head) + self._spilled + self._writing + len(self._tail)

    async def push(self, item: Queued) -> None:
        self.total += 1
        if (
            not self._spilled
            and not self._tail
            and not self._writing
            and len(self._head) < self._memory_items
        ):
            self._head.append(item)
            return
        self._tail.append(item)
        if len(self._tail) >= self._memory_items:
            # One task at a time in the file (discovery pushes seeds while it pops them);
            # records being written count as queued ahead of the tail, so order holds.
            async with self._file_lock:
                batch, self._tail = self._tail, []
                if batch:
                    self._writing = len(batch)
                    try:
                        await trio.to_thread.run_sync(self._spill, batch)
                        self._spilled += len(batch)
                    finally:
                        self._writing = 0

    async def pop(self) -> Queued | None:
        if not self._head:
            async with self._file_lock:  # a spill in progress is finished first
                if not self._head:
                    if self._spilled:
                        await trio.to_thread.run_sync(self._refill)
                    elif self._tail:
                        self._head.extend(self._tail)
                        self._tail.clear()
        return self._head.popleft() if self._head else None

    def _open(self) -> IO[bytes]:
        if self._file is None:
            if self._directory is not None:
                self._directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="frontier-", dir=self._directory)
            os.unlink(name)  # gone with the process, even after kill -9
            self._file = os.fdopen(fd, "w+b")
        return self._file

    def _spill(self, batch: list[Queued]) -> None:
        handle = self._open()
        handle.seek(self._write_at)
        for item in batch:
            data = _encoder.encode(item)
            handle.write(len(data).to_bytes(_LENGTH, "big") + data)
        self._write_at = handle.tell()

    def _refill(self) -> None:
        handle = self._open()
        handle.seek(self._read_at)
        for _ in range(min(self._memory_items, self._spilled)):
            size = int.from_bytes(handle.read(_LENGTH), "big")
            self._head.append(_decoder.decode(handle.read(size)))
            self._spilled -= 1
        self._read_at = handle.tell()
        if not self._spilled:  # the file is drained: start it over
            handle.truncate(0)
            self._read_at = self._write_at = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def fingerprint(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class SeenSet:
    """URL keys seen so far, as 8-byte fingerprints: a sorted array plus a small recent set.

    The array costs 8 bytes per URL (a set of Python ints costs about 70); new fingerprints
    collect in a set that is merged into the array once it reaches 1/16 of its size, so the
    merging stays linear overall and lookups are a set probe plus a binary search.
    """

    def __init__(self) -> None:
        self._sorted = array.array("Q")
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def _known(self, value: int) -> bool:
        if value in self._recent:
            return True
        position = bisect.bisect_left(self._sorted, value)
        return position < len(self._sorted) and self._sorted[position] == value

    def __contains__(self, key: str) -> bool:
        return self._known(fingerprint(key))

    def add(self, key: str) -> bool:
        """Add ``key``; True when it was new."""
        value = fingerprint(key)
        if self._known(value):
            return False
        self._recent.add(value)
        if len(self._recent) >= max(_MIN_RECENT, len(self._sorted) // 16):
            merged = sorted(itertools.chain(self._sorted, self._recent))
            self._sorted = array.array("Q", merged)
            self._recent = set()
        return True


_MIN_RECENT = 4096
