"""The discovery command line in-process (for coverage of its parsing and messages):
positional targets, the shared options, ``map`` to a file and to standard output."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from crawl4ai_llm_docs.cli.app import run_cli
from crawl4ai_llm_docs.cli.discover import DiscoverFlags, roots_stem, split_targets
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, run_site_in_thread


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in list(os.environ):
        if name.startswith("CRAWL4AI_LLM_DOCS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def site() -> Iterator[SiteHandle]:
    with run_site_in_thread(SiteConfig(pages=8)) as handle:
        yield handle


def cli(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = run_cli(argv, stderr=Console(file=buffer, width=300, highlight=False))
    return code, buffer.getvalue()


def test_targets_are_one_url_file_or_root_urls() -> None:
    assert split_targets(("urls.txt",)) == (Path("urls.txt"), [])
    assert split_targets(("HTTPS://Docs.X.org/en/", "https://docs.x.org/api/#top")) == (
        None,
        ["https://docs.x.org/en/", "https://docs.x.org/api/"],
    )
    for bad, message in [
        ((), "Give a URL file"),
        (("a.txt", "b.txt"), "Give one URL file, not 2"),
        (("a.txt", "https://x.org/"), "Mixed a URL file"),
        (("ftp://x.org/",), "unsupported scheme"),
    ]:
        with pytest.raises(InputError, match=message):
            split_targets(bad)


def test_output_stem_of_a_root() -> None:
    assert roots_stem(["https://docs.x.org/en/stable/"]) == "docs_x_org-en-stable"
    assert roots_stem(["https://docs.x.org/en/index.html"]) == "docs_x_org-en"
    assert roots_stem(["http://127.0.0.1:8000/"]) == "127_0_0_1"


def test_flags_become_discover_overrides() -> None:
    flags = DiscoverFlags(
        max_pages=40,
        max_depth=2,
        include=["/a/*"],
        exclude=["*old*"],
        whole_site=True,
        sources="sitemap, links,links",
    )
    assert flags.overrides() == {
        "discover.max_pages": (40, "flag --max-pages"),
        "discover.max_depth": (2, "flag --max-depth"),
        "discover.include": (["/a/*"], "flag --include"),
        "discover.exclude": (["*old*"], "flag --exclude"),
        "discover.whole_site": (True, "flag --whole-site"),
        "discover.sources": (["sitemap", "links"], "flag --sources"),
    }
    assert DiscoverFlags().overrides() == {}
    with pytest.raises(InputError, match="is not a source"):
        DiscoverFlags(sources="links,feeds").overrides()
    with pytest.raises(InputError, match="nothing is not a source"):
        DiscoverFlags(sources=" , ").overrides()


def test_map_to_a_file_and_to_stdout(
    site: SiteHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "urls.txt"
    code, err = cli(
        ["map", site.url("/docs/"), "-o", str(out), "--no-progress", "--include", "*page-00[1-3]*"]
    )
    assert code == 0, err
    assert [line for line in out.read_text().splitlines() if line.startswith("http")] == [
        site.url(f"/docs/page-00{i}.html") for i in (1, 2, 3)
    ]
    assert f"Listed 3 pages in {out}" in " ".join(capsys.readouterr().err.split())
    code, err = cli(
        ["map", site.url("/docs/"), "--max-pages", "2", "--crawl-concurrency", "1", "--insecure"]
    )
    assert code == 0, err
    printed = capsys.readouterr().out
    assert [line for line in printed.splitlines() if line.startswith("http")] == [
        site.url("/docs/"),
        site.url("/docs/page-000.html"),
    ]


def test_map_refuses_a_file_and_a_directory_as_output(site: SiteHandle, tmp_path: Path) -> None:
    code, err = cli(["map", "urls.txt"])
    assert code == 2
    assert "map takes root URLs" in err
    code, err = cli(["map", site.url("/docs/"), "-o", str(tmp_path)])
    assert code == 2
    assert "is a directory" in err


def test_a_run_from_a_root_in_process(site: SiteHandle, tmp_path: Path) -> None:
    out = tmp_path / "out.md"
    args = [site.url("/docs/"), "--no-llm", "--no-progress", "--crawler", "http", "-o", str(out)]
    code, err = cli([*args, "--max-pages", "4", "--log-json", str(tmp_path / "log.jsonl")])
    assert code == 0, err
    text = out.read_text()
    sources = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("Source: ")]
    assert sources == [site.url("/docs/")] + [site.url(f"/docs/page-00{i}.html") for i in range(3)]
    log = (tmp_path / "log.jsonl").read_text()
    assert '"discovery_discovered"' in log


def test_discover_config_from_the_environment() -> None:
    from crawl4ai_llm_docs.config import load_config
    from crawl4ai_llm_docs.errors import ConfigError

    loaded = load_config(environ={"CRAWL4AI_LLM_DOCS_DISCOVER__SOURCES": "links, sitemap"})
    assert loaded.config.discover.sources == ["links", "sitemap"]
    with pytest.raises(ConfigError, match="expected a list of 'llms-txt', 'sitemap', 'links'"):
        load_config(environ={"CRAWL4AI_LLM_DOCS_DISCOVER__SOURCES": "rss"})
    loaded = load_config(environ={"CRAWL4AI_LLM_DOCS_DISCOVER__EXCLUDE": "*/old/*"})
    assert loaded.config.discover.exclude == ["*/old/*"]
