"""A changed extraction converts each page again, once: a 304 never stands for Markdown that
older extraction code made (cache/page_state.py ``EXTRACTION_VERSION``, crawl/refresh.py)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from e2e_support import page_changes, run_finished, running

from crawl4ai_llm_docs.cache.page_state import EXTRACTION_VERSION, PageState, PageStateStore
from crawl4ai_llm_docs.crawl import refresh
from crawl4ai_llm_docs.models import UrlEntry
from crawl4ai_llm_docs.testing.site.server import SiteConfig

URL = "https://docs.example.com/guide/install.html"


def _state(**fields: object) -> PageState:
    base: dict[str, object] = {
        "url": URL,
        "final_url": URL,
        "title": "Install",
        "markdown": "Run it.",
        "content_hash": "h",
        "fetched_at": "2026-01-01T00:00:00Z",
        "changed_at": "2026-01-01T00:00:00Z",
        "etag": '"v1"',
        "lastmod": "2026-01-01",
    }
    base.update(fields)
    return msgspec.convert(base, PageState)


def test_a_state_from_before_versions_decodes_and_is_not_reused(tmp_path: Path) -> None:
    old = msgspec.json.decode(msgspec.json.encode(_state()), type=PageState)
    assert old.extraction == 0  # written before the field existed: decodes, as version 0
    store = PageStateStore(tmp_path)
    entry = UrlEntry(index=0, url=URL, line=1, lastmod="2026-01-01")
    assert refresh.validators_for(store, old, discovering=False) is None
    assert not refresh.unchanged_by_lastmod(store, entry, old, discovering=False)
    current = _state(extraction=EXTRACTION_VERSION)
    validators = refresh.validators_for(store, current, discovering=False)
    assert validators is not None
    assert validators.etag == '"v1"'
    assert refresh.unchanged_by_lastmod(store, entry, current, discovering=False)


@pytest.mark.slow
def test_pages_stored_by_an_older_extraction_are_fetched_and_converted_again(
    tmp_path: Path,
) -> None:
    pages = 6
    with running(tmp_path, site=SiteConfig(pages=pages, validators="both")) as setup:
        assert setup.run(*setup.args("--no-llm", llm=False)).code == 0
        states = sorted((tmp_path / "xdg-cache").rglob("pages/*/*.json"))
        assert len(states) == pages
        for path in states:
            state = msgspec.json.decode(path.read_bytes(), type=PageState)
            assert state.extraction == EXTRACTION_VERSION
            # As an older version of the tool left it: no extraction field at all.
            raw = msgspec.json.decode(path.read_bytes())
            del raw["extraction"]
            path.write_bytes(msgspec.json.encode(raw))
        setup.site.statuses.clear()
        again = setup.run(*setup.args("--no-llm", llm=False))
        assert again.code == 0, again
        assert setup.site.statuses[304] == 0  # no conditional request: fetched in full
        assert setup.site.statuses[200] == pages
        assert page_changes(run_finished(setup))[:3] == (0, 0, pages)  # same Markdown here
        setup.site.statuses.clear()
        third = setup.run(*setup.args("--no-llm", llm=False))
        assert third.code == 0, third
        assert setup.site.statuses[304] == pages  # converted once: 304s are trusted again
