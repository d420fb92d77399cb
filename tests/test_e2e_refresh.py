"""Refresh through the real CLI: a re-run only does the work that changed, and says what changed.

The local site sends ETag / Last-Modified and answers conditional requests with 304; the fake
provider records every document it was asked about, so "only the changed pages were sent" is
checked against what the provider saw.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from e2e_support import page_changes, run_finished, running, sections, wait_until, write_urls

from crawl4ai_llm_docs.testing.site.server import SiteConfig, page_path

pytestmark = pytest.mark.slow

PAGES = 20


@pytest.mark.parametrize("validators", ["both", "etag", "last-modified"])
def test_unchanged_rerun_is_answered_by_304s_and_sends_nothing(
    tmp_path: Path, validators: str
) -> None:
    site = SiteConfig(pages=PAGES, validators=validators)  # type: ignore[arg-type]
    with running(tmp_path, site=site) as setup:
        first = setup.run(*setup.args())
        assert first.code == 0, first
        assert page_changes(run_finished(setup)) == (PAGES, 0, 0, 0)
        sent_first = setup.provider.stats().requests
        assert sent_first >= PAGES
        setup.provider.reset()
        setup.site.statuses.clear()
        before = setup.output.read_text()

        second = setup.run(*setup.args())
        assert second.code == 0, second
        assert setup.provider.stats().requests == 0
        assert setup.site.statuses[304] == PAGES  # every page: nothing downloaded again
        assert setup.site.statuses[200] == 0
        assert page_changes(run_finished(setup)) == (0, 0, PAGES, 0)
        assert "0 new, 0 changed, 20 unchanged, 0 removed" in second.stderr
        after = setup.output.read_text()
    # The same documents, in the same order (only the generation date moves).
    assert [s.source for s in sections(after)] == setup.urls
    assert [s.body for s in sections(after)] == [s.body for s in sections(before)]


def test_after_three_pages_change_only_their_chunks_are_sent(tmp_path: Path) -> None:
    with running(tmp_path, site=SiteConfig(pages=PAGES, validators="both")) as setup:
        assert setup.run(*setup.args()).code == 0
        changed = [page_path(i) for i in (2, 7, 15)]
        for path in changed:
            setup.site.change(path)
        setup.provider.reset()
        setup.site.statuses.clear()

        result = setup.run(*setup.args())
        stats = setup.provider.stats()
        assert result.code == 0, result
        assert setup.site.statuses[304] == PAGES - 3
        assert setup.site.statuses[200] == 3
        # One chunk per generated page: exactly the three edited pages were sent.
        assert stats.requests == len(stats.documents) == 3
        assert page_changes(run_finished(setup)) == (0, 3, PAGES - 3, 0)
        assert "0 new, 3 changed, 17 unchanged, 0 removed" in result.stderr
        markdown = setup.output.read_text()
    edited = {setup.site.url(path) for path in changed}
    for section in sections(markdown):
        assert ("Revision 1" in section.body) == (section.source in edited), section.source


def test_removed_and_new_pages_are_counted(tmp_path: Path) -> None:
    with running(tmp_path, site=SiteConfig(pages=8, validators="etag")) as setup:
        write_urls(setup.urls_file, setup.urls[:6])
        assert setup.run(*setup.args()).code == 0
        write_urls(setup.urls_file, [*setup.urls[1:5], *setup.urls[6:]])
        result = setup.run(*setup.args())
    assert result.code == 0, result
    # Kept 1-4 (unchanged), dropped 0 and 5 (removed), added 6-7 (new).
    assert page_changes(run_finished(setup)) == (2, 0, 4, 2)


def test_no_validators_unchanged_text_still_sends_nothing(tmp_path: Path) -> None:
    with running(tmp_path, site=SiteConfig(pages=6, validators="none")) as setup:
        assert setup.run(*setup.args()).code == 0
        setup.provider.reset()
        setup.site.statuses.clear()
        result = setup.run(*setup.args())
        assert result.code == 0, result
        assert setup.site.statuses[200] == 6  # no validators: every page is downloaded
        assert setup.provider.stats().requests == 0  # but none of them is sent to the LLM
        assert page_changes(run_finished(setup)) == (0, 0, 6, 0)


def test_refresh_full_and_no_cache_ignore_the_stored_state(tmp_path: Path) -> None:
    with running(tmp_path, site=SiteConfig(pages=6, validators="both")) as setup:
        assert setup.run(*setup.args()).code == 0
        setup.site.statuses.clear()
        full = setup.run(*setup.args("--refresh", "full"))
        assert full.code == 0, full
        assert setup.site.statuses[304] == 0  # no conditional request was sent
        assert setup.site.statuses[200] == 6
        assert page_changes(run_finished(setup)) == (0, 0, 6, 0)  # still compared by content
        setup.site.statuses.clear()
        setup.provider.reset()
        bare = setup.run(*setup.args("--no-cache"))
        assert bare.code == 0, bare
        assert setup.site.statuses[304] == 0
        assert setup.provider.stats().requests == 6  # no result cache either
        assert page_changes(run_finished(setup)) == (0, 0, 0, 0)
        assert "Since last run" not in bare.stderr


def test_kill_9_during_a_refresh_leaves_the_previous_state_usable(tmp_path: Path) -> None:
    site = SiteConfig(pages=12, validators="both")
    with running(tmp_path, site=site, provider={"latency": 1.0}) as setup:
        command = setup.args("--max-concurrent", "2")
        assert setup.run(*command).code == 0
        for index in range(12):
            setup.site.change(page_path(index))
        setup.provider.reset()
        process = setup.start(*command)
        try:
            wait_until(lambda: setup.provider.stats().successes >= 4, what="4 answers")
            # Answers come in pairs about a second apart: kill between two pairs, once the
            # last ones had time to reach the cache (as in test_e2e_resume.py).
            time.sleep(0.3)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        wait_until(lambda: setup.provider.stats().in_flight == 0, what="the provider to settle")
        answered = set(setup.provider.stats().documents)
        setup.provider.reset()

        result = setup.run(*command)
        stats = setup.provider.stats()
        markdown = setup.output.read_text()
    assert result.code == 0, result
    # The killed run's answers were kept; the rest is sent now, and every page is current.
    assert 4 <= len(answered) < 12
    assert not answered & set(stats.documents)
    assert stats.requests == 12 - len(answered)
    found = sections(markdown)
    assert [s.source for s in found] == setup.urls
    assert all("Revision 1" in s.body for s in found)
    assert "Pages that failed" not in markdown
