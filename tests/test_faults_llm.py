"""Provider faults through the real CLI: every fault ends in its documented outcome.

Three outcomes (README "What happens when ..."): retried until it works (exit 0), the chunk
keeps its crawled Markdown and the run exits 1, or the run stops at once with exit 3 keeping
every finished document. Counts come from the fake provider's own stats, so a document the
provider answered but the tool lost fails the test. ``run_cli`` kills a run that hangs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import HANG_GUARD_S, Setup, failed_section, finish, running, sections, wait_until
from faults_support import free_port

from crawl4ai_llm_docs.testing.provider.server import start_subprocess, stop_subprocess
from crawl4ai_llm_docs.testing.site.server import SiteConfig

pytestmark = pytest.mark.slow

PAGES = 6
REQUEST_TIMEOUT_1S = {"CRAWL4AI_LLM_DOCS_PARALLEL__REQUEST_TIMEOUT": "1"}


def _report(setup: Setup) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(setup.report.read_text())
    return data


def _assert_complete(setup: Setup, markdown: str) -> None:
    """Every page written once, in input order, with its own text (the fake echoes it)."""
    found = sections(markdown)
    assert [s.source for s in found] == setup.urls
    assert "**Incomplete:**" not in markdown
    assert "Pages that failed" not in markdown
    for index, section in enumerate(found):
        assert f"def example_{index}_0(client):" in section.body


# ---------------------------------------------------------------- retried, then exit 0


@pytest.mark.parametrize(
    ("provider", "env", "fault"),
    [
        pytest.param({"error_rate": 0.3, "seed": 3}, {}, "error", id="5xx-burst"),
        pytest.param({"hang_rate": 0.2, "seed": 1}, REQUEST_TIMEOUT_1S, "hang", id="hang"),
        pytest.param({"drop_rate": 0.3, "seed": 1}, {}, "drop", id="dropped-connection"),
        pytest.param({"malformed_rate": 0.3, "seed": 1}, {}, "malformed", id="malformed-json"),
        pytest.param({"empty_choices_rate": 0.3, "seed": 1}, {}, "empty_choices", id="no-choices"),
    ],
)
def test_transient_faults_are_retried_and_nothing_is_lost(
    tmp_path: Path, provider: dict[str, Any], env: dict[str, str], fault: str
) -> None:
    with running(tmp_path, pages=PAGES, provider=provider) as setup:
        result = setup.run(*setup.args(), env={**setup.env, **env})
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.injected.get(fault, 0) > 0, stats  # the fault really happened
    # One good answer per page, and each of them is in the output.
    assert stats.successes == PAGES
    assert len(set(stats.documents)) == PAGES
    _assert_complete(setup, setup.output.read_text())
    report = _report(setup)
    assert report["run_finished"]["documents"] == PAGES
    # Every failed attempt was retried, none was given up on.
    assert report["run_finished"]["retries"] == stats.requests - stats.successes
    if fault == "hang":
        assert result.seconds < 20, result  # abandoned after request_timeout, not waited out
    if fault == "error":
        assert set(stats.by_status) - {200} <= {500, 502, 503, 529}


@pytest.mark.parametrize(
    ("provider", "flags", "storm"),
    [
        # No rate-limit headers at all: 429s come with the body's hint only. The limiter
        # learns a burst of 1 from its first 429 (tests/test_silent_rate.py), so that one
        # may be all there is.
        pytest.param({"header_dialect": "none"}, (), 1, id="429-without-retry-after"),
        # Headers ignored by choice: every 429 carries Retry-After.
        pytest.param(
            {"header_dialect": "openai"},
            ("--disable-adaptive-rate-limiting",),
            2,
            id="429-with-retry-after",
        ),
    ],
)
def test_a_429_storm_is_waited_out(
    tmp_path: Path, provider: dict[str, Any], flags: tuple[str, ...], storm: int
) -> None:
    limits = {"rpm": 600, "burst_requests": 1, **provider}
    with running(tmp_path, pages=5, provider=limits) as setup:
        result = setup.run(*setup.args(*flags))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.by_status.get(429, 0) >= storm, stats  # refused (a storm if not adapting)
    assert stats.successes == 5
    _assert_complete(setup, setup.output.read_text())
    assert _report(setup)["run_finished"]["rate_limited"] == stats.by_status[429]


# ---------------------------------------------------------------- too large: split and retried

# Pages of ~1,650 tokens: the whole page is too large, each half fits.
BIG_PAGES = SiteConfig(pages=4, sections=4)


@pytest.mark.parametrize(
    ("provider", "refusal"),
    [
        pytest.param({"context_limit": 5700}, 400, id="context_length_exceeded"),
        pytest.param({"max_output_tokens": 1200}, 200, id="finish_reason-length"),
    ],
)
def test_a_chunk_too_large_is_split_and_both_halves_are_kept(
    tmp_path: Path, provider: dict[str, Any], refusal: int
) -> None:
    with running(tmp_path, site=BIG_PAGES, provider=provider) as setup:
        result = setup.run(*setup.args("--cleaning", "rewrite"))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert "cannot be split" not in result.stderr
    # One refused request per page, then two halves that succeed.
    assert stats.requests == 3 * 4
    assert stats.by_status.get(refusal, 0) >= 4
    markdown = setup.output.read_text()
    found = sections(markdown)
    assert [s.source for s in found] == setup.urls
    for index, section in enumerate(found):
        # Both halves are there, in order: every section's code sample.
        samples = re.findall(rf"def example_{index}_(\d)\(client\):", section.body)
        assert samples == ["0", "1", "2", "3"], section.title


def test_a_chunk_that_cannot_be_split_keeps_its_crawled_markdown_and_is_listed(
    tmp_path: Path,
) -> None:
    with running(tmp_path, site=BIG_PAGES, provider={"max_output_tokens": 100}) as setup:
        result = setup.run(*setup.args("--cleaning", "rewrite"))
    assert result.code == 1, result
    assert "cannot be split further" in result.stderr
    markdown = setup.output.read_text()
    found = sections(markdown)
    # Nothing crawled is lost: each page is there with the crawled text...
    assert [s.source for s in found] == setup.urls
    for index, section in enumerate(found):
        assert f"def example_{index}_3(client):" in section.body
    # ... and listed, as exit 1 promises ("some pages failed ... the output lists them").
    listed = [line for line in failed_section(markdown).splitlines() if line]
    assert len(listed) == len(setup.urls)
    for url, line in zip(setup.urls, listed, strict=True):
        assert line.startswith(f"- {url}: crawled text kept, not cleaned by the LLM ("), line
        assert "finish_reason=length" in line
    report = _report(setup)
    assert report["run_finished"]["failed_pages"] == len(setup.urls)
    assert [url for url, _ in report["failures"]] == setup.urls


# ---------------------------------------------------------------- fatal: exit 3 at once


@pytest.mark.parametrize(
    ("provider", "why"),
    [
        pytest.param({"require_api_key": "sk-the-right-one"}, "invalid_api_key", id="401"),
        pytest.param({"models": ["other-model"]}, "model_not_found", id="404-model"),
        pytest.param({"quota_after": 3}, "insufficient_quota", id="insufficient_quota"),
    ],
)
def test_a_fatal_answer_stops_the_run_and_keeps_every_finished_document(
    tmp_path: Path, provider: dict[str, Any], why: str
) -> None:
    with running(tmp_path, pages=PAGES, provider={"latency": 0.1, **provider}) as setup:
        result = setup.run(*setup.args("--max-concurrent", "2"))
        stats = setup.provider.stats()
    assert result.code == 3, result
    assert "Traceback" not in result.stderr
    assert why in result.stderr
    # Stopped at once: no new request after the refusal, only those already on their way.
    refused = stats.requests - stats.successes
    assert 1 <= refused <= 2, stats
    markdown = setup.output.read_text()
    assert "**Incomplete:**" in markdown
    written = sections(markdown)
    # Every answer the provider gave is in the output, in input order.
    assert len(written) == stats.successes
    # Quota is checked on arrival: a request admitted as the third succeeds may be a fourth.
    assert stats.successes in ((3, 4) if "quota_after" in provider else (0,))
    positions = [setup.urls.index(s.source) for s in written]
    assert positions == sorted(positions)
    unfinished = failed_section(markdown)
    for url in set(setup.urls) - {s.source for s in written}:
        assert f"{url}: not finished (run stopped: " in unfinished
    assert why in unfinished
    report = _report(setup)
    assert report["run_finished"]["exit_code"] == 3
    assert report["run_finished"]["incomplete"] is True


# ---------------------------------------------------------------- provider restarted mid-run


def test_a_provider_restarted_mid_run_is_reconnected_to(tmp_path: Path) -> None:
    port = free_port()
    # Same port both times, as a restarted local server or a load balancer failover would.
    flags = ["--port", str(port), "--latency", "0.3"]
    pages = 16
    with running(tmp_path, pages=pages) as setup:
        first, base_url = start_subprocess(flags)
        stats_url = base_url.removesuffix("/v1") + "/_stats"
        second = None
        try:
            process = setup.start(
                *setup.args("--base-url", base_url, "--max-concurrent", "4", llm=False)
            )
            wait_until(
                lambda: httpx.get(stats_url).json()["successes"] >= 8, what="half of the answers"
            )
            stop_subprocess(first)  # requests in flight are cut off
            second, again = start_subprocess(flags)
            assert again == base_url
            result = finish(process, timeout=HANG_GUARD_S)
            after = httpx.get(stats_url).json()
        finally:
            for server in (first, second):
                if server is not None:
                    stop_subprocess(server)
    assert result.code == 0, result
    assert "connection error" in result.stderr  # the restart was noticed, and retried
    assert after["successes"] >= 1  # the second server answered the rest
    _assert_complete(setup, setup.output.read_text())
