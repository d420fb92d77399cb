"""The spool: finished documents on disk until the outputs are assembled from them, in order."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import msgspec
import trio

from crawl4ai_llm_docs.files import mkdir_private
from crawl4ai_llm_docs.models import Document

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
