"""A chunk over a real server's context, through the real CLI: llama-cpp-python (0.3.36)
answers such a streamed request with a 200 and then nothing, and only a plain request says
why (400 `context_length_exceeded`). The chunk must be split and answered, not retried until
the breaker stops the run (exit 3, as before: the default's 4,000-token chunks avoid it on
an 8,192-token server, a larger `chunk_max_tokens` met it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from e2e_support import HANG_GUARD_S, cli_env, run_cli, write_urls
from llama_server import VENV_ENV, start_llama_server, venv_python

from crawl4ai_llm_docs.testing.site.server import SiteConfig, run_site_in_thread

pytestmark = pytest.mark.slow

CONTEXT = 1024  # the server's; the page is one chunk of ~2,000 tokens
CONFIG = """
[llm]
temperature = 0.0
max_tokens = 128
chunk_max_tokens = 6000
chunk_min_tokens = 128
unfaithful_retries = 0
[parallel]
max_concurrent_requests = 1
"""
RUN_TIMEOUT_S = max(HANG_GUARD_S, 900.0)  # a CPU-only model on a shared machine


@pytest.mark.timeout(1800)
def test_a_chunk_over_the_servers_context_is_split_not_retried(tmp_path: Path) -> None:
    if not venv_python().is_file():
        message = f"no llama-cpp-python venv: run .ci/llm-server-install.sh (or set {VENV_ENV})"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the real-LLM tests may not be skipped: {message}")
        pytest.skip(message)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    log = tmp_path / "log.jsonl"
    with (
        start_llama_server(tmp_path, context=CONTEXT) as server,
        run_site_in_thread(SiteConfig(pages=1, sections=8, paragraphs=4)) as site,
    ):
        urls = write_urls(tmp_path / "urls.txt", site.page_urls())
        args = [str(urls), "-o", str(tmp_path / "out.md"), "--crawler", "http"]
        args += ["--base-url", server.base_url, "--model", server.model]
        args += ["--config", str(config), "--log-json", str(log), "--no-progress"]
        result = run_cli(args, cwd=tmp_path, env=cli_env(tmp_path), timeout=RUN_TIMEOUT_S)
    assert result.code in (0, 1), result  # 1: SmolLM2's answer to a part may be rejected
    events = [json.loads(line) for line in log.read_text().splitlines()]
    requests = [e for e in events if e["event"] == "llm_request"]
    retried = [e["reason"] for e in events if e["event"] == "retry"]
    assert any("before its first event" in reason for reason in retried), retried
    # The parts were answered (before: every attempt an empty stream, the page's crawled
    # text kept after the retries, "LLM request failed").
    assert [e for e in requests if e["first_token_ms"] is not None]
    assert requests[-1]["status"] == 200
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert not [r for _, r in report["failures"] if "LLM request failed" in r], report
    # Each part over the context: its stream said nothing, the plain request said why, and
    # it was split (2 requests per split), never asked a third time for the same reason.
    # The server may drop the connection its empty stream came on after httpx pooled it:
    # the plain request then meets a closed connection (seen once in CI), a retry of its
    # own, not of the part's size.
    dropped = [r for r in retried if r.startswith("connection error")]
    others = [r for r in retried if "before its first event" not in r and r not in dropped]
    assert not others, others
    assert 2 <= max(e["attempt"] for e in requests) <= 2 + len(dropped)
    assert all(e["status"] in (400, None) for e in requests if e["attempt"] >= 2)
    assert sum(e["status"] is None for e in requests) == len(dropped)
    finished = next(e for e in events if e["event"] == "run_finished")
    assert finished["documents"] == 1
    assert (tmp_path / "out.md").read_text().strip()
