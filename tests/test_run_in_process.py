"""Whole runs in this process: ``pipeline.run_command`` over the loopback site and provider.

The CLI tests run the same code in a subprocess; these show each way a run ends (finished,
stopped by the provider, interrupted, --dry-run, --no-llm) from the wiring's side.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import trio

from crawl4ai_llm_docs import pipeline
from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, serve
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, serve_site

pytestmark = pytest.mark.slow

PAGES = 3


class Bench:
    def __init__(self, tmp: Path, site: SiteHandle, provider: FakeProvider) -> None:
        self.tmp = tmp
        self.site = site
        self.provider = provider
        self.urls = tmp / "urls.txt"
        self.urls.write_text("\n".join(site.page_urls()) + "\n")
        self.output = tmp / "out" / "docs.md"

    async def run(self, *, dry_run: bool = False, no_llm: bool = False, **llm: Any) -> int:
        config = self.tmp / "config.toml"
        settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in llm.items())
        config.write_text(
            f'[llm]\nbase_url = "{self.provider.base_url}"\n{settings}'
            f'[crawl]\nmode = "http"\n'
            f"[parallel]\nmax_concurrent_requests = 1\n"
            f'[output]\npath = "{self.output}"\ncache_dir = "{self.tmp / "cache"}"\n'
            f"[logging]\nprogress = false\n"
        )
        loaded = load_config(config_file=config, environ={"OPENAI_API_KEY": "test-key"})
        options = RunOptions(urls_file=self.urls, dry_run=dry_run, no_llm=no_llm)
        with trio.fail_after(120):
            return await pipeline.run_command(options, loaded)

    def sections(self) -> int:
        return self.output.read_text().count("\n## ")


@pytest.fixture
async def bench(nursery: trio.Nursery, tmp_path: Path) -> Bench:
    site: SiteHandle = await nursery.start(serve_site, SiteConfig(pages=PAGES))
    provider: FakeProvider = await nursery.start(serve, make_config({"latency": 0.01}))
    return Bench(tmp_path, site, provider)


async def test_a_finished_run(bench: Bench) -> None:
    assert await bench.run() == 0
    markdown = bench.output.read_text()
    assert "**Incomplete:**" not in markdown
    assert bench.sections() >= PAGES
    report = json.loads(bench.output.with_suffix(".report.json").read_text())
    assert report["run_finished"]["exit_code"] == 0
    assert bench.provider.stats().successes == PAGES


async def test_a_run_the_provider_stops(bench: Bench) -> None:
    bench.provider.update(quota_after=1)  # then every request: insufficient_quota (fatal)
    assert await bench.run() == 3
    markdown = bench.output.read_text()
    assert "**Incomplete:**" in markdown
    assert "stopped:" in markdown
    assert "not finished (run stopped:" in markdown
    report = json.loads(bench.output.with_suffix(".report.json").read_text())
    assert report["run_finished"]["incomplete"] is True


async def test_an_interrupted_run(bench: Bench) -> None:
    bench.provider.update(latency=600.0)

    async def interrupt_when_waiting() -> None:
        # The provider's counters have no event to wait on: poll them, as a user would look.
        while bench.provider.stats().in_flight < 1:  # noqa: ASYNC110
            await trio.sleep(0.02)
        signal.raise_signal(signal.SIGINT)  # the run's watcher turns it into a stop

    async with trio.open_nursery() as nursery:
        nursery.start_soon(interrupt_when_waiting)
        code = await bench.run()
    assert code == 130
    markdown = bench.output.read_text()
    assert "**Incomplete:**" in markdown
    assert "interrupted with Ctrl-C" in markdown
    assert "not finished (run interrupted)" in markdown


async def test_dry_run_and_no_llm(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    assert await bench.run(dry_run=True) == 0
    assert f"{PAGES} of {PAGES} pages" in capsys.readouterr().out
    assert not bench.output.exists()
    assert bench.provider.stats().requests == 0
    assert await bench.run(no_llm=True) == 0
    assert bench.sections() >= PAGES
    assert bench.provider.stats().requests == 0
