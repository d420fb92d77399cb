"""structlog set-up: strict JSON lines, metrics fed, terse console, secrets redacted."""

from __future__ import annotations

import io
import logging
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from rich.console import Console

from crawl4ai_llm_docs.observe.events import EVENT_NAMES, Error, LLMRequest, decode_event
from crawl4ai_llm_docs.observe.logging import LoggingHandle, Redactor, configure_logging
from crawl4ai_llm_docs.observe.metrics import RunMetrics

SECRET = "sk-test-SECRET123"
URL = "https://docs.example.com/guide/install"

# One realistic example of every event, without the fields the processors add.
EXAMPLES: dict[str, dict[str, Any]] = {
    "run_started": {"version": "0.1.0", "urls": 3, "config": {"parallel": {"limit": 4}}},
    "page_crawled": {
        "url": URL,
        "mode": "http",
        "status": 200,
        "elapsed_ms": 412.5,
        "bytes": 48213,
        "title": "Install",
    },
    "page_failed": {
        "url": URL + "/missing",
        "mode": "browser",
        "status": 404,
        "elapsed_ms": 95.0,
        "bytes": 0,
        "reason": "HTTP 404 Not Found",
    },
    "browser_started": {"executable": "/usr/bin/chromium", "pid": 4242, "profile": "/tmp/p"},
    "browser_stopped": {"pid": 4242},
    "llm_request": {
        "url": URL,
        "chunk": 0,
        "attempt": 1,
        "status": 200,
        "outcome": "ok",
        "latency_ms": 1834.2,
        "queued_ms": 12.0,
        "prompt_tokens": 2100,
        "completion_tokens": 900,
    },
    "chunk_cached": {"url": URL, "chunk": 1},
    "faithfulness_fallback": {"url": URL, "chunk": 2, "reason": "output 12% of input"},
    "unfaithful_retry": {"url": URL, "chunk": 2, "attempt": 1, "reason": "output 12% of input"},
    "rate_limit": {
        "reason": "x-ratelimit-remaining-requests is 0",
        "wait_s": 2.5,
        "remaining": 0,
        "reset_s": 2.5,
        "effective_concurrency": 3,
    },
    "circuit_breaker": {"old_state": "closed", "new_state": "open", "reason": "60% errors"},
    "retry": {"url": URL, "reason": "HTTP 429", "delay_s": 1.5, "attempt": 2},
    "metrics": {
        "stage": "llm",
        "crawled": 2,
        "done": 1,
        "total": 3,
        "in_flight": 2,
        "limit": 4,
        "effective_limit": 3,
        "requests_per_s": 0.5,
        "tokens_per_s": 1500.0,
        "error_rate": 0.0,
        "rate_limited": 0,
        "rss_mb": 120.5,
        "eta_s": 4.0,
    },
    "run_finished": {
        "exit_code": 0,
        "wall_s": 12.5,
        "pages": 2,
        "documents": 2,
        "failed_pages": 1,
        "requests": 1,
        "cached_chunks": 1,
        "retries": 1,
        "rate_limited": 0,
        "prompt_tokens": 2100,
        "completion_tokens": 900,
        "latency_p50_ms": 1834.2,
        "latency_p95_ms": 1834.2,
        "latency_p99_ms": 1834.2,
        "peak_rss_mb": 130.0,
        "outputs": ["docs.md"],
        "incomplete": False,
    },
    "batch_created": {"batch_id": "batch_1", "lines": 28, "round": 1},
    "batch_resumed": {"batch_id": "batch_1", "lines": 28},
    "batch_progress": {
        "batch_id": "batch_1",
        "status": "in_progress",
        "completed": 12,
        "failed": 1,
        "total": 28,
        "elapsed_s": 30.5,
    },
    "batch_finished": {"batch_id": "batch_1", "status": "completed", "completed": 27, "failed": 1},
    "batch_result": {
        "url": URL,
        "chunk": 0,
        "source": "llm",
        "prompt_tokens": 0,
        "completion_tokens": 0,
    },
    "index_updated": {
        "path": "/data/docs-index.sqlite",
        "docs_set": "python-3.11",
        "new_pages": 3,
        "changed_pages": 1,
        "unchanged_pages": 16,
        "removed_pages": 0,
        "sections": 42,
    },
    "warning": {"message": "robots.txt could not be read"},
    "error": {"message": "provider unreachable"},
}
LEVELS = {"page_failed": "warning", "warning": "warning", "error": "error"}


def text_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200, color_system=None), out


@pytest.fixture
def handles() -> Iterator[list[LoggingHandle]]:
    made: list[LoggingHandle] = []
    yield made
    for handle in made:
        handle.close()


def configure(handles: list[LoggingHandle], **kwargs: Any) -> LoggingHandle:
    options: dict[str, Any] = {
        "run_id": "run-1",
        "json_file": None,
        "level": "info",
        "secrets": [SECRET],
        "metrics": None,
        "console": None,
    }
    options.update(kwargs)
    handle = configure_logging(**options)
    handles.append(handle)
    return handle


