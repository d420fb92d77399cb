"""The fake provider's Batch API itself: objects, states and refusals, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, run_in_thread


def jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(msgspec.json.encode(line) + b"\n" for line in lines)


def request(
    custom_id: str, content: str = "<document>\n# T\n\nBody.\n</document>"
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": content}]},
    }


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with run_in_thread(make_config({"batch_latency": 0.4})) as handle:
        yield handle


def upload(http: httpx.Client, data: bytes, purpose: str = "batch") -> httpx.Response:
    return http.post("/files", data={"purpose": purpose}, files={"file": ("in.jsonl", data)})


def create(http: httpx.Client, file_id: str, **fields: Any) -> httpx.Response:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    return http.post("/batches", json={**body, **fields})


def wait_for(http: httpx.Client, batch_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        batch: dict[str, Any] = http.get(f"/batches/{batch_id}").json()
        if batch["status"] == status:
            return batch
        time.sleep(0.05)
    raise AssertionError(f"{batch_id} never reached {status}")


def test_a_batch_goes_through_its_states_and_answers_every_line(provider: FakeProvider) -> None:
    with httpx.Client(base_url=provider.base_url) as http:
        file = upload(http, jsonl(*(request(f"id-{n}") for n in range(6)))).json()
        assert (file["object"], file["purpose"], file["filename"]) == ("file", "batch", "in.jsonl")
        assert http.get(f"/files/{file['id']}").json()["bytes"] == file["bytes"]
        batch = create(http, file["id"], metadata={"k": "v"}).json()
        assert (batch["object"], batch["status"], batch["metadata"]) == (
            "batch",
            "validating",
            {"k": "v"},
        )
        assert batch["request_counts"] == {"total": 6, "completed": 0, "failed": 0}
        seen = {wait_for(http, batch["id"], s)["status"] for s in ("in_progress", "completed")}
        done = http.get(f"/batches/{batch['id']}").json()
        output = http.get(f"/files/{done['output_file_id']}/content").content
        listing = http.get("/batches", params={"limit": 1}).json()
    assert seen == {"in_progress", "completed"}
    assert done["error_file_id"] is None
    assert done["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
    assert done["completed_at"] is not None
    lines = [msgspec.json.decode(line) for line in output.splitlines()]
    assert sorted(line["custom_id"] for line in lines) == [f"id-{n}" for n in range(6)]
    body = lines[0]["response"]["body"]
    assert lines[0]["response"]["status_code"] == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("<!-- description:")
    assert listing["data"][0]["id"] == batch["id"]
    assert listing["has_more"] is False


def test_bad_lines_fail_validation_with_their_line_numbers(provider: FakeProvider) -> None:
    bad = jsonl(request("a"), request("a"), {**request("c"), "url": "/v1/embeddings"})
    with httpx.Client(base_url=provider.base_url) as http:
        file = upload(http, bad + b"not json\n").json()
        batch = wait_for(http, create(http, file["id"]).json()["id"], "failed")
    errors = batch["errors"]["data"]
    assert [e["line"] for e in errors] == [2, 3, 4]
    assert "used more than once" in errors[0]["message"]
    assert batch["failed_at"] is not None


def test_cancel_and_expiry(provider: FakeProvider) -> None:
    with httpx.Client(base_url=provider.base_url) as http:
        file = upload(http, jsonl(*(request(f"id-{n}") for n in range(4)))).json()
        running = create(http, file["id"]).json()
        cancelling = http.post(f"/batches/{running['id']}/cancel").json()
        assert cancelling["status"] == "cancelling"
        assert wait_for(http, running["id"], "cancelled")["cancelled_at"] is not None
        provider.update(batch_expire_first=3)  # the next batch is the second one: it expires
        expired = wait_for(http, create(http, file["id"]).json()["id"], "expired")
        errors = http.get(f"/files/{expired['error_file_id']}/content").content.splitlines()
        refused = http.post(f"/batches/{expired['id']}/cancel")
    assert expired["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    assert [msgspec.json.decode(e)["error"]["code"] for e in errors] == ["batch_expired"] * 2
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda h: upload(h, b"{}", purpose="fine-tune"), 400),
        (lambda h: h.post("/files", data={"purpose": "batch"}), 400),
        (lambda h: h.post("/files", content=b"raw"), 400),
        (lambda h: h.get("/files/file-none"), 404),
        (lambda h: h.get("/files/file-none/content"), 404),
        (lambda h: create(h, "file-none"), 400),
        (lambda h: h.post("/batches", content=b"{"), 400),
        (lambda h: h.get("/batches/batch-none"), 404),
        (lambda h: h.post("/batches/batch-none/cancel"), 404),
        (lambda h: h.delete("/batches"), 404),
    ],
)
def test_refusals(provider: FakeProvider, call: Any, status: int) -> None:
    with httpx.Client(base_url=provider.base_url) as http:
        answer = call(http)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()


def test_endpoint_window_key_and_switch(provider: FakeProvider) -> None:
    with httpx.Client(base_url=provider.base_url) as http:
        file = upload(http, jsonl(request("a"))).json()
        assert create(http, file["id"], endpoint="/v1/embeddings").status_code == 400
        assert create(http, file["id"], completion_window="1h").status_code == 400
        provider.update(require_api_key="sk-right")
        assert http.get("/batches").status_code == 401
        provider.update(require_api_key=None, batch_api=False)
        assert http.get("/batches").status_code == 404
        assert upload(http, b"{}").status_code == 404
