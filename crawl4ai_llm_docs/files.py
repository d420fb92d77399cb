"""Private files written whole or not at all: every file the tool writes goes through here.

Files are 0o600 and directories 0o700 (they hold provider answers and crawled pages). A
file is written to a temporary name beside its target and renamed over it when complete, so
a failure, Ctrl-C or ``kill -9`` leaves the old file or the new, never a part.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700
# Temporary names of ``write_atomic``: a ``kill -9`` can leave one, ``ResultCache.sweep`` removes them.
TEMP_PREFIX = ".tmp-"


def mkdir_private(path: Path) -> None:
    """Create ``path`` and missing parents as 0o700 (``mkdir(parents=True)`` gives parents the
    default mode); existing directories are left as their owner set them."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another run made it meanwhile
            directory.mkdir(mode=DIR_MODE)


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
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
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


@contextlib.contextmanager
def atomic_text(path: Path, *, mode: int = FILE_MODE) -> Iterator[TextIO]:
    """A text file that replaces ``path`` only when the ``with`` block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class AtomicBatch:
    """Files that replace their targets together: each is written to a temporary file beside
    its target, and ``commit`` renames them all once every one is complete. Leaving the
    ``with`` block without ``commit`` (an error, Ctrl-C) removes the temporary files, so the
    previous set stays whole.

    ``sync_each`` fsyncs every file as it is closed; without it ``commit`` flushes them all to
    disk with one ``os.sync()`` before renaming (thousands of page files: one flush, not one
    per file)."""

    def __init__(self, *, mode: int = FILE_MODE, sync_each: bool = True) -> None:
        self._mode = mode
        self._sync_each = sync_each
        self._pending: list[tuple[str, Path]] = []

    @contextlib.contextmanager
    def open(self, path: Path) -> Iterator[IO[str]]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._pending.append((temp, path))
        os.fchmod(fd, self._mode)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            if self._sync_each:
                os.fsync(handle.fileno())

    def commit(self) -> None:
        if not self._sync_each and self._pending:
            os.sync()
        for temp, path in self._pending:
            os.replace(temp, path)
        self._pending.clear()

    def discard(self) -> None:
        for temp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        self._pending.clear()

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def scratch_file(directory: Path) -> IO[str]:
    """An unnamed temporary file beside the output (same disk, gone when closed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n", dir=directory)
