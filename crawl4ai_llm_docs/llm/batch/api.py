"""The provider's Files and Batches endpoints (OpenAI's Batch API), on the run's pooled client.

    GET  /batches?limit=N        probe (404: no Batch API) and finding a batch after a crash
    POST /files                  multipart, purpose=batch; the JSONL is streamed from disk
    POST /batches                input_file_id, endpoint, completion_window=24h, metadata
    GET  /batches/{id}           status and request_counts while polling
    POST /batches/{id}/cancel
    GET  /files/{id}/content     output and error files, streamed to disk

Objects follow OpenAI's API reference (Batch, File, BatchRequestOutput); unknown fields are
ignored so other OpenAI-compatible providers work too. Transient failures (connection errors,
5xx, 429) are retried with backoff; what retrying cannot fix raises ``ProviderFatalError`` or
``BatchApiError``. Error bodies are scrubbed of the API key before they reach any message.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import structlog
import trio

from crawl4ai_llm_docs.errors import ProviderError, ProviderFatalError, UsageError
from crawl4ai_llm_docs.llm.provider.classify import Action, classify
from crawl4ai_llm_docs.llm.provider.client import backoff_delay

log = structlog.get_logger()
T = TypeVar("T")

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
# A transfer may take longer than one request: at least this many bytes per second.
TRANSFER_FLOOR_BPS = 1_000_000
_CHUNK = 1 << 20


class FileObject(msgspec.Struct):
    id: str
    object: str = "file"
    bytes: int | None = None
    filename: str = ""
    purpose: str = ""


class RequestCounts(msgspec.Struct):
    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchErrorItem(msgspec.Struct):
    code: str | None = None
    message: str = ""
    param: str | None = None
    line: int | None = None


class BatchErrors(msgspec.Struct):
    data: list[BatchErrorItem] = []


class Batch(msgspec.Struct):
    id: str
    status: str
    object: str = "batch"
    input_file_id: str = ""
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: RequestCounts | None = None
    errors: BatchErrors | None = None
    created_at: int = 0
    metadata: dict[str, str] | None = None

    @property
    def counts(self) -> RequestCounts:
        return self.request_counts or RequestCounts()


class BatchList(msgspec.Struct):
    data: list[Batch] = []
    has_more: bool = False
    last_id: str | None = None


TERMINAL = frozenset({"completed", "expired", "cancelled", "failed"})


class BatchApiError(ProviderError):
    """A Files/Batches call failed; ``transient`` when waiting and trying again may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BatchNotFoundError(BatchApiError):
    """The provider does not know this batch (deleted, expired long ago, another account)."""


class BatchUnsupportedError(UsageError):
    """The provider has no Batch API (404 on /batches or /files)."""


def unsupported_message(base_url: str, what: str) -> str:
    return (
        f"The provider at {base_url} has no Batch API: {what} answered 404 Not Found. Batch "
        "mode needs OpenAI's /v1/files and /v1/batches endpoints, which many OpenAI-compatible "
        'providers do not offer. Run without --batch (llm.mode = "live") to send ordinary '
        "chat requests instead; finished answers are cached either way."
    )


