"""Interrupted runs through the real CLI: ``kill -9`` and Ctrl-C, then the same command again.

The provider records a digest of every ``<document>`` it answered, so "nothing answered before
is sent again" is checked against what the provider actually saw, not against our own log.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from e2e_support import failed_section, finish, running, sections, wait_until

from crawl4ai_llm_docs.observe.events import RunFinished, RunStarted, decode_event
from crawl4ai_llm_docs.testing.site.server import SiteConfig

pytestmark = pytest.mark.slow


def test_kill_9_then_rerun_sends_only_the_unanswered_chunks(tmp_path: Path) -> None:
    log_file = tmp_path / "run.jsonl"
    with running(tmp_path, pages=28, provider={"latency": 1.0}) as setup:
        command = setup.args("--max-concurrent", "2", "--log-json", str(log_file))
        process = setup.start(*command)
        try:
            wait_until(lambda: setup.provider.stats().successes >= 10, what="10 answers")
            # Answers come in pairs about a second apart: kill between two pairs, once the
            # last answers had time to reach the cache (an answer the provider sent but the
            # client never stored would rightly be asked for again).
            time.sleep(0.3)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        wait_until(lambda: setup.provider.stats().in_flight == 0, what="the provider to settle")
        first = setup.provider.stats()
        assert 10 <= first.successes < 28
        setup.provider.reset()

        result = setup.run(*command)
        second = setup.provider.stats()
        setup.provider.reset()
        # A third run finds every answer in the cache: nothing is sent at all.
        again = setup.run(*command)
        third = setup.provider.stats()
    assert again.code == 0, again
    assert third.requests == 0
    assert json.loads(setup.report.read_text())["run_finished"]["cached_chunks"] == 28
    assert result.code == 0, result
    answered_before = set(first.documents)
    assert len(answered_before) == first.successes
    # Nothing answered in the first run is requested again, and together the runs cover
    # every chunk exactly once (one chunk per page at the default chunk size).
    assert not answered_before & set(second.documents)
    assert len(second.documents) == second.requests == 28 - len(answered_before)
    assert len(answered_before | set(second.documents)) == 28
    markdown = setup.output.read_text()
    assert [s.source for s in sections(markdown)] == setup.urls
    assert "**Incomplete:**" not in markdown
    assert "Pages that failed" not in markdown
    # The log of all three runs (appended): the kill left no torn line behind.
    events = [decode_event(line) for line in log_file.read_bytes().splitlines()]
    assert sum(isinstance(e, RunStarted) for e in events) == 3
    assert [e.exit_code for e in events if isinstance(e, RunFinished)] == [0, 0]


def test_ctrl_c_writes_what_is_finished_and_a_rerun_completes(tmp_path: Path) -> None:
    with running(tmp_path, pages=12, provider={"latency": 1.0}) as setup:
        command = setup.args("--max-concurrent", "2")
        process = setup.start(*command)
        wait_until(lambda: setup.provider.stats().successes >= 2, what="2 answers")
        time.sleep(0.3)  # between two pairs of answers, as in the kill -9 test
        os.kill(process.pid, signal.SIGINT)
        interrupted = finish(process, timeout=30)
        first = setup.provider.stats()
        setup.provider.reset()
        assert interrupted.code == 130, interrupted
        assert interrupted.seconds < 15, interrupted  # hang guard: stops promptly
        assert "Traceback" not in interrupted.stderr, interrupted
        markdown = setup.output.read_text()
        assert "**Incomplete:**" in markdown
        done = sections(markdown)
        # Every answer that had arrived is in the interrupted output, in input order.
        assert len(done) == first.successes < 12
        assert [s.source for s in done] == sorted((s.source for s in done), key=setup.urls.index)
        # Every page is accounted for: written, or listed as not finished.
        unfinished = failed_section(markdown)
        for url in setup.urls:
            assert (url in {s.source for s in done}) != (url in unfinished), url
        assert "not finished (run interrupted)" in unfinished

        result = setup.run(*command)
        second = setup.provider.stats()
    assert result.code == 0, result
    assert not set(first.documents) & set(second.documents)
    markdown = setup.output.read_text()
    assert [s.source for s in sections(markdown)] == setup.urls
    assert "**Incomplete:**" not in markdown


# An interrupted run stops within milliseconds, so the second Ctrl-C usually lands after the
# pipeline returned, where only ``cli.main`` can turn KeyboardInterrupt into exit 130.


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    with running(tmp_path, pages=8, provider={"latency": 2.0}) as setup:
        process = setup.start(*setup.args("--max-concurrent", "2"))
        wait_until(lambda: setup.provider.stats().requests >= 2, what="the first requests")
        os.kill(process.pid, signal.SIGINT)
        time.sleep(0.05)
        os.kill(process.pid, signal.SIGINT)
        result = finish(process, timeout=30)
    assert result.code == 130, result
    assert "Traceback" not in result.stderr, result


def _has_loaded(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_ctrl_c_during_start_up(tmp_path: Path) -> None:
    """Ctrl-C while Python is still importing the tool's modules."""
    with running(tmp_path, pages=1) as setup:
        process = setup.start(*setup.args())
        # msgspec's extension is loaded early by the config module: the import phase is on.
        wait_until(lambda: _has_loaded(process.pid, "msgspec"), what="imports", poll=0.001)
        os.kill(process.pid, signal.SIGINT)
        result = finish(process, timeout=30)
    assert result.code == 130, result
    assert "Traceback" not in result.stderr, result


def test_ctrl_c_before_any_page_is_crawled(tmp_path: Path) -> None:
    """Ctrl-C while the first pages are being fetched: every page is listed as unfinished."""
    slow_site = {"/docs/page-000.html": 30.0, "/docs/page-001.html": 30.0}
    with running(tmp_path, site=SiteConfig(pages=2, delays=slow_site)) as setup:
        process = setup.start(*setup.args())
        wait_until(lambda: setup.site.hits["/docs/page-000.html"] > 0, what="the first crawl")
        os.kill(process.pid, signal.SIGINT)
        result = finish(process, timeout=30)
    assert result.code == 130, result
    assert "Traceback" not in result.stderr, result
    markdown = setup.output.read_text()
    assert "**Incomplete:**" in markdown
    assert all(url in failed_section(markdown) for url in setup.urls)
