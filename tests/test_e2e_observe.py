"""Observability end to end: the JSON event log of a real run, the live view on a real
terminal, and the fake API key nowhere in anything the run leaves behind."""

from __future__ import annotations

import collections
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from e2e_support import API_KEY, HANG_GUARD_S, files_under, running

from crawl4ai_llm_docs.observe.events import (
    LLMRequest,
    Metrics,
    PageCrawled,
    PageFailed,
    Retry,
    RunFinished,
    RunStarted,
    decode_event,
)
from crawl4ai_llm_docs.testing.site.server import SiteConfig

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


def test_json_log_decodes_strictly_and_matches_the_provider(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "run.jsonl"
    # A failing page and injected 5xx answers make page_failed, retry and failed-attempt
    # events; latency makes the run outlast a few 1 s metrics intervals.
    site = SiteConfig(pages=8, statuses={"/docs/page-005.html": 404})
    provider = {"latency": 0.5, "error_rate": 0.25, "error_codes": [500, 503], "seed": 3}
    with running(tmp_path, site=site, provider=provider) as setup:
        result = setup.run(
            *setup.args(
                "--max-concurrent", "2", "--log-json", str(log_file), "--progress-interval", "1"
            )
        )
        stats = setup.provider.stats()
    assert result.code == 1, result  # the 404 page

    lines = log_file.read_bytes().splitlines()
    events = [decode_event(line) for line in lines]  # strict: any stray field fails here
    kinds = collections.Counter(type(event).__name__ for event in events)
    started = [e for e in events if isinstance(e, RunStarted)]
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert len(started) == 1
    assert len(finished) == 1
    assert isinstance(events[0], RunStarted)
    assert started[0].urls == 8
    assert len({event.run_id for event in events}) == 1

    requests = [e for e in events if isinstance(e, LLMRequest)]
    assert stats.injected.get("error", 0) > 0  # the seed does inject failures
    assert len(requests) == stats.requests  # every attempt is logged, failed ones too
    assert sum(e.outcome == "ok" for e in requests) == stats.successes
    assert sum(e.outcome == "retry" for e in requests) == stats.injected["error"]
    assert sum(e.prompt_tokens for e in requests) == stats.prompt_tokens
    assert sum(e.completion_tokens for e in requests) == stats.completion_tokens
    assert kinds["Retry"] >= stats.injected["error"]
    assert all(isinstance(e, Retry) and e.delay_s >= 0 for e in events if isinstance(e, Retry))

    crawled = [e for e in events if isinstance(e, PageCrawled)]
    failed = [e for e in events if isinstance(e, PageFailed)]
    assert sorted(e.url for e in crawled) == sorted(setup.urls[:5] + setup.urls[6:])
    assert [(e.url, e.status) for e in failed] == [(setup.urls[5], 404)]

    metrics = [e for e in events if isinstance(e, Metrics)]
    assert len(metrics) >= 2  # at least one on the 1 s interval, and the final one
    assert metrics[-1].done == metrics[-1].total == 7
    assert all(m.in_flight <= m.limit == 2 for m in metrics)

    end = finished[0]
    assert isinstance(events[-1], RunFinished)
    assert end.exit_code == 1
    assert end.requests == stats.requests
    assert end.documents == 7
    assert end.failed_pages == 1
    assert end.incomplete is False
    assert end.prompt_tokens == stats.prompt_tokens
    index = tmp_path / "xdg-data" / "crawl4ai-llm-docs" / "docs-index.sqlite"
    assert set(end.outputs) == {str(setup.output), str(setup.report), str(index)}
    assert json.loads(setup.report.read_text())["run_finished"]["requests"] == stats.requests

    # The key must appear nowhere: console, log, outputs, report, cache, config.
    assert API_KEY not in result.stdout + result.stderr
    leaks = [
        path
        for path in files_under(tmp_path / "out", tmp_path / "logs", tmp_path / "xdg-cache")
        if API_KEY.encode() in path.read_bytes()
    ]
    assert leaks == []


def _read_terminal(master: int, process: subprocess.Popen[bytes]) -> bytes:
    raw = b""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end is gone
            break
        if not chunk:
            break
        raw += chunk
    return raw


def test_live_view_on_a_real_terminal(tmp_path: Path) -> None:
    with running(tmp_path, pages=6, provider={"latency": 1.0}) as setup:
        command = [
            sys.executable,
            "-m",
            "crawl4ai_llm_docs",
            *[arg for arg in setup.args("--max-concurrent", "2") if arg != "--no-progress"],
            "--progress-interval",
            "1",
        ]
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = {k: v for k, v in setup.env.items() if k != "COLUMNS"}
        env["TERM"] = "xterm-256color"
        process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env
        )
        os.close(slave)
        try:
            raw = _read_terminal(master, process)
        finally:
            os.close(master)
            if process.poll() is None:
                process.kill()
            code = process.wait(timeout=30)
    assert code == 0, raw.decode(errors="replace")[-3000:]
    text = raw.decode(errors="replace")
    screen = ANSI.sub("", text)
    assert "\x1b[?25l" in text  # Rich drove a live display: a real terminal was seen
    assert re.search(r"crawled\s+━+\s+\d+/6", screen), screen[-3000:]
    assert re.search(r"processed\s+━+\s+\d+/\d+", screen)
    assert re.search(r"in-flight \d+\s+adaptive limit \d+\s+max 2", screen)
    assert re.search(r"processed\s+━+\s+[0-5]/6", screen)  # seen mid-run, not only at the end
    # The end-of-run summary, as a table on a terminal.
    assert "Run summary" in screen
    assert re.search(r"Documents written\s*│?\s*6", screen)
    assert API_KEY not in text