class BatchApi:
    """Files and Batches calls for one provider; ``http`` carries the auth headers."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        timeout: float,
        secret: str | None = None,
        retries: int = 6,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._secret = (secret or "").encode()
        self._retries = retries
        self._rng = rng or random.Random()

    # ------------------------------------------------------------ plumbing

    def _scrub(self, body: bytes) -> bytes:
        return body.replace(self._secret, b"[REDACTED]") if self._secret else body

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        seconds: float | None = None,
        retries: int | None = None,
    ) -> httpx.Response:
        """One call with retries on transient failures; returns a 2xx or 404 response."""
        retries = self._retries if retries is None else retries
        attempt = 0
        while True:
            attempt += 1
            body = content() if callable(content) else content
            try:
                with trio.fail_after(seconds or self._timeout):
                    response = await self._http.request(
                        method,
                        self.base_url + path,
                        content=msgspec.json.encode(json) if json is not None else body,
                        headers=headers,
                        params=params,
                    )
            except (trio.TooSlowError, httpx.TransportError) as exc:
                reason = "timed out" if isinstance(exc, trio.TooSlowError) else type(exc).__name__
                if attempt > retries:
                    raise BatchApiError(
                        f"{method} {path}: {reason} after {attempt} attempt(s)", transient=True
                    ) from None
            else:
                if response.is_success or response.status_code == 404:
                    return response
                body_bytes = self._scrub(response.content)
                decision = classify(response.status_code, body_bytes, response.headers)
                reason = decision.reason
                if decision.action is Action.FATAL:
                    raise ProviderFatalError(f"The provider refused {method} {path}: {reason}")
                if decision.action is not Action.RETRY or attempt > retries:
                    transient = decision.action is Action.RETRY
                    raise BatchApiError(f"{method} {path} failed: {reason}", transient=transient)
            delay = backoff_delay(attempt, self._rng)
            log.info(
                "retry",
                url=self.base_url + path,
                reason=reason,
                delay_s=round(delay, 3),
                attempt=attempt,
            )
            await trio.sleep(delay)

    def _decode(self, response: httpx.Response, kind: type[T], what: str) -> T:
        if response.status_code == 404:
            raise BatchNotFoundError(f"{what}: 404 Not Found")
        try:
            return msgspec.json.decode(response.content, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BatchApiError(f"{what}: unexpected answer ({str(exc)[:120]})") from None

    # ------------------------------------------------------------ calls

    async def probe(self) -> None:
        """Raise ``BatchUnsupportedError`` when the provider has no ``/batches``."""
        response = await self._send("GET", "/batches", params={"limit": 1})
        if response.status_code == 404:
            raise BatchUnsupportedError(unsupported_message(self.base_url, "GET /v1/batches"))

    async def upload(self, path: Path) -> FileObject:
        """``POST /files`` with ``purpose=batch``; the file is streamed, never held in memory."""
        boundary = uuid.uuid4().hex
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = (await trio.Path(path).stat()).st_size

        async def stream() -> AsyncIterator[bytes]:
            yield head
            async with await trio.open_file(path, "rb") as handle:
                while data := await handle.read(_CHUNK):
                    yield data
            yield tail

        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        response = await self._send(
            "POST",
            "/files",
            content=stream,
            headers=headers,
            seconds=self._timeout + size / TRANSFER_FLOOR_BPS,
        )
        if response.status_code == 404:
            raise BatchUnsupportedError(unsupported_message(self.base_url, "POST /v1/files"))
        return self._decode(response, FileObject, "POST /v1/files")

    async def create(self, input_file_id: str, metadata: Mapping[str, str]) -> Batch:
        body = {
            "input_file_id": input_file_id,
            "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW,
            "metadata": dict(metadata),
        }
        # Not retried blindly: a batch created by an attempt whose answer was lost would be
        # paid twice. The caller looks the batch up by its input file before sending again.
        response = await self._send("POST", "/batches", json=body, retries=0)
        if response.status_code == 404:
            raise BatchUnsupportedError(unsupported_message(self.base_url, "POST /v1/batches"))
        return self._decode(response, Batch, "POST /v1/batches")

    async def retrieve(self, batch_id: str) -> Batch:
        response = await self._send("GET", f"/batches/{batch_id}")
        return self._decode(response, Batch, f"GET /v1/batches/{batch_id}")

    async def cancel(self, batch_id: str) -> Batch:
        response = await self._send("POST", f"/batches/{batch_id}/cancel")
        return self._decode(response, Batch, f"POST /v1/batches/{batch_id}/cancel")

    async def find_by_input(self, input_file_id: str, *, pages: int = 10) -> Batch | None:
        """The batch made from ``input_file_id``, looking through the most recent batches."""
        after: str | None = None
        for _ in range(pages):
            params: dict[str, str | int] = {"limit": 100}
            if after:
                params["after"] = after
            response = await self._send("GET", "/batches", params=params)
            listing = self._decode(response, BatchList, "GET /v1/batches")
            for batch in listing.data:
                if batch.input_file_id == input_file_id:
                    return batch
            if not listing.has_more or not listing.data:
                return None
            after = listing.last_id or listing.data[-1].id
        return None

    async def download(self, file_id: str, target: Path) -> None:
        """``GET /files/{id}/content`` streamed into ``target`` (memory flat in its size).

        A transfer may take long, but never ``timeout`` seconds without a byte arriving.
        """
        what = f"GET /v1/files/{file_id}/content"
        for attempt in range(1, self._retries + 2):
            reason = "no data"
            with trio.CancelScope(deadline=trio.current_time() + self._timeout) as idle:
                try:
                    if await self._download_once(file_id, target, idle, what):
                        return
                except httpx.TransportError as exc:
                    reason = type(exc).__name__
            if idle.cancelled_caught:
                reason = f"no data for {self._timeout:g} s"
            if attempt > self._retries:
                raise BatchApiError(f"{what}: {reason} after {attempt} attempts", transient=True)
            log.info("retry", url=what, reason=reason, delay_s=0.0, attempt=attempt)
            await trio.sleep(backoff_delay(attempt, self._rng))

    async def _download_once(
        self, file_id: str, target: Path, idle: trio.CancelScope, what: str
    ) -> bool:
        """One attempt; True when the whole file arrived, False for a transient failure."""
        url = f"{self.base_url}/files/{file_id}/content"
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                body = self._scrub(await response.aread())
                decision = classify(response.status_code, body, response.headers)
                if decision.action is not Action.RETRY:
                    raise BatchApiError(f"{what}: {decision.reason}")
                return False
            async with await trio.open_file(target, "wb") as handle:
                async for data in response.aiter_bytes(_CHUNK):
                    idle.deadline = trio.current_time() + self._timeout
                    await handle.write(data)
        return True
