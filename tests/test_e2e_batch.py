"""Batch mode through the real CLI against the fake provider's Batch API.

The provider counts live chat requests (``stats().requests``) apart from batch work
(``GET /_batches``), so "0 live requests, 1 batch of 28 lines" is checked against what the
provider saw, not against our own log.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Setup, failed_section, finish, running, sections, wait_until

from crawl4ai_llm_docs.observe.events import (
    BatchCreated,
    BatchProgress,
    BatchResult,
    Error,
    FaithfulnessFallback,
    LLMRequest,
    RunFinished,
    decode_event,
)
from crawl4ai_llm_docs.testing.site.server import SiteConfig

pytestmark = pytest.mark.slow

FAST_POLL = {
    "CRAWL4AI_LLM_DOCS_LLM__BATCH_POLL_INITIAL_S": "0.1",
    "CRAWL4AI_LLM_DOCS_LLM__BATCH_POLL_MAX_S": "0.4",
}


def batches(setup: Setup) -> dict[str, Any]:
    answer = httpx.get(f"{setup.provider.url}/_batches", timeout=10)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def batch_env(setup: Setup) -> dict[str, str]:
    return {**setup.env, **FAST_POLL}


def batch_dir(setup: Setup) -> Path:
    return setup.tmp / "xdg-cache" / "crawl4ai-llm-docs" / "batches"


def assert_all_cleaned(setup: Setup) -> None:
    markdown = setup.output.read_text()
    found = sections(markdown)
    assert [s.source for s in found] == setup.urls
    assert "Pages that failed" not in markdown, failed_section(markdown)
    # Every page went through the (fake) model: its answer starts with the description line.
    report = json.loads(setup.report.read_text())
    assert report["failures"] == []
    assert all("Fake summary" not in s.body for s in found)  # descriptions are not in bodies


def test_batch_28_pages_one_batch_no_live_requests(tmp_path: Path) -> None:
    llms = tmp_path / "llms"
    log_file = tmp_path / "run.jsonl"
    with running(tmp_path, pages=28, provider={"batch_latency": 1.0}) as setup:
        args = setup.args("--batch", "--llms-txt", str(llms), "--log-json", str(log_file))
        result = setup.run(*args, env=batch_env(setup))
        seen = batches(setup)
        live = setup.provider.stats()
    assert result.code == 0, result
    assert live.requests == 0
    assert seen["stats"]["batches_created"] == 1
    assert seen["stats"]["files_uploaded"] == 1
    assert [b["request_counts"]["total"] for b in seen["batches"]] == [28]
    assert seen["batches"][0]["status"] == "completed"
    assert_all_cleaned(setup)
    assert "Fake summary" in (llms / "llms.txt").read_text()
    # The batch was collected: no record is left behind to be polled again.
    assert list(batch_dir(setup).glob("*.json")) == []
    assert "in_progress" in result.stderr  # progress while polling
    assert "Batch API:" in result.stderr
    assert "completed 28/28 done, 0 failed" in result.stderr
    # Every event decodes strictly (the JSON contract), and the batch's life is in the log.
    events = [decode_event(line) for line in log_file.read_bytes().splitlines()]
    assert not [e for e in events if isinstance(e, Error)]
    assert sum(isinstance(e, BatchCreated) for e in events) == 1
    progress = [e for e in events if isinstance(e, BatchProgress)]
    assert {"validating", "in_progress", "completed"} <= {e.status for e in progress}
    assert progress[-1].completed == progress[-1].total == 28
    assert sum(isinstance(e, BatchResult) for e in events) == 28
    assert not [e for e in events if isinstance(e, LLMRequest)]
    finished = next(e for e in events if isinstance(e, RunFinished))
    assert finished.documents == 28
    assert finished.prompt_tokens > 0


def test_kill_9_while_the_batch_runs_then_rerun_polls_the_same_batch(tmp_path: Path) -> None:
    with running(tmp_path, pages=28, provider={"batch_latency": 6.0}) as setup:
        command = setup.args("--batch")
        process = setup.start(*command, env=batch_env(setup))
        try:
            wait_until(
                lambda: any(
                    '"batch_id":"batch' in p.read_text() for p in batch_dir(setup).glob("*.json")
                ),
                what="the stored batch id",
            )
            assert batches(setup)["batches"][0]["status"] in ("validating", "in_progress")
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        result = setup.run(*command, env=batch_env(setup))
        seen = batches(setup)
        live = setup.provider.stats()
    assert result.code == 0, result
    assert seen["stats"]["batches_created"] == 1
    assert seen["stats"]["files_uploaded"] == 1
    assert live.requests == 0
    assert_all_cleaned(setup)


def test_ctrl_c_says_the_batch_keeps_running_and_a_rerun_collects_it(tmp_path: Path) -> None:
    with running(tmp_path, pages=6, provider={"batch_latency": 6.0}) as setup:
        command = setup.args("--batch")
        process = setup.start(*command, env=batch_env(setup))
        wait_until(lambda: batches(setup)["stats"]["batches_created"] == 1, what="a batch")
        wait_until(lambda: any(batch_dir(setup).glob("*.json")), what="the stored record")
        os.kill(process.pid, signal.SIGINT)
        interrupted = finish(process, timeout=30)
        status = setup.run("batch", "status", env=batch_env(setup))
        result = setup.run(*command, env=batch_env(setup))
        seen = batches(setup)
    assert interrupted.code == 130, interrupted
    assert "keep running at the provider" in interrupted.stderr
    assert "Run the same command again" in interrupted.stderr
    assert status.code == 0, status
    assert seen["batches"][0]["id"] in status.stdout
    assert result.code == 0, result
    assert seen["stats"]["batches_created"] == 1
    assert_all_cleaned(setup)


def test_failed_lines_are_sent_again_in_a_next_batch(tmp_path: Path) -> None:
    provider = {"batch_latency": 0.5, "batch_error_rate": 0.2}
    with running(tmp_path, pages=28, provider=provider) as setup:
        result = setup.run(*setup.args("--batch"), env=batch_env(setup))
        seen = batches(setup)
        live = setup.provider.stats()
    assert result.code == 0, result
    totals = [b["request_counts"]["total"] for b in seen["batches"]]
    failed = [b["request_counts"]["failed"] for b in seen["batches"]]
    assert totals == [28, 6], totals  # 20% of 28 lines failed and were sent again
    assert failed == [6, 0]
    assert live.requests == 0
    assert_all_cleaned(setup)


def test_failed_lines_go_live_with_batch_fallback_live(tmp_path: Path) -> None:
    provider = {"batch_latency": 0.5, "batch_error_rate": 0.2}
    with running(tmp_path, pages=28, provider=provider) as setup:
        args = setup.args("--batch", "--batch-fallback", "live")
        result = setup.run(*args, env=batch_env(setup))
        seen = batches(setup)
        live = setup.provider.stats()
    assert result.code == 0, result
    assert seen["stats"]["batches_created"] == 1
    assert live.requests == live.successes == 6
    assert_all_cleaned(setup)


def test_an_expired_batch_is_finished_by_a_next_batch(tmp_path: Path) -> None:
    provider = {"batch_latency": 0.5, "batch_expire_first": 1}
    with running(tmp_path, pages=28, provider=provider) as setup:
        result = setup.run(*setup.args("--batch"), env=batch_env(setup))
        seen = batches(setup)
    assert result.code == 0, result
    assert [b["status"] for b in seen["batches"]] == ["expired", "completed"]
    # Half the lines were answered before the expiry; the other half went into a next batch.
    assert [b["request_counts"]["total"] for b in seen["batches"]] == [28, 14]
    assert seen["batches"][0]["request_counts"]["completed"] == 14
    assert_all_cleaned(setup)


def test_provider_without_batch_api_exits_2_with_one_paragraph(tmp_path: Path) -> None:
    with running(tmp_path, pages=3, provider={"batch_api": False}) as setup:
        result = setup.run(*setup.args("--batch"), env=batch_env(setup))
        live = setup.provider.stats()
    assert result.code == 2, result
    assert "has no Batch API" in result.stderr
    assert "Run without --batch" in result.stderr
    assert "Traceback" not in result.stderr
    assert live.requests == 0


def test_a_rejected_batch_names_the_bad_line(tmp_path: Path) -> None:
    with running(tmp_path, pages=3, provider={"models": ["fake-model"]}) as setup:
        args = setup.args("--batch", "--model", "no-such-model")
        result = setup.run(*args, env=batch_env(setup))
    assert result.code == 1, result
    assert "rejected batch" in result.stderr
    assert "line 1 (" + setup.urls[0] in result.stderr or "line 1 (" in result.stderr
    assert "no-such-model" in result.stderr
    markdown = setup.output.read_text()
    assert len(sections(markdown)) == 3  # the crawled text is kept


def test_dry_run_estimates_the_batch_price(tmp_path: Path) -> None:
    with running(tmp_path, pages=3) as setup:
        prices = ("--batch", "--dry-run")
        env = {
            **batch_env(setup),
            "CRAWL4AI_LLM_DOCS_LLM__INPUT_PRICE_PER_MTOK": "1.0",
            "CRAWL4AI_LLM_DOCS_LLM__OUTPUT_PRICE_PER_MTOK": "2.0",
        }
        result = setup.run(*setup.args(*prices), env=env)
        live_result = setup.run(*setup.args("--dry-run"), env=env)
    assert result.code == 0, result
    assert "Batch API" in result.stdout
    live_cost = float(live_result.stdout.split("estimated cost:")[1].split("$")[1].split()[0])
    batch_cost = float(result.stdout.split("estimated cost:")[1].split("$")[1].split()[0])
    assert batch_cost == pytest.approx(live_cost / 2, rel=0.01)


def test_batch_cancel_then_the_same_command_sends_the_rest(tmp_path: Path) -> None:
    with running(tmp_path, pages=8, provider={"batch_latency": 4.0}) as setup:
        command = setup.args("--batch")
        empty = setup.run("batch", "status", env=batch_env(setup))
        no_args = setup.run("batch", "cancel", env=batch_env(setup))
        unknown = setup.run("batch", "cancel", "batch_nope", env=batch_env(setup))
        process = setup.start(*command, env=batch_env(setup))
        try:
            wait_until(
                lambda: any(
                    '"batch_id":"batch' in p.read_text() for p in batch_dir(setup).glob("*.json")
                ),
                what="the stored batch id",
            )
            wait_until(
                lambda: batches(setup)["batches"][0]["request_counts"]["completed"] >= 2,
                what="two lines done",
            )
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        batch_id = batches(setup)["batches"][0]["id"]
        cancelled = setup.run("batch", "cancel", batch_id, env=batch_env(setup))
        result = setup.run(*command, env=batch_env(setup))
        seen = batches(setup)
    assert "No stored batches" in empty.stdout
    assert no_args.code == 2, no_args
    assert "--all" in no_args.stderr
    assert unknown.code == 2, unknown
    assert "batch_nope" in unknown.stderr
    assert cancelled.code == 0, cancelled
    assert f"Cancelling {batch_id}" in cancelled.stdout
    assert seen["stats"]["batches_cancelled"] == 1
    assert seen["batches"][0]["status"] == "cancelled"
    # The cancelled batch's finished lines were collected; the rest went into one more batch.
    assert seen["stats"]["batches_created"] == 2
    done = seen["batches"][0]["request_counts"]["completed"]
    assert 2 <= done < 8
    assert seen["batches"][1]["request_counts"]["total"] == 8 - done
    assert result.code == 0, result
    assert_all_cleaned(setup)


def test_batch_output_is_the_same_as_live_output_with_many_chunks(tmp_path: Path) -> None:
    site = SiteConfig(pages=5, sections=8, paragraphs=6)
    env_extra = {
        "CRAWL4AI_LLM_DOCS_LLM__CHUNK_MAX_TOKENS": "300",
        "CRAWL4AI_LLM_DOCS_LLM__CHUNK_MIN_TOKENS": "100",
        **FAST_POLL,
    }
    with running(tmp_path, site=site, provider={"batch_latency": 0.3}) as setup:
        env = {**setup.env, **env_extra}
        live_out, batch_out = tmp_path / "live" / "docs.md", tmp_path / "batch" / "docs.md"
        live = setup.run(*setup.args("--no-cache", output=live_out), env=env)
        live_requests = setup.provider.stats().requests
        batch = setup.run(*setup.args("--no-cache", "--batch", output=batch_out), env=env)
        seen = batches(setup)
    assert live.code == 0, live
    assert batch.code == 0, batch
    assert live_requests > 5  # several chunks per page
    assert [b["request_counts"]["total"] for b in seen["batches"]] == [live_requests]

    def stable(path: Path) -> str:
        return "\n".join(
            line for line in path.read_text().splitlines() if "· Generated: " not in line
        )

    assert stable(batch_out) == stable(live_out)


FOLLOW_UPS = {
    # Answers longer than 300 tokens are cut off: chunks are split, and split again.
    "halves": {"max_output_tokens": 300},
    # Answers above temperature 0.05 lose three quarters: rejected, asked again at 0.
    "retries": {"unfaithful_above_temperature": 0.05},
}


@pytest.mark.parametrize("cache", ["cache", "no-cache"])
@pytest.mark.parametrize("case", sorted(FOLLOW_UPS))
def test_retries_and_halves_join_the_next_round_no_live_request(
    tmp_path: Path, case: str, cache: str
) -> None:
    site = SiteConfig(pages=4, sections=6, paragraphs=5)
    env = {
        "CRAWL4AI_LLM_DOCS_LLM__CHUNK_MAX_TOKENS": "1500",
        "CRAWL4AI_LLM_DOCS_LLM__CHUNK_MIN_TOKENS": "64",
        **FAST_POLL,
    }
    log_file = tmp_path / "run.jsonl"
    provider = {"batch_latency": 0.3, **FOLLOW_UPS[case]}
    with running(tmp_path, site=site, provider=provider) as setup:
        env = {**setup.env, **env}
        no_cache = ("--no-cache",) if cache == "no-cache" else ()
        batch_out, live_out = tmp_path / "batch" / "docs.md", tmp_path / "live" / "docs.md"
        # Rewrites: their answers are cut off and split (edit scripts never are).
        rewrite = ("--cleaning", "rewrite")
        args = setup.args(
            "--batch", "--log-json", str(log_file), *rewrite, *no_cache, output=batch_out
        )
        result = setup.run(*args, env=env)
        live_requests = setup.provider.stats().requests
        seen = batches(setup)
        # The same pages live (the follow-ups sent as live requests) for comparison.
        live = setup.run(*setup.args(*rewrite, "--no-cache", output=live_out), env=env)
    assert result.code == 0, result
    assert live.code == 0, live
    assert live_requests == 0  # not one live request in batch mode
    events = [decode_event(line) for line in log_file.read_bytes().splitlines()]
    rounds = [e.round for e in events if isinstance(e, BatchCreated)]
    assert rounds == sorted(rounds)
    assert len(set(rounds)) >= 2  # the chunks, then what their answers led to
    assert len(seen["batches"]) == len(rounds)
    # Every chunk ends cleaned by an answer, counted once, and the output is the live one.
    done = [e for e in events if isinstance(e, BatchResult)]
    assert {e.source for e in done} == {"llm"}
    assert not [e for e in events if isinstance(e, FaithfulnessFallback)]

    def stable(path: Path) -> str:  # the header's time may differ by a minute
        return "\n".join(line for line in path.read_text().splitlines() if "Generated:" not in line)

    assert stable(batch_out) == stable(live_out)