def emit_all() -> None:
    log = structlog.get_logger()
    for name, fields in EXAMPLES.items():
        getattr(log, LEVELS.get(name, "info"))(name, **fields)


def test_every_event_is_one_strict_json_line(tmp_path: Path, handles: list[LoggingHandle]) -> None:
    path = tmp_path / "logs" / "run.jsonl"
    handle = configure(handles, json_file=path)
    emit_all()
    handle.close()

    lines = path.read_bytes().splitlines()
    events = [decode_event(line) for line in lines]
    assert [type(e).__struct_config__.tag for e in events] == list(EXAMPLES)
    assert set(EXAMPLES) == set(EVENT_NAMES)
    assert {e.run_id for e in events} == {"run-1"}
    assert events[0].timestamp.endswith(("Z", "+00:00"))
    assert [e.level for e in events if isinstance(e, Error)] == ["error"]
    request = next(e for e in events if isinstance(e, LLMRequest))
    assert request.latency_ms == 1834.2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_line_is_on_disk_before_the_next_event(
    tmp_path: Path, handles: list[LoggingHandle]
) -> None:
    # What kill -9 would leave: no buffer holds written events.
    path = tmp_path / "run.jsonl"
    configure(handles, json_file=path)
    structlog.get_logger().info("chunk_cached", url=URL, chunk=0)
    assert len(path.read_bytes().splitlines()) == 1
    structlog.get_logger().info("chunk_cached", url=URL, chunk=1)
    assert len(path.read_bytes().splitlines()) == 2


def test_a_contract_violation_is_written_as_an_error_line(
    tmp_path: Path, handles: list[LoggingHandle]
) -> None:
    path = tmp_path / "run.jsonl"
    handle = configure(handles, json_file=path)
    log = structlog.get_logger()
    log.info("page_crawled", url=URL)  # fields missing
    log.info("chunk_cached", url=URL, chunk=0, extra="x")  # unknown field
    log.debug("split_details", parts=3)  # free-form debug: console only
    handle.close()
    events = [decode_event(line) for line in path.read_bytes().splitlines()]
    assert len(events) == 2
    assert all(isinstance(e, Error) for e in events)
    assert "'page_crawled'" in events[0].message  # type: ignore[union-attr]
    assert "'chunk_cached'" in events[1].message  # type: ignore[union-attr]


def test_metrics_are_fed_from_every_event_before_level_filtering(
    handles: list[LoggingHandle],
) -> None:
    metrics = RunMetrics(clock=lambda: 0.0)
    console, out = text_console()
    configure(handles, metrics=metrics, console=console, level="error")
    emit_all()
    structlog.get_logger().debug("llm_request", **{**EXAMPLES["llm_request"], "status": 429})
    snap = metrics.snapshot()
    assert (snap.pages_total, snap.pages_crawled, snap.pages_failed) == (3, 1, 1)
    assert (snap.requests, snap.rate_limited, snap.retries) == (2, 1, 1)
    assert (snap.chunks_cached, snap.fallbacks, snap.rate_limit_waits) == (1, 1, 1)
    assert snap.breaker_state == "open"
    assert snap.prompt_tokens == 4200
    # At level "error" only the error line reaches the console.
    assert out.getvalue().count("\n") == 1
    assert "provider unreachable" in out.getvalue()


def test_console_is_terse_at_info(handles: list[LoggingHandle]) -> None:
    console, out = text_console()
    configure(handles, console=console, level="info")
    emit_all()
    text = out.getvalue()
    assert "crawl failed: " + URL + "/missing (HTTP 404 Not Found" in text
    assert "circuit breaker closed -> open: 60% errors" in text
    assert "retry " + URL + " in 1.5s (attempt 2): HTTP 429" in text
    assert "WARN" in text
    assert "ERROR provider unreachable" in text
    for quiet in ("llm ", "crawled " + URL, "cached ", "metrics", "run finished"):
        assert quiet not in text


def test_debug_level_shows_everything(handles: list[LoggingHandle]) -> None:
    console, out = text_console()
    configure(handles, console=console, level="debug")
    emit_all()
    text = out.getvalue()
    assert "llm " + URL + " #0 attempt 1: ok (status 200, 1834 ms)" in text
    assert "crawled " + URL + " (http, status 200, 412 ms)" in text
    assert len(text.splitlines()) == len(EXAMPLES)


