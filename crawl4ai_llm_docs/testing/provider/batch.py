"""The fake provider's Batch API: `/v1/files` and `/v1/batches`, shaped like OpenAI's.

Routes: `POST /v1/files` (multipart, purpose=batch), `GET /v1/files/{id}`,
`GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches` (newest first, `limit`,
`after`), `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`, and `GET /_batches` (the
counters and every batch, for tests). With `batch_api = false` every one of them is a 404,
like a provider without a Batch API.

A batch's life is driven by the clock, measured from its creation in units of
`batch_latency` (L): `validating` for 0.1 L (a bad input line makes it `failed`, with the
line numbers in `errors`), `in_progress` until 0.8 L (`request_counts.completed` growing),
`finalizing` until 0.9 L, then `completed`. The first `batch_expire_first` batches become
`expired` at 0.8 L with half their lines answered; the rest are in the error file with code
`batch_expired`. A cancel makes it `cancelling` for 0.1 L, then `cancelled`, with the lines
done by then in the output. Output lines are shuffled. `batch_error_rate` of the lines sent
for the first time are answered with HTTP 500 in the error file; sent again they succeed.
Answers are those of the chat endpoint (`provider_answers`).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hypercorn.typing import ASGISendCallable, HTTPScope

from crawl4ai_llm_docs.testing.provider import errors
from crawl4ai_llm_docs.testing.provider.answers import ChatRequest
from crawl4ai_llm_docs.testing.provider.batch_io import (
    answer_line,
    error_line,
    expired_line,
    missing,
    multipart,
    query,
    send_json,
    send_raw,
)
from crawl4ai_llm_docs.testing.provider.state import ProviderState

ENDPOINTS = ("/v1/chat/completions",)


class BatchStats(msgspec.Struct, kw_only=True):
    files_uploaded: int = 0
    batches_created: int = 0
    batches_cancelled: int = 0
    lines_received: int = 0
    lines_answered: int = 0
    lines_failed: int = 0
    lines_expired: int = 0
    downloads: int = 0


@dataclass
class _File:
    id: str
    data: bytes
    purpose: str
    filename: str
    created_at: int

    def object(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass
class _Batch:
    id: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: int  # unix seconds
    started: float  # provider clock
    lines: list[tuple[str, bytes]]  # (custom_id, body JSON)
    invalid: list[dict[str, Any]]
    expire: bool
    failing: set[str]
    cancel_at: float | None = None
    final: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"completed": 0, "failed": 0})


class _Line(msgspec.Struct):
    custom_id: str
    method: str
    url: str
    body: msgspec.Raw


class BatchService:
    """Files and batches of one running fake provider (state lives on the server's loop)."""

    def __init__(self, state: ProviderState) -> None:
        self.state = state
        self.stats = BatchStats()
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self._seen: set[str] = set()  # custom_ids sent before: their errors are transient
        self._ids = itertools.count(1)

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith(("/v1/files", "/v1/batches", "/_batches"))

    async def route(
        self, scope: HTTPScope, body: bytes, send: ASGISendCallable, *, check_key: Any
    ) -> None:
        method, path = scope["method"], scope["path"]
        if path == "/_batches":
            for batch in self.batches.values():
                self._advance(batch)
            listing = [self._object(b) for b in self.batches.values()]
            await send_json(send, 200, {"stats": self.stats, "batches": listing})
            return
        if not self.state.config.batch_api:
            await send_json(send, *errors.invalid_url(method, path))
            return
        refused = check_key(self.state.config, scope)
        if refused is not None:
            await send_json(send, *refused)
            return
        parts = path.strip("/").split("/")[1:]  # after "v1"
        params = query(scope)
        if parts == ["files"] and method == "POST":
            await send_json(send, *self._upload(scope, body))
        elif parts[:1] == ["files"] and len(parts) == 2 and method == "GET":
            found = self.files.get(parts[1])
            await send_json(
                send, *(missing("file", parts[1]) if found is None else (200, found.object()))
            )
        elif parts[:1] == ["files"] and len(parts) == 3 and parts[2] == "content":
            found = self.files.get(parts[1])
            if found is None:
                await send_json(send, *missing("file", parts[1]))
            else:
                self.stats.downloads += 1
                await send_raw(send, found.data)
        elif parts == ["batches"] and method == "POST":
            await send_json(send, *self._create(body))
        elif parts == ["batches"] and method == "GET":
            await send_json(send, 200, self._list(params))
        elif parts[:1] == ["batches"] and len(parts) == 2 and method == "GET":
            wanted = self.batches.get(parts[1])
            if wanted is None:
                await send_json(send, *missing("batch", parts[1]))
            else:
                await send_json(send, 200, self._object(wanted))
        elif parts[:1] == ["batches"] and parts[2:] == ["cancel"] and method == "POST":
            await send_json(send, *self._cancel(parts[1]))
        else:
            await send_json(send, *errors.invalid_url(method, path))

    # ------------------------------------------------------------ files

    def _upload(self, scope: HTTPScope, body: bytes) -> errors.ErrorResponse:
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        fields = multipart(body, content_type)
        if fields is None:
            return errors.invalid_request("Expected a multipart/form-data body.")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose != "batch":
            return errors.invalid_request(
                f"Invalid purpose {purpose!r}; expected 'batch'.", "purpose"
            )
        if "file" not in fields:
            return errors.invalid_request("Missing the 'file' field.", "file")
        filename, data = fields["file"]
        found = _File(
            id=f"file-fake{next(self._ids):06d}",
            data=data,
            purpose=purpose,
            filename=filename or "upload.jsonl",
            created_at=int(time.time()),
        )
        self.files[found.id] = found
        self.stats.files_uploaded += 1
        return 200, found.object()

    def _new_file(self, lines: list[bytes], purpose: str) -> str | None:
        if not lines:
            return None
        found = _File(
            id=f"file-fake{next(self._ids):06d}",
            data=b"".join(line + b"\n" for line in lines),
            purpose=purpose,
            filename=f"{purpose}.jsonl",
            created_at=int(time.time()),
        )
        self.files[found.id] = found
        return found.id

    # ------------------------------------------------------------ batches

    def _create(self, body: bytes) -> errors.ErrorResponse:
        try:
            request = msgspec.json.decode(body, type=dict[str, Any])
        except msgspec.DecodeError:
            return errors.invalid_json()
        source = self.files.get(str(request.get("input_file_id")))
        if source is None:
            return errors.invalid_request("No such input file.", "input_file_id")
        endpoint = request.get("endpoint")
        if endpoint not in ENDPOINTS:
            return errors.invalid_request(f"Unsupported endpoint {endpoint!r}.", "endpoint")
        if request.get("completion_window") != "24h":
            return errors.invalid_request("completion_window must be '24h'.", "completion_window")
        lines, invalid = self._validate(source.data, str(endpoint))
        config = self.state.config
        fresh = [custom_id for custom_id, _ in lines if custom_id not in self._seen]
        self.state.rng.shuffle(fresh)
        failing = set(fresh[: round(config.batch_error_rate * len(fresh))])
        self._seen.update(custom_id for custom_id, _ in lines)
        batch = _Batch(
            id=f"batch_fake{next(self._ids):06d}",
            input_file_id=source.id,
            metadata=request.get("metadata"),
            created_at=int(time.time()),
            started=self.state.now(),
            lines=lines,
            invalid=invalid,
            expire=self.stats.batches_created < config.batch_expire_first,
            failing=failing,
        )
        self.batches[batch.id] = batch
        self.stats.batches_created += 1
        self.stats.lines_received += len(lines)
        return 200, self._object(batch)

    def _validate(
        self, data: bytes, endpoint: str
    ) -> tuple[list[tuple[str, bytes]], list[dict[str, Any]]]:
        lines: list[tuple[str, bytes]] = []
        invalid: list[dict[str, Any]] = []
        seen: set[str] = set()
        models = self.state.config.models
        for number, raw in enumerate(data.splitlines(), start=1):
            problem: str | None = None
            try:
                line = msgspec.json.decode(raw, type=_Line)
                chat = msgspec.json.decode(line.body, type=ChatRequest)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                problem = f"Invalid request line: {error}"
            else:
                if line.custom_id in seen:
                    problem = f"The custom_id {line.custom_id!r} is used more than once."
                elif line.method != "POST" or line.url != endpoint:
                    problem = f"Expected POST {endpoint}, got {line.method} {line.url}."
                elif models and chat.model not in models:
                    problem = (
                        f"The model `{chat.model}` does not exist or you do not have access to it."
                    )
                seen.add(line.custom_id)
                lines.append((line.custom_id, bytes(line.body)))
            if problem is not None and len(invalid) < 10:
                invalid.append(
                    {"code": "invalid_request", "message": problem, "param": None, "line": number}
                )
        return lines, invalid

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        newest = list(reversed(self.batches.values()))
        if "after" in query:
            ids = [b.id for b in newest]
            newest = newest[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
        limit = max(1, min(100, int(query.get("limit", "20") or 20)))
        page = newest[:limit]
        for batch in page:
            self._advance(batch)
        return {
            "object": "list",
            "data": [self._object(b) for b in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(newest) > limit,
        }

    def _cancel(self, batch_id: str) -> errors.ErrorResponse:
        batch = self.batches.get(batch_id)
        if batch is None:
            return missing("batch", batch_id)
        status = self._advance(batch)
        if status in ("completed", "expired", "failed"):
            return errors.invalid_request(f"Cannot cancel a batch with status {status}.")
        if batch.cancel_at is None:
            batch.cancel_at = self.state.now()
            self.stats.batches_cancelled += 1
        return 200, self._object(batch)

    # ------------------------------------------------------------ the clock

    def _progress(self, batch: _Batch, at: float) -> float:
        """Share of the lines done at provider time ``at`` (0 before in_progress, 1 after)."""
        latency = max(self.state.config.batch_latency, 1e-6)
        return min(1.0, max(0.0, (at - batch.started - 0.1 * latency) / (0.7 * latency)))

    def _advance(self, batch: _Batch) -> str:
        if batch.final is not None:
            return batch.final
        latency = self.state.config.batch_latency
        now = self.state.now()
        elapsed = now - batch.started
        if batch.invalid:
            if elapsed < 0.1 * latency:
                return "validating"
            batch.final = "failed"
            return batch.final
        if batch.cancel_at is not None:
            if now < batch.cancel_at + 0.1 * latency:
                return "cancelling"
            self._finish(batch, "cancelled", self._progress(batch, batch.cancel_at))
            return "cancelled"
        if elapsed < 0.1 * latency:
            return "validating"
        if elapsed < 0.8 * latency:
            done = math.floor(self._progress(batch, now) * len(batch.lines))
            batch.counts = {"completed": done, "failed": 0}
            return "in_progress"
        if batch.expire:
            self._finish(batch, "expired", 0.5)
            return "expired"
        if elapsed < 0.9 * latency:
            batch.counts = {"completed": len(batch.lines), "failed": 0}
            return "finalizing"
        self._finish(batch, "completed", 1.0)
        return "completed"

    def _finish(self, batch: _Batch, status: str, share: float) -> None:
        """Write the output and error files once, as the batch reaches its final state."""
        done = math.floor(share * len(batch.lines))
        answered: list[bytes] = []
        failed: list[bytes] = []
        for number, (custom_id, body) in enumerate(batch.lines):
            if number >= done:
                if status == "expired":
                    failed.append(expired_line(custom_id, f"batch_req_{batch.id}_{number}"))
                    self.stats.lines_expired += 1
                continue
            request_id = f"batch_req_{batch.id}_{number}"
            if custom_id in batch.failing:
                failed.append(error_line(custom_id, request_id))
                self.stats.lines_failed += 1
            else:
                answered.append(answer_line(self.state, custom_id, request_id, body))
                self.stats.lines_answered += 1
        self.state.rng.shuffle(answered)
        self.state.rng.shuffle(failed)
        batch.output_file_id = self._new_file(answered, "batch_output")
        batch.error_file_id = self._new_file(failed, "batch_output")
        batch.counts = {"completed": len(answered), "failed": len(failed)}
        batch.final = status

    def _object(self, batch: _Batch) -> dict[str, Any]:
        status = self._advance(batch)
        latency = self.state.config.batch_latency
        at = batch.created_at
        errors_field = {"object": "list", "data": batch.invalid} if batch.invalid else None
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": ENDPOINTS[0],
            "errors": errors_field,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": at,
            "in_progress_at": at if status not in ("validating", "failed") else None,
            "expires_at": at + 86_400,
            "finalizing_at": at + math.ceil(0.8 * latency)
            if status in ("finalizing", "completed")
            else None,
            "completed_at": at + math.ceil(latency) if status == "completed" else None,
            "failed_at": at if status == "failed" else None,
            "expired_at": at + math.ceil(latency) if status == "expired" else None,
            "cancelling_at": at if batch.cancel_at is not None else None,
            "cancelled_at": at if status == "cancelled" else None,
            "request_counts": {"total": len(batch.lines), **batch.counts},
            "metadata": batch.metadata,
        }
