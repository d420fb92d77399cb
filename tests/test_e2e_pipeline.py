"""End to end through the real CLI: a local docs site, the fake provider, a subprocess run.

Counts come from the provider's own stats, never from the tool's report alone, so a test
fails when the tool says it did something it did not.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing
from e2e_support import (
    API_KEY,
    Setup,
    cli_env,
    failed_section,
    files_under,
    finish,
    interrupt,
    running,
    sections,
    wait_until,
)
from llms_txt import parse_llms_file  # type: ignore[import-untyped]
from llms_txt_parser import parse_llms_txt
from rich.console import Console

from crawl4ai_llm_docs.chunk.stage import ANSWER_HEADROOM, chunk_size
from crawl4ai_llm_docs.collect.spool import DocumentSpool
from crawl4ai_llm_docs.collect.stage import Collector
from crawl4ai_llm_docs.config import AppConfig, LLMConfig
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.lifecycle import paths
from crawl4ai_llm_docs.lifecycle import run as lifecycle
from crawl4ai_llm_docs.lifecycle.ending import Ending
from crawl4ai_llm_docs.lifecycle.estimate import (
    FIRST_TOKEN_S,
    OUTPUT_TOKENS_PER_S,
    PROMPT_OVERHEAD_TOKENS,
    Estimate,
)
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.lifecycle.run import Run
from crawl4ai_llm_docs.models import Chunk, ChunkResult, Page, UrlEntry
from crawl4ai_llm_docs.observe.events import LLMRequest, decode_event
from crawl4ai_llm_docs.observe.metrics import RunMetrics
from crawl4ai_llm_docs.testing.site.server import SiteConfig, page_title


def _assert_in_input_order(setup: Setup, markdown: str) -> None:
    found = sections(markdown)
    assert [s.number for s in found] == list(range(1, len(setup.urls) + 1))
    assert [s.source for s in found] == setup.urls
    for position, section in enumerate(found):
        assert section.title.startswith(page_title(position)), section.title


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_28_pages_in_parallel_come_out_complete_and_in_input_order(tmp_path: Path) -> None:
    # Jitter makes answers finish out of input order; the output must not follow them.
    provider = {"latency": 0.3, "latency_jitter": 0.25, "seed": 7}
    with running(tmp_path, pages=28, provider=provider) as setup:
        result = setup.run(*setup.args("--max-concurrent", "8"))
        stats = setup.provider.stats()
    assert result.code == 0, result
    markdown = setup.output.read_text()
    _assert_in_input_order(setup, markdown)
    assert "## Contents" in markdown
    toc = re.findall(r"^- \[(\d+)\. .+\]\(#\d+-.+\)$", markdown, re.MULTILINE)
    assert toc == [str(n) for n in range(1, 29)]
    assert "Pages that failed" not in markdown
    assert "**Incomplete:**" not in markdown
    # The page text made it through the provider: every page's code sample is there.
    for index in range(28):
        assert f"def example_{index}_0(client):" in markdown
    assert stats.requests == 28
    assert stats.successes == 28
    assert 1 < stats.max_in_flight <= 8
    report = json.loads(setup.report.read_text())
    assert report["run_finished"]["documents"] == 28
    assert report["run_finished"]["exit_code"] == 0
    assert report["run_finished"]["incomplete"] is False
    assert report["failures"] == []
    assert _mode(setup.output) == 0o600
    assert _mode(setup.report) == 0o600
    assert "Run summary" in result.stderr
    assert API_KEY not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_page_larger_than_a_chunk_is_split_and_reassembled_in_order(tmp_path: Path) -> None:
    env_limits = {
        "CRAWL4AI_LLM_DOCS_LLM__CHUNK_MAX_TOKENS": "300",
        "CRAWL4AI_LLM_DOCS_LLM__CHUNK_MIN_TOKENS": "100",
    }
    with running(tmp_path, pages=2, site=SiteConfig(pages=2, sections=5)) as setup:
        raw = setup.run(
            *setup.args("--no-llm", llm=False, output=tmp_path / "raw.md"),
            env=cli_env(tmp_path, api_key=None),
        )
        assert raw.code == 0, raw
        result = setup.run(*setup.args("--cleaning", "rewrite"), env={**setup.env, **env_limits})
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.requests > 2 * 3  # every page needed several chunks
    assert stats.successes == stats.requests
    assert len(set(stats.documents)) == stats.requests  # no chunk was sent twice
    markdown = setup.output.read_text()
    _assert_in_input_order(setup, markdown)
    # The fake provider echoes each chunk, so the reassembled page must be the crawled page:
    # every section and every line, in the same order, nothing doubled.
    raw_sections = sections((tmp_path / "raw.md").read_text())
    for cleaned, crawled in zip(sections(markdown), raw_sections, strict=True):
        assert cleaned.body.split() == crawled.body.split()
        headings = re.findall(r"^#+ Section (\d+) of", cleaned.body, re.MULTILINE)
        assert headings == ["0", "1", "2", "3", "4"]


def _split_outcomes(log_file: Path) -> int:
    events = [decode_event(line) for line in log_file.read_bytes().splitlines()]
    return sum(isinstance(e, LLMRequest) and e.outcome == "split" for e in events)


@pytest.mark.slow
def test_default_chunks_fit_the_answer_limit(tmp_path: Path) -> None:
    """A chunk whose cleaned text cannot fit in llm.max_tokens is cut off and paid twice."""
    log_file = tmp_path / "run.jsonl"
    with running(tmp_path, site=SiteConfig(pages=1, sections=60)) as setup:
        result = setup.run(*setup.args("--cleaning", "rewrite", "--log-json", str(log_file)))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.requests > 4  # the page did need several chunks
    assert _split_outcomes(log_file) == 0
    assert stats.requests == stats.successes == len(set(stats.documents))


@pytest.mark.slow
def test_tokens_of_cut_off_answers_are_counted(tmp_path: Path) -> None:
    log_file = tmp_path / "run.jsonl"
    provider = {"max_output_tokens": 1200}
    with running(tmp_path, site=SiteConfig(pages=1, sections=12), provider=provider) as setup:
        result = setup.run(*setup.args("--cleaning", "rewrite", "--log-json", str(log_file)))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert _split_outcomes(log_file) > 0  # the provider did cut answers off
    report = json.loads(setup.report.read_text())["run_finished"]
    assert report["prompt_tokens"] == stats.prompt_tokens
    assert report["completion_tokens"] == stats.completion_tokens


@pytest.mark.slow
def test_llms_txt_lists_every_page_with_the_llm_description(tmp_path: Path) -> None:
    llms_dir = tmp_path / "llms"
    with running(tmp_path, pages=5) as setup:
        result = setup.run(*setup.args("--llms-txt", str(llms_dir)))
    assert result.code == 0, result
    index = parse_llms_txt((llms_dir / "llms.txt").read_text())
    links = [link for section in index.sections.values() for link in section]
    assert [link.url for link in links] == setup.urls
    for position, link in enumerate(links):
        assert link.name.startswith(page_title(position))
        # The fake provider's <!-- description --> line names the page's first heading.
        assert link.notes == f'Fake summary of "{page_title(position)}".'
    # The reference parser (PyPI llms-txt) reads the site's name, the summary and every link.
    reference = parse_llms_file((llms_dir / "llms.txt").read_text())
    assert reference.title == "Example Docs"  # the titles' shared suffix
    assert reference.summary
    assert "llms-full.txt" in reference.info
    reference_links = [link for links in reference.sections.values() for link in links]
    assert [link["title"] for link in reference_links] == [link.name for link in links]
    assert all(link["desc"] for link in reference_links)
    assert not any(link.name.endswith("Example Docs") for link in links)
    full = (llms_dir / "llms-full.txt").read_text()
    sources = re.findall(r"^Source: (\S+)$", full, re.MULTILINE)
    assert sources == setup.urls
    for index_ in range(5):
        assert f"def example_{index_}_0(client):" in full
    assert "description:" not in full  # the description line is metadata, not content
    for path in (llms_dir / "llms.txt", llms_dir / "llms-full.txt"):
        assert _mode(path) == 0o600


@pytest.mark.slow
def test_no_llm_needs_no_key_and_sends_nothing(tmp_path: Path) -> None:
    with running(tmp_path, pages=3) as setup:
        result = setup.run(*setup.args("--no-llm", llm=False), env=cli_env(tmp_path, api_key=None))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.requests == 0
    markdown = setup.output.read_text()
    _assert_in_input_order(setup, markdown)
    for index in range(3):
        assert f"def example_{index}_0(client):" in markdown


@pytest.mark.slow
def test_dry_run_prints_estimates_and_sends_nothing(tmp_path: Path) -> None:
    with running(tmp_path, pages=4) as setup:
        result = setup.run(*setup.args("--dry-run", "--max-concurrent", "2"))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.requests == 0
    assert not setup.output.exists()
    assert not setup.report.exists()
    # The estimate is the command's result: on stdout, where a script can capture it.
    assert "no LLM request sent" in result.stdout
    assert re.search(r"requests:\s+4$", result.stdout, re.MULTILINE), result
    assert re.search(r"prompt tokens:\s+~[\d,]+", result.stdout)
    assert re.search(r"estimated time:\s+~\d+ s at 2 concurrent", result.stdout)


@pytest.mark.slow
def test_sequential_sends_one_request_at_a_time(tmp_path: Path) -> None:
    with running(tmp_path, pages=4, provider={"latency": 0.1}) as setup:
        result = setup.run(*setup.args("--sequential", "--max-concurrent", "8"))
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.requests == 4
    assert stats.max_in_flight == 1


# ---------------------------------------------------------------- failures


@pytest.mark.slow
def test_failed_pages_are_listed_with_their_reason_and_exit_1(tmp_path: Path) -> None:
    site = SiteConfig(pages=4, statuses={"/docs/page-002.html": 404})
    extra = ["/special/file.pdf", "/special/missing.html"]
    with running(tmp_path, site=site, extra_paths=extra) as setup:
        result = setup.run(*setup.args())
        stats = setup.provider.stats()
    assert result.code == 1, result
    assert stats.requests == 3  # only the pages that were crawled went to the LLM
    markdown = setup.output.read_text()
    written = sections(markdown)
    assert [s.source for s in written] == [setup.urls[i] for i in (0, 1, 3)]
    failed = failed_section(markdown)
    lines = {line.split(": ", 1)[0][2:]: line for line in failed.splitlines() if line}
    assert list(lines) == [setup.urls[2], setup.urls[4], setup.urls[5]]  # input order
    assert "404" in lines[setup.urls[2]]
    assert "404" in lines[setup.urls[5]]
    assert "pdf" in lines[setup.urls[4]].lower()
    report = json.loads(setup.report.read_text())
    assert {url for url, _ in report["failures"]} == set(lines)
    assert report["run_finished"]["exit_code"] == 1


@pytest.mark.slow
def test_out_of_quota_stops_at_once_and_keeps_finished_documents(tmp_path: Path) -> None:
    provider = {"quota_after": 5, "latency": 0.2}
    with running(tmp_path, pages=12, provider=provider) as setup:
        result = setup.run(*setup.args("--max-concurrent", "4"))
        stats = setup.provider.stats()
    assert result.code == 3, result
    # The provider checks its quota when a request arrives: requests admitted before the
    # refusal are answered, and their answers (paid for) must reach the output.
    assert stats.successes >= 5
    assert stats.quota_refused >= 1
    # Only requests already on their way when the first refusal came may follow it.
    assert stats.requests_after_fatal <= 4 - 1
    assert "quota" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    markdown = setup.output.read_text()
    assert "**Incomplete:**" in markdown
    written = sections(markdown)
    assert len(written) == stats.successes < 12
    assert [s.source for s in written] == sorted((s.source for s in written), key=setup.urls.index)
    unfinished = failed_section(markdown)
    for url in set(setup.urls) - {s.source for s in written}:
        assert url in unfinished
    report = json.loads(setup.report.read_text())
    assert report["run_finished"]["incomplete"] is True
    assert report["run_finished"]["documents"] == stats.successes


@pytest.mark.slow
def test_a_rejected_key_exits_3_with_a_message_and_never_prints_the_key(tmp_path: Path) -> None:
    with running(tmp_path, pages=3, provider={"require_api_key": "sk-the-right-key"}) as setup:
        result = setup.run(*setup.args())
        stats = setup.provider.stats()
    assert result.code == 3, result
    assert stats.successes == 0
    assert stats.requests <= 4  # one refusal stops the run; at most the ones in flight
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert re.search(r"(?i)api key|auth|401", text), text
    for path in files_under(tmp_path / "out", tmp_path / "xdg-cache"):
        assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in text


@pytest.mark.slow
def test_unanswered_chunks_keep_the_crawled_text_and_exit_1(tmp_path: Path) -> None:
    """No lost work: when every request fails, each page keeps its crawled Markdown."""
    env = {**cli_env(tmp_path), "CRAWL4AI_LLM_DOCS_LLM__MAX_RETRIES": "1"}
    with running(tmp_path, pages=3, provider={"error_rate": 1.0, "error_codes": [500]}) as setup:
        result = setup.run(*setup.args("--disable-circuit-breaker"), env=env)
        stats = setup.provider.stats()
    assert result.code == 1, result
    assert stats.requests == 3 * 2  # one retry each, then the crawled text is kept
    markdown = setup.output.read_text()
    _assert_in_input_order(setup, markdown)
    for index in range(3):
        assert f"def example_{index}_0(client):" in markdown
    report = json.loads(setup.report.read_text())
    assert sorted(url for url, _ in report["warnings"]) == sorted(setup.urls)
    assert all("LLM request failed" in note for _, note in report["warnings"])
    # Exit 1 means "some pages failed, the output lists them": it does, and so does the report.
    listed = failed_section(markdown)
    assert re.findall(r"^- (\S+): crawled text kept, not cleaned by the LLM", listed, re.M) == (
        setup.urls  # in input order, whatever order the requests gave up in
    )
    assert report["run_finished"]["failed_pages"] == 3
    # Fallbacks are not cached: the next run asks the provider again.
    cached = [path for path in files_under(tmp_path / "xdg-cache") if "results" in path.parts]
    assert cached == []


@pytest.mark.slow
def test_llm_work_starts_before_the_crawl_ends(tmp_path: Path) -> None:
    # One page takes 60 s to serve: every other page must be cleaned meanwhile.
    slow = "/docs/page-005.html"
    site = SiteConfig(pages=6, delays={slow: 60.0})
    log_file = tmp_path / "run.jsonl"
    with running(tmp_path, site=site) as setup:
        process = setup.start(*setup.args("--max-concurrent", "2", "--log-json", str(log_file)))
        try:
            wait_until(lambda: setup.provider.stats().successes == 5, what="5 pages cleaned")
            assert setup.site.hits[slow] == 1  # requested, still unanswered
            # The provider has answered; wait until the CLI has received all five answers too.
            wait_until(lambda: _ok_requests(log_file) == 5, what="5 answers received")
            time.sleep(0.5)  # and handed them to the writer
        finally:
            interrupt(process)
            result = finish(process)
    assert result.code == 130, result
    assert len(sections(setup.output.read_text())) == 5


def _ok_requests(log_file: Path) -> int:
    if not log_file.exists():
        return 0
    return log_file.read_text().count('"outcome":"ok"')


# ---------------------------------------------------------------- output locations (exit 2)


def _usage_error(setup: Setup, *args: str) -> str:
    before = setup.urls_file.read_bytes()
    result = setup.run(*args)
    assert result.code == 2, result
    assert "Traceback" not in result.stderr
    assert setup.urls_file.read_bytes() == before  # the input is never touched
    assert setup.site.hits.total() == 0  # refused before any work
    return " ".join(result.stderr.split())


@pytest.mark.slow
def test_bad_output_locations_are_refused_before_any_work(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    (tmp_path / "a-dir").mkdir()
    with running(tmp_path, pages=1) as setup:
        urls = str(setup.urls_file)
        message = _usage_error(setup, urls, "-o", str(tmp_path / "a-dir"), "--no-llm")
        assert "is a directory" in message
        message = _usage_error(setup, urls, "-o", urls, "--no-llm")
        assert "URL file itself" in message
        message = _usage_error(setup, urls, "-o", str(a_file / "docs.md"), "--no-llm")
        assert "is a file" in message
        message = _usage_error(setup, urls, "--llms-txt", str(a_file), "--no-llm")
        assert "--llms-txt" in message
        # The JSON log is opened in append mode: pointed at the URL file it would corrupt it.
        message = _usage_error(setup, urls, "--log-json", urls, "--no-llm")
        assert "URL file" in message
        message = _usage_error(setup, urls, "--log-json", str(tmp_path / "a-dir"), "--no-llm")
        assert "--log-json" in message
        message = _usage_error(
            setup, urls, "--llms-txt", str(tmp_path), "-o", str(tmp_path / "llms.txt"), "--no-llm"
        )
        assert "llms.txt" in message


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any directory")
def test_an_unwritable_output_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with running(tmp_path, pages=1) as setup:
        message = _usage_error(
            setup, str(setup.urls_file), "-o", str(locked / "docs.md"), "--no-llm"
        )
    assert "not writable" in message


def _options(tmp_path: Path, **changes: Any) -> tuple[RunOptions, AppConfig]:
    urls = tmp_path / "urls.txt"
    urls.write_text("https://docs.test/a\n")
    config = msgspec.convert({"output": {"path": str(tmp_path / "out.md"), **changes}}, AppConfig)
    return RunOptions(urls_file=urls), config


def test_paths_unwritable_directory_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs as root too, where a real read-only directory is writable anyway.
    options, config = _options(tmp_path)
    monkeypatch.setattr(paths.os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="not writable"):
        paths.check_output_locations(options, config)


def test_paths_accept_fresh_nested_directories(tmp_path: Path) -> None:
    options, config = _options(tmp_path, llms_txt_dir=str(tmp_path / "new" / "llms"))
    paths.check_output_locations(options, config)  # created later by the writers


# ---------------------------------------------------------------- collector and pipeline units


def _page(index: int) -> Page:
    return Page(
        index=index,
        url=f"https://docs.test/{index}",
        final_url=f"https://docs.test/{index}",
        title=f"Page {index}",
        markdown="",
        status=200,
        error=None,
        elapsed=0.1,
        bytes=100,
    )


def _result(page: int, chunk: int, count: int) -> ChunkResult:
    return ChunkResult(
        page_index=page,
        chunk_index=chunk,
        chunk_count=count,
        markdown=f"page {page} part {chunk}",
        description=f"about page {page}" if chunk == 0 else "",
    )


async def test_collector_restores_input_and_chunk_order(tmp_path: Path) -> None:
    async with DocumentSpool(tmp_path) as spool:
        collector = Collector(spool, None)
        for index in range(4):
            collector.expect(_page(index))
        # Results arrive in completion order: pages and chunks interleaved and reversed.
        arrivals = [(3, 1, 2), (2, 0, 1), (3, 0, 2), (0, 2, 3), (0, 0, 3), (1, 0, 1)]
        for page, chunk, count in arrivals:
            await collector.add_result(_result(page, chunk, count))
        assert collector.stored == {1, 2, 3}
        assert [page.index for page in collector.pending_pages] == [0]  # part 2 of 3 missing
        await collector.add_result(_result(0, 1, 3))
        documents = list(spool)
    assert [d.index for d in documents] == [0, 1, 2, 3]
    assert documents[0].markdown == "page 0 part 0\n\npage 0 part 1\n\npage 0 part 2"
    assert documents[3].markdown == "page 3 part 0\n\npage 3 part 1"
    assert documents[3].description == "about page 3"
    assert collector.documents == 4
    assert collector.pending_pages == []


def _run(tmp_path: Path, entries: int, **parallel: Any) -> Run:
    config = msgspec.convert({"parallel": parallel}, AppConfig)
    urls = [UrlEntry(index=i, url=f"https://docs.test/{i}", line=i + 1) for i in range(entries)]
    options = RunOptions(urls_file=tmp_path / "urls.txt")
    return Run(options, config, urls, Console(file=io.StringIO()))


async def test_unfinished_lists_every_page_without_a_document(tmp_path: Path) -> None:
    run = _run(tmp_path, 5)
    async with DocumentSpool(tmp_path) as spool:
        collector = Collector(spool, None)
        await collector.add_raw(_page(0))
        collector.expect(_page(1))  # its chunks were in flight
        await collector.add_failed(msgspec.structs.replace(_page(3), error="HTTP 404"))
        # Page 2 was cut off between crawl and chunking; page 4 was never crawled.
        assert run._unfinished(collector) == [
            (
                f"https://docs.test/{i}",
                "no result was produced for this page (a bug: please report it)",
            )
            for i in (1, 2, 4)
        ]
        run.ending = Ending.interrupted(signal.SIGINT)
        assert run._unfinished(collector) == [
            (f"https://docs.test/{i}", "not finished (run interrupted)") for i in (1, 2, 4)
        ]
        run.ending = Ending.stopped("no quota")
        assert {reason for _, reason in run._unfinished(collector)} == {
            "not finished (run stopped: no quota)"
        }


# ---------------------------------------------------------------- --dry-run estimate


def _chunks(*tokens: int) -> list[Chunk]:
    return [
        Chunk(
            page_index=0,
            chunk_index=i,
            chunk_count=len(tokens),
            url="https://docs.test/0",
            title="Page",
            text="x",
            tokens=count,
        )
        for i, count in enumerate(tokens)
    ]


def test_estimate_arithmetic() -> None:
    config = msgspec.convert(
        {
            "llm": {
                "cleaning": "rewrite",  # answers as long as their chunks, capped at max_tokens
                "max_tokens": 1000,
                "input_price_per_mtok": 1.0,
                "output_price_per_mtok": 4.0,
            },
            "parallel": {"max_concurrent_requests": 2},
        },
        AppConfig,
    )
    estimate = Estimate(config)
    estimate.add_page(_chunks(600, 1200))  # the second answer is capped at max_tokens
    for tokens in (300, 600, 600):
        estimate.add_page(_chunks(tokens))
    overhead = PROMPT_OVERHEAD_TOKENS
    assert estimate.pages == 4
    assert estimate.requests == 5
    assert estimate.prompt_tokens == 3300 + 5 * overhead
    assert estimate.completion_tokens == 600 + 1000 + 300 + 600 + 600
    assert estimate.projected_chunks(8) == 10  # 1.25 chunks per page so far
    assert estimate.projected_chunks(1) == 5  # never fewer than already counted
    # Two slots share five requests' worth of waiting and writing.
    assert estimate.seconds() == pytest.approx((5 * FIRST_TOKEN_S + 3100 / OUTPUT_TOKENS_PER_S) / 2)
    cost = estimate.cost()
    assert cost == pytest.approx((estimate.prompt_tokens * 1.0 + 3100 * 4.0) / 1e6)
    text = estimate.render(8)
    assert "4 of 8 pages" in text
    assert re.search(r"requests:\s+5$", text, re.MULTILINE)
    assert re.search(r"estimated cost:\s+~\$0\.0\d+", text)


def test_estimate_time_is_never_below_the_longest_request() -> None:
    # One request cannot use four slots: the run takes as long as that request.
    config = msgspec.convert(
        {"llm": {"cleaning": "rewrite"}, "parallel": {"max_concurrent_requests": 4}}, AppConfig
    )
    estimate = Estimate(config)
    estimate.add_page(_chunks(600))
    assert estimate.seconds() == pytest.approx(FIRST_TOKEN_S + 600 / OUTPUT_TOKENS_PER_S)
    assert Estimate(config).seconds() == 0.0


def test_estimate_respects_static_rate_caps() -> None:
    config = msgspec.convert(
        {"parallel": {"max_concurrent_requests": 20, "requests_per_minute": 30}}, AppConfig
    )
    estimate = Estimate(config)
    for _ in range(60):
        estimate.add_page(_chunks(10))
    assert estimate.seconds() == pytest.approx(60 / 30 * 60)


async def test_failed_pages_are_not_counted_as_documents_written(tmp_path: Path) -> None:
    metrics = RunMetrics()
    async with DocumentSpool(tmp_path) as spool:
        collector = Collector(spool, metrics)
        await collector.add_raw(_page(0))
        await collector.add_failed(msgspec.structs.replace(_page(1), error="HTTP 404"))
    assert collector.documents == 1
    assert metrics.snapshot().documents_written == 1
    assert collector.failures == [("https://docs.test/1", "HTTP 404")]


def test_chunk_size_leaves_room_for_the_answer() -> None:
    def llm(**fields: int) -> LLMConfig:  # rewrite mode: the answer is as long as the chunk
        return msgspec.convert({"llm": {"cleaning": "rewrite", **fields}}, AppConfig).llm

    assert chunk_size(llm()) == int(4096 * ANSWER_HEADROOM)  # the defaults: 4000 vs 4096
    assert chunk_size(llm(chunk_max_tokens=1000)) == 1000  # small chunks are kept
    assert chunk_size(llm(max_tokens=100_000, chunk_max_tokens=20_000)) == 20_000
    # A tiny answer limit does not shred pages below the smallest chunk allowed.
    assert chunk_size(llm(max_tokens=300, chunk_min_tokens=500)) == 500


async def test_a_page_with_an_unanswered_part_is_an_llm_failure(tmp_path: Path) -> None:
    async with DocumentSpool(tmp_path) as spool:
        collector = Collector(spool, None)
        collector.expect(_page(0))
        collector.expect(_page(1))
        kept = msgspec.structs.replace(
            _result(0, 1, 2), source="fallback", warning="LLM request failed", llm_failed=True
        )
        unfaithful = msgspec.structs.replace(
            _result(1, 0, 1), source="fallback", warning="answer discarded: too short"
        )
        for result in (_result(0, 0, 2), kept, unfaithful):
            await collector.add_result(result)
    [(url, reason)] = collector.llm_failed  # listed as failed, exit 1
    assert url == "https://docs.test/0"
    assert reason == "crawled text kept, not cleaned by the LLM (part 2: LLM request failed)"
    assert [url for url, _ in collector.warnings] == ["https://docs.test/0", "https://docs.test/1"]
    assert collector.documents == 2  # both still written, with the crawled text where needed


# ---------------------------------------------------------------- Ctrl-C handling, in process


async def _signals_seen(run: Run, count: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(run._watch_signals)
        for _ in range(count):
            signal.raise_signal(signal.SIGINT)
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("after_the_work", [False, True])
async def test_the_second_ctrl_c_exits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after_the_work: bool
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(lifecycle.os, "_exit", exits.append)
    run = _run(tmp_path, 1)
    if after_the_work:
        run.end_work()
    await _signals_seen(run, 1)
    assert exits == []
    # Before the work ended the first Ctrl-C stops it; after, the output is finished first.
    assert run.interrupted is not after_the_work
    assert run.work_scope.cancel_called is not after_the_work
    await _signals_seen(run, 1)
    assert exits == [130]