def test_retry_storms_are_summarised_on_the_console(handles: list[LoggingHandle]) -> None:
    now = [0.0]
    console, out = text_console()
    handle = configure(handles, console=console, clock=lambda: now[0])
    log = structlog.get_logger()
    for attempt in range(10):
        log.info("retry", url=URL, reason="HTTP 429", delay_s=1.0, attempt=attempt)
    assert out.getvalue().count("retry ") == 3
    now[0] = 11.0  # the next window: the count of the hidden ones comes first
    log.info("retry", url=URL, reason="HTTP 429", delay_s=1.0, attempt=11)
    log.info("rate_limit", **EXAMPLES["rate_limit"])
    lines = out.getvalue().splitlines()
    assert "... 7 more retry lines" in lines[3]
    assert "retry " + URL in lines[4]
    assert "rate limit: waiting 2.5s" in lines[5]
    for _ in range(5):
        log.info("rate_limit", **EXAMPLES["rate_limit"])
    handle.close()  # flushes the count still pending
    assert "... 3 more rate_limit lines" in out.getvalue().splitlines()[-1]


def test_secrets_never_reach_the_file_or_the_console(
    tmp_path: Path, handles: list[LoggingHandle]
) -> None:
    path = tmp_path / "run.jsonl"
    console, out = text_console()
    handle = configure(handles, json_file=path, console=console, level="debug")
    log = structlog.get_logger()
    other_key = "sk-proj-" + "A1b2C3d4" * 4  # not given as a secret: caught by its shape
    log.info(
        "run_started",
        version="0.1.0",
        urls=1,
        config={"llm": {"api_key": "hunter2-value", "notes": [f"key={SECRET}", {"k": SECRET}]}},
    )
    log.warning("warning", message=f"headers: {{'Authorization': 'Bearer {SECRET}'}}")
    log.warning("warning", message=f"Authorization: Bearer {other_key}")
    try:
        raise RuntimeError(f"401 for key {SECRET}")
    except RuntimeError as exc:
        log.exception("error", message=str(exc))
        log.error("error", message=exc)  # an exception object, not text
    logging.getLogger("httpx").warning("POST with api_key=%s failed", SECRET)
    handle.close()

    written = path.read_text()
    shown = out.getvalue()
    for secret in (SECRET, other_key, "hunter2-value"):
        assert secret not in written
        assert secret not in shown
    assert written.count("[REDACTED]") >= 7
    assert "401 for key [REDACTED]" in shown
    assert "Traceback" in shown  # the traceback went to the console, redacted
    events = [decode_event(line) for line in written.splitlines()]
    assert [type(e).__name__ for e in events] == [
        "RunStarted",
        "Warning_",
        "Warning_",
        "Error",
        "Error",
        "Warning_",
    ]
    assert events[-1].message == "httpx: POST with api_key=[REDACTED] failed"  # type: ignore[union-attr]


def test_redactor_leaves_ordinary_text_alone() -> None:
    redactor = Redactor([SECRET, "ab"])  # too short to be redacted safely
    assert redactor.text("basic usage: bearer token, task-list, about") == (
        "basic usage: bearer token, task-list, about"
    )
    assert redactor.value({"n": 3, "ok": True, "none": None, "t": ("x", SECRET)}) == {
        "n": 3,
        "ok": True,
        "none": None,
        "t": ["x", "[REDACTED]"],
    }


def test_reconfiguring_replaces_the_previous_run(
    tmp_path: Path, handles: list[LoggingHandle]
) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    first = configure(handles, json_file=tmp_path / "first.jsonl")
    structlog.get_logger().info("chunk_cached", url=URL, chunk=0)
    configure(handles, json_file=tmp_path / "second.jsonl", run_id="run-2")
    assert first.closed
    structlog.get_logger().info("chunk_cached", url=URL, chunk=1)
    handles[-1].close()
    assert len((tmp_path / "first.jsonl").read_bytes().splitlines()) == 1
    (line,) = (tmp_path / "second.jsonl").read_bytes().splitlines()
    assert decode_event(line).run_id == "run-2"
    assert root.handlers == before


def test_unknown_level_is_refused(handles: list[LoggingHandle]) -> None:
    with pytest.raises(ValueError, match="verbose"):
        configure(handles, level="verbose")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_stops_the_json_log_but_not_the_run(handles: list[LoggingHandle]) -> None:
    console, out = text_console()
    configure(handles, json_file=Path("/dev/full"), console=console)
    log = structlog.get_logger()
    log.warning("warning", message="first")
    log.warning("warning", message="second")
    lines = out.getvalue().splitlines()
    assert "JSON log stopped: [Errno 28] No space left on device" in lines[0]
    assert [line.split()[-1] for line in lines[1:]] == ["first", "second"]


def test_a_malformed_event_is_shown_and_flagged_but_never_raises(
    tmp_path: Path, handles: list[LoggingHandle]
) -> None:
    path = tmp_path / "run.jsonl"
    console, out = text_console()
    configure(handles, json_file=path, console=console)
    structlog.get_logger().warning("retry", url=URL, delay_s="soon", attempt=1, reason="x")
    assert out.getvalue().split(maxsplit=2)[2].startswith(f"retry url={URL} delay_s=soon")
    (line,) = path.read_bytes().splitlines()
    assert "'retry' does not match the JSON contract" in decode_event(line).message  # type: ignore[union-attr]
