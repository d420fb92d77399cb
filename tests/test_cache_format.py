"""A cache directory written by an earlier version is read by this one.

``fixtures/cache_v1`` was written by the code of 2026-12-07 (before the package layout moved):
one result entry and its unfaithful-retry entry, one page state with discovery's links, one
output manifest. Keys, paths and formats are a contract: a change that makes these entries
unreadable, or their keys different, throws away every user's cache. Change the fixture only
together with ``cache.SCHEMA_VERSION`` (old entries then become misses on purpose).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from crawl4ai_llm_docs.cache.page_state import PageStateStore
from crawl4ai_llm_docs.cache.results import ResultCache
from crawl4ai_llm_docs.config_schema import LLMConfig
from crawl4ai_llm_docs.models import Chunk, PageLinks

FIXTURE = Path(__file__).parent / "fixtures" / "cache_v1"
URL = "https://docs.example.com/guide/install.html"
KEYS = {
    0: "500052ab0acb49379b3ce5a967dc9372f157ab5dbf3da78c30035822a88a8e96",
    1: "68aa26a236f63cc3a64258c6b933a9e3ac468fa445f06f49e5ac21dd559cc536",
}


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(FIXTURE, copy)
    return copy


def _llm() -> LLMConfig:
    return msgspec.convert(
        {
            "model": "fixture-model",
            "system_prompt": "Clean this page.",
            "user_prompt": "{content}",
            "temperature": 0.2,
            "max_tokens": 1000,
            "cleaning": "rewrite",  # the fixture's answers are rewrites (written before edit mode)
        },
        LLMConfig,
    )


def _chunk() -> Chunk:
    return Chunk(
        page_index=0,
        chunk_index=0,
        chunk_count=1,
        url=URL,
        title="Install",
        text="# Install\n\nRun `pip install example`.\n",
        tokens=9,
    )


@pytest.mark.parametrize("attempt", [0, 1])
async def test_result_entries_keep_their_keys_and_decode(cache_dir: Path, attempt: int) -> None:
    key = ResultCache.key_for(_chunk(), _llm(), attempt=attempt)
    assert key == KEYS[attempt]
    entry = await ResultCache(cache_dir).get(key)
    assert entry is not None
    assert entry.markdown == f"# Install\n\nRun `pip install example`. (answer {attempt})\n"
    assert (entry.description, entry.prompt_tokens, entry.completion_tokens) == (
        "How to install.",
        40,
        12,
    )


async def test_page_state_and_output_manifest_decode(cache_dir: Path) -> None:
    store = PageStateStore(cache_dir)
    state = await store.get(URL)
    assert state is not None
    assert (state.etag, state.lastmod, state.site_name) == ('"abc"', "2026-11-30", "Example")
    assert state.links == PageLinks(
        links=("https://docs.example.com/guide/next.html",), canonical=URL
    )
    assert state.complete(discovering=True)
    removed = await store.removed_since_last_run(Path("/out/example.md"), [])
    assert removed == [URL]
