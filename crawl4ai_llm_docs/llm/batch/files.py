"""Files of batch mode on this machine: the chunk spool, the JSONL being written, result lines.

The spool also keeps the result of a split chunk's first half until its second half's is in.

Memory stays flat in the number of lines: a chunk's text goes to an append-only spool file the
moment it arrives (the run keeps only its position), and each request line is written to the
JSONL input file as it is made; neither is ever built in memory. Both live in a private work
directory under ``<cache_dir>/spool`` named like the document spools, so a killed run's files
are removed by the next run (``cache.prepare_cache_directory``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import IO

import msgspec

from crawl4ai_llm_docs.files import mkdir_private
from crawl4ai_llm_docs.llm.batch.store import BatchStore
from crawl4ai_llm_docs.models import Chunk, ChunkResult

# OpenAI's limits for one batch input file.
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024


_result_encoder = msgspec.msgpack.Encoder()
_result_decoder = msgspec.msgpack.Decoder(ChunkResult)


class ChunkRef(msgspec.Struct, frozen=True, kw_only=True):
    """A chunk without its text: where the text is in the spool file."""

    page_index: int
    chunk_index: int
    chunk_count: int
    url: str
    title: str
    tokens: int
    offset: int
    length: int


class WorkDir:
    """The run's private directory: the chunk spool and the JSONL files being written."""

    def __init__(self, cache_dir: Path) -> None:
        parent = cache_dir / "spool"
        mkdir_private(parent)
        # The pid in the name lets a later run remove what a killed one left.
        self.path = Path(tempfile.mkdtemp(prefix=f"spool-{os.getpid()}-batch-", dir=parent))
        self._chunks = (self.path / "chunks.bin").open("w+b")
        self._end = 0

    def _append(self, data: bytes) -> int:
        """Write ``data`` at the end of the spool; returns where it starts."""
        offset = self._end
        self._chunks.seek(offset)
        self._chunks.write(data)
        self._end += len(data)
        return offset

    def add_chunk(self, chunk: Chunk) -> ChunkRef:
        data = chunk.text.encode()
        return ChunkRef(
            page_index=chunk.page_index,
            chunk_index=chunk.chunk_index,
            chunk_count=chunk.chunk_count,
            url=chunk.url,
            title=chunk.title,
            tokens=chunk.tokens,
            offset=self._append(data),
            length=len(data),
        )

    def add_result(self, result: ChunkResult) -> tuple[int, int]:
        """A half's result, kept until the other half's is in (its position and size)."""
        data = _result_encoder.encode(result)
        return self._append(data), len(data)

    def result(self, where: tuple[int, int]) -> ChunkResult:
        self._chunks.flush()
        offset, length = where
        return _result_decoder.decode(os.pread(self._chunks.fileno(), length, offset))

    def chunk(self, ref: ChunkRef) -> Chunk:
        self._chunks.flush()
        text = os.pread(self._chunks.fileno(), ref.length, ref.offset).decode()
        return Chunk(
            page_index=ref.page_index,
            chunk_index=ref.chunk_index,
            chunk_count=ref.chunk_count,
            url=ref.url,
            title=ref.title,
            text=text,
            tokens=ref.tokens,
        )

    def close(self) -> None:
        self._chunks.close()
        shutil.rmtree(self.path, ignore_errors=True)


class InputFile:
    """One batch's JSONL input file and its keys file, written line by line."""

    def __init__(
        self, work: WorkDir, store: BatchStore, local_id: str, *, max_lines: int, max_bytes: int
    ) -> None:
        self.local_id = local_id
        self.path = work.path / f"{local_id}.jsonl"
        self._jsonl: IO[bytes] = self.path.open("wb")
        self._store = store
        self._keys = store.open_keys(local_id)
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self.lines = 0
        self.bytes = 0

    def fits(self, line: bytes) -> bool:
        """Whether ``line`` may still go into this file (an empty file takes any line)."""
        if self.lines == 0:
            return True
        return self.lines < self._max_lines and self.bytes + len(line) + 1 <= self._max_bytes

    def add(self, key: str, line: bytes) -> None:
        self._jsonl.write(line)
        self._jsonl.write(b"\n")
        self._keys.write(key + "\n")
        self.lines += 1
        self.bytes += len(line) + 1

    def commit(self) -> None:
        """Finish both files; the keys file is durable before the upload starts."""
        self._jsonl.close()
        self._store.commit_keys(self.local_id, self._keys)

    def discard(self) -> None:
        self._jsonl.close()
        self._store.discard_keys(self.local_id, self._keys)
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- output and error files


class LineResponse(msgspec.Struct):
    status_code: int = 0
    body: msgspec.Raw = msgspec.Raw(b"null")


class LineError(msgspec.Struct):
    code: str | None = None
    message: str = ""


class OutputLine(msgspec.Struct):
    """One line of a batch's output or error file (OpenAI's BatchRequestOutput)."""

    custom_id: str
    response: LineResponse | None = None
    error: LineError | None = None


output_line_decoder = msgspec.json.Decoder(OutputLine)


def request_line(key: str, body: bytes, endpoint: str) -> bytes:
    """One JSONL line: the cache key as custom_id, so answers join back in any order."""
    return msgspec.json.encode(
        {"custom_id": key, "method": "POST", "url": endpoint, "body": msgspec.Raw(body)}
    )
