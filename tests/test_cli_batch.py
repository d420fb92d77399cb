"""``crawl4ai-llm-docs batch status|cancel`` in-process, against the fake provider in a thread."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from crawl4ai_llm_docs.cli.app import run_cli
from crawl4ai_llm_docs.llm.batch.store import BatchRecord, BatchStore
from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, run_in_thread

KEY = "sk-cli-batch-SECRET-9"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return tmp_path / "xdg-cache" / "crawl4ai-llm-docs"


def create_batch(provider: FakeProvider) -> dict[str, Any]:
    line = (
        b'{"custom_id": "k1", "method": "POST", "url": "/v1/chat/completions", '
        b'"body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}\n'
    )
    with httpx.Client(base_url=provider.base_url) as http:
        uploaded = http.post(
            "/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", line)}
        )
        uploaded.raise_for_status()
        created = http.post(
            "/batches",
            json={
                "input_file_id": uploaded.json()["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        created.raise_for_status()
        batch: dict[str, Any] = created.json()
        return batch


def store_record(cache_dir: Path, provider: FakeProvider, local_id: str, **fields: Any) -> None:
    record = {
        "local_id": local_id,
        "base_url": provider.base_url,
        "model": "m",
        "input_file_id": "file-x",
        "lines": 1,
        "created_at": time.time() - 90,
        **fields,
    }
    BatchStore(cache_dir).save(BatchRecord(**record))


def test_status_and_cancel(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with run_in_thread(make_config({"batch_latency": 30.0})) as provider:
        assert run_cli(["batch", "status"]) == 0
        assert "No stored batches" in capsys.readouterr().out
        assert run_cli(["batch", "cancel", "--all"]) == 0
        assert "nothing to cancel" in capsys.readouterr().out

        running = create_batch(provider)
        store_record(cache_dir, provider, "running", batch_id=running["id"])
        store_record(cache_dir, provider, "uploaded")
        store_record(cache_dir, provider, "unknown", batch_id="batch_unknown")

        assert run_cli(["batch", "status"]) == 0
        out = capsys.readouterr().out
        assert "3 stored batch(es)" in out
        assert f"{running['id']}  validating  0/1 done, 0 failed" in out
        assert "(not created; file file-x)  uploaded; the next run creates the batch" in out
        assert "batch_unknown  status unknown:" in out
        assert "1 lines, 90 s old, m at" in out
        assert KEY not in out

        assert run_cli(["batch", "cancel", running["id"]]) == 0
        assert f"Cancelling {running['id']} (now cancelling" in capsys.readouterr().out

        # The unknown batch cannot be cancelled; the uploaded one is just forgotten.
        assert run_cli(["batch", "cancel", "--all"]) == 1
        out = capsys.readouterr().out
        assert "Could not cancel batch_unknown" in out
        assert "Removed the uncreated batch of file file-x" in out
        remaining = {r.local_id for r in BatchStore(cache_dir).load_all()}
    assert remaining == {"running", "unknown"}


def test_cancel_needs_ids_or_all(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["batch", "cancel"]) == 2
    assert run_cli(["batch", "cancel", "batch_nope"]) == 2
    assert "No stored batch batch_nope" in capsys.readouterr().err
