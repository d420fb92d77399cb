"""Edit-script cleaning through the real CLI: real Sphinx pages (Debian's python-click-doc)
served on loopback, the fake provider playing a careful model.

- ``--cleaning edit`` keeps every code block and inline-code span of the crawled pages
  (read back with markdown-it-py, independent of the tool), for a small share of the
  rewrite's completion tokens; a re-run sends nothing; llms.txt gets the scripts'
  descriptions;
- a provider that takes llama-cpp-python's ``json_object`` form, or no structured output at
  all, gets what it takes and every page is cleaned;
- batch mode works in edit mode and writes what live edit mode writes;
- a model that loops is stopped, in both modes: the looping answers cost little, no chunk is
  split, and the retries clean every page;
- ``--dry-run`` estimates both modes.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Setup, running
from markdown_it import MarkdownIt

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.observe.events import decode_event
from crawl4ai_llm_docs.testing.site.server import SiteConfig

pytestmark = pytest.mark.slow

CLICK = Path("/usr/share/doc/python-click-doc/html")
PAGES = ("options.html", "quickstart.html", "prompts.html")
FAST_POLL = {
    "CRAWL4AI_LLM_DOCS_LLM__BATCH_POLL_INITIAL_S": "0.1",
    "CRAWL4AI_LLM_DOCS_LLM__BATCH_POLL_MAX_S": "0.4",
}
_MD = MarkdownIt("commonmark")


def code_blocks(markdown: str) -> collections.Counter[str]:
    return collections.Counter(
        t.content for t in _MD.parse(markdown) if t.type in ("fence", "code_block")
    )


def inline_code(markdown: str) -> set[str]:
    return {
        child.content
        for token in _MD.parse(markdown)
        for child in token.children or []
        if child.type == "code_inline"
    }


def events(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        decode_event(line)  # the documented contract, strictly
    return [json.loads(line) for line in lines]


def named(log: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in log if event["event"] == name]


def click_site() -> SiteConfig:
    if not (CLICK / "index.html").is_file():
        pytest.skip(f"{CLICK} is missing: apt-get install python-click-doc")
    return SiteConfig(directory=str(CLICK))


def _run(
    setup: Setup, name: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    log = setup.tmp / f"{name}.jsonl"
    result = setup.run(
        *setup.args(*extra, "--log-json", str(log), output=setup.tmp / f"{name}.md"), env=env
    )
    assert result.code == 0, result
    return result.code, events(log)


def _report(setup: Setup, name: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((setup.tmp / f"{name}.report.json").read_text())
    return report


def test_edit_mode_keeps_all_code_for_a_fraction_of_the_tokens(tmp_path: Path) -> None:
    with running(tmp_path, site=click_site(), urls=[]) as setup:
        setup.urls_file.write_text("\n".join(setup.site.url(page) for page in PAGES) + "\n")
        _run(setup, "crawled", "--no-llm", "--no-cache")
        _, rewrite = _run(setup, "rewrite", "--cleaning", "rewrite", "--no-cache")
        _, edit = _run(setup, "edit", "--cleaning", "edit", "--llms-txt", str(tmp_path / "llms"))
        _, again = _run(setup, "again", "--cleaning", "edit")
        requests_before = setup.provider.stats().requests
    crawled = (tmp_path / "crawled.md").read_text()
    edited = (tmp_path / "edit.md").read_text()
    # Every code block and inline-code span of the crawled pages is in the output.
    assert code_blocks(crawled), "the pages have code blocks"
    assert code_blocks(edited) == code_blocks(crawled)
    missing = inline_code(crawled) - inline_code(edited)
    assert missing == set()
    # Every page was cleaned by its script, none kept as crawled.
    assert _report(setup, "edit")["warnings"] == []
    assert named(edit, "faithfulness_fallback") == []
    # A small share of the rewrite's completion tokens, every script within edit_max_tokens.
    tokens = {
        name: _report(setup, name)["run_finished"]["completion_tokens"]
        for name in ("rewrite", "edit")
    }
    assert tokens["edit"] <= 0.15 * tokens["rewrite"], tokens
    edit_budget = LLMConfig().edit_max_tokens
    assert all(e["completion_tokens"] <= edit_budget for e in named(edit, "llm_request"))
    # The re-run answers every chunk from the cache.
    assert named(again, "llm_request") == []
    assert len(named(again, "chunk_cached")) == len(named(edit, "llm_request"))
    assert requests_before == len(named(rewrite, "llm_request")) + len(named(edit, "llm_request"))
    # llms.txt describes each page with its script's description.
    llms = (tmp_path / "llms" / "llms.txt").read_text()
    assert llms.count("Fake summary of") == len(PAGES)


@pytest.mark.parametrize("takes", ["json_object", "none"])
def test_edit_mode_with_a_provider_that_takes_another_form(tmp_path: Path, takes: str) -> None:
    with running(tmp_path, pages=4, provider={"structured_output": takes}) as setup:
        _, log = _run(setup, "edit", "--cleaning", "edit", "--no-cache")
        refused = setup.provider.stats().format_refused
    warnings = [e["message"] for e in named(log, "warning")]
    assert any("refused response_format json_schema" in w for w in warnings)
    assert any("refused response_format json_object" in w for w in warnings) == (takes == "none")
    assert refused >= 1
    assert named(log, "faithfulness_fallback") == []
    assert _report(setup, "edit")["warnings"] == []


def test_batch_mode_in_edit_mode_writes_what_live_writes(tmp_path: Path) -> None:
    with running(tmp_path, pages=4, provider={"batch_latency": 0.3}) as setup:
        env = {**setup.env, **FAST_POLL}
        _run(setup, "live", "--cleaning", "edit", "--no-cache", env=env)
        _, log = _run(setup, "batch", "--cleaning", "edit", "--batch", "--no-cache", env=env)
        stats = setup.provider.stats()
    assert named(log, "batch_created")
    assert named(log, "llm_request") == []  # every chunk went through the batch
    assert [e["source"] for e in named(log, "batch_result")] == ["llm"] * 4
    strip = re.compile(r"Generated: [^\n]*UTC")
    live = strip.sub("", (tmp_path / "live.md").read_text())
    batch = strip.sub("", (tmp_path / "batch.md").read_text())
    assert batch == live
    assert stats.format_refused == 0


@pytest.mark.parametrize("cleaning", ["rewrite", "edit"])
def test_a_looping_model_is_stopped_and_no_chunk_is_split(tmp_path: Path, cleaning: str) -> None:
    # The first answer loops to the cap, slowly: 10 s or more either way (a rewrite's cap is
    # thousands of tokens at 5 s per 1,000, a script's 512 at 20 s), so the client leaves
    # while it streams even on a busy machine; the other answers are fine.
    per_1k = 5.0 if cleaning == "rewrite" else 20.0
    provider = {
        "loop_first": 1,
        "latency": 0.2,
        "latency_per_1k_tokens": per_1k,
        "stream_chunks": 64,
    }
    with running(tmp_path, pages=2, provider=provider) as setup:
        _, log = _run(
            setup, cleaning, "--cleaning", cleaning, "--no-cache", "--max-concurrent", "1"
        )
        stats = setup.provider.stats()
    requests = named(log, "llm_request")
    assert stats.loops == 1
    # The loop, its retry and the other page: no split, no error.
    assert [e["outcome"] for e in requests] == ["ok"] * 3
    looped = requests[0]
    # Stopped long before the cap (the client left the stream, the provider saw it go).
    budget = LLMConfig().edit_max_tokens if cleaning == "edit" else 4096
    assert looped["completion_tokens"] < budget / 4, looped
    assert stats.abandoned == 1
    (retry,) = named(log, "unfaithful_retry")
    assert "repeat" in retry["reason"]
    assert named(log, "faithfulness_fallback") == []
    assert _report(setup, cleaning)["warnings"] == []


def test_dry_run_estimates_both_modes(tmp_path: Path) -> None:
    prices = {
        "CRAWL4AI_LLM_DOCS_LLM__INPUT_PRICE_PER_MTOK": "0.15",
        "CRAWL4AI_LLM_DOCS_LLM__OUTPUT_PRICE_PER_MTOK": "0.60",
    }
    with running(tmp_path, pages=4) as setup:
        env = {**setup.env, **prices}
        rewrite = setup.run(*setup.args("--dry-run", "--cleaning", "rewrite"), env=env)
        edit = setup.run(*setup.args("--dry-run", "--cleaning", "edit"), env=env)
        assert setup.provider.stats().requests == 0
    for result, mine, other in ((rewrite, "rewrite", "edit"), (edit, "edit", "rewrite")):
        assert result.code == 0, result
        assert re.search(rf"cleaning:\s+{mine}$", result.stdout, re.MULTILINE), result
        assert f"with --cleaning {other}:" in result.stdout

    def completion(text: str, label: str) -> int:
        match = re.search(label + r".*?~([\d,]+) completion", text) if label else None
        if match:
            return int(match.group(1).replace(",", ""))
        found = re.search(r"completion tokens:\s+~([\d,]+)", text)
        assert found is not None, text
        return int(found.group(1).replace(",", ""))

    rewrite_tokens = completion(rewrite.stdout, "")
    edit_tokens = completion(edit.stdout, "")
    assert edit_tokens < 0.15 * rewrite_tokens
    # Each run's line for the other mode agrees with the other run's own figure (same chunks).
    assert completion(rewrite.stdout, "with --cleaning edit") == pytest.approx(edit_tokens, rel=0.2)
