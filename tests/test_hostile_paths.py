"""Hostile page URLs and careless output directories, through the real CLI (issue 25).

The site (``testing/hostile/paths``) serves pages whose URLs try to put their files outside
``--pages-dir``, over 255-byte names and 4,096-byte paths, and onto each other. Checked from
the outside: every file on disk after the run (a walk of the whole temp directory), YAML
front matter read by a real parser, the exit code, the message and the report.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import HANG_GUARD_S, Result, cli_env, run_cli, running, sections, write_urls

from crawl4ai_llm_docs.testing.hostile.paths import ROOT, serve_paths

pytestmark = pytest.mark.slow

# Everything a run may write, relative to the test's directory.
OUTPUT_LOCATIONS = (
    "pages",
    "out",
    "xdg-cache",
    "xdg-config",
    "xdg-data",
)  # xdg-data: the docs index
# Written by the test itself.
INPUTS = {"urls.txt"}


def snapshot(tmp: Path) -> dict[str, bytes]:
    return {
        path.relative_to(tmp).as_posix(): path.read_bytes()
        for path in tmp.rglob("*")
        if path.is_file()
    }


def written_outside(tmp: Path) -> list[str]:
    """Files anywhere under ``tmp`` that are not in an output location or an input."""
    found = snapshot(tmp)
    return sorted(
        name
        for name in found
        if name.split("/", 1)[0] not in OUTPUT_LOCATIONS and name not in INPUTS
    )


def page_sources(pages: Path) -> list[str]:
    """The ``source`` of every page file, by its YAML front matter."""
    sources = []
    for path in pages.rglob("*"):
        if path.is_file():
            front = path.read_text(encoding="utf-8").split("---\n")[1]
            sources.append(yaml.safe_load(front)["source"])
    return sorted(sources)


def report(tmp: Path) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads((tmp / "out" / "docs.report.json").read_text())
    return fields


def assert_bounded(tmp: Path, result: Result) -> None:
    finished = report(tmp)["run_finished"]
    assert result.seconds < 60, result
    assert finished["peak_rss_mb"] < 300, finished


def run_args(*targets: str) -> list[str]:
    return [*targets, "--no-llm", "--crawler", "http", "--no-progress", "-o", "out/docs.md",
            "--pages-dir", "pages"]  # fmt: skip


def test_hostile_page_urls_from_a_url_file_all_land_inside(tmp_path: Path) -> None:
    with serve_paths() as site:
        write_urls(tmp_path / "urls.txt", site.urls())
        result = run_cli(run_args("urls.txt"), cwd=tmp_path, env=cli_env(tmp_path, api_key=None))
    assert result.code == 0, result
    assert written_outside(tmp_path) == []
    assert not (tmp_path.parent / "SIBLING.md").exists()
    # The page set is whole: one file per page, each its own (13 URLs, 13 files).
    assert page_sources(tmp_path / "pages") == sorted(site.urls())
    for path in (tmp_path / "pages").rglob("*"):
        assert all(len(part.encode()) <= 255 for part in path.relative_to(tmp_path).parts)
        assert len(str(path.resolve()).encode()) < 4096
    document = (tmp_path / "out" / "docs.md").read_text()
    assert sorted(s.source for s in sections(document)) == sorted(site.urls())
    assert_bounded(tmp_path, result)


def test_hostile_links_met_by_discovery_all_land_inside(tmp_path: Path) -> None:
    with serve_paths() as site:
        result = run_cli(
            run_args(site.url(ROOT), "--max-pages", "50"),
            cwd=tmp_path,
            env=cli_env(tmp_path, api_key=None),
        )
    assert result.code == 0, result
    assert written_outside(tmp_path) == []
    crawled = sorted(s.source for s in sections((tmp_path / "out" / "docs.md").read_text()))
    assert crawled == sorted(site.urls())  # every case found by its link, and written
    assert page_sources(tmp_path / "pages") == crawled
    assert_bounded(tmp_path, result)


def test_a_file_where_a_page_needs_a_directory_is_exit_4_and_nothing_replaced(
    tmp_path: Path,
) -> None:
    with serve_paths() as site:
        write_urls(tmp_path / "urls.txt", site.urls())
        env = cli_env(tmp_path, api_key=None)
        first = run_cli(run_args("urls.txt"), cwd=tmp_path, env=env)
        assert first.code == 0, first
        # A careless hand: the directory of /docs/x.md/y replaced by a file.
        blocker = next((tmp_path / "pages").rglob("x.md_"))
        for child in blocker.iterdir():
            child.unlink()
        blocker.rmdir()
        blocker.write_text("my notes")
        before = snapshot(tmp_path)
        second = run_cli(run_args("urls.txt"), cwd=tmp_path, env=env)
    assert second.code == 4, second
    message = " ".join(second.stderr.split())
    assert "Outputs could not be written" in message, second
    assert "is a file where a directory is needed" in message
    assert "Written: nothing; every previous file is as it was." in message
    assert "Not written: out/docs.md, the page files in pages." in message
    assert "Result: OUTPUTS NOT WRITTEN" in message  # the summary does not say "complete"
    after = snapshot(tmp_path)
    for name in ("out/docs.md", *(n for n in before if n.startswith("pages/"))):
        assert after[name] == before[name], name
    assert sorted(n for n in after if n.startswith("pages/")) == sorted(
        n for n in before if n.startswith("pages/")
    )
    finished = report(tmp_path)["run_finished"]
    assert finished["exit_code"] == 4
    assert finished["outputs"] == ["out/docs.report.json"]
    assert_bounded(tmp_path, second)


def _limited(args: list[str], tmp: Path, env: dict[str, str], max_bytes: int) -> Result:
    """The CLI with a file-size limit: writing past it fails (EFBIG), as a full disk does."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "crawl4ai_llm_docs", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
        preexec_fn=limit,
    )
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def test_a_write_error_mid_way_is_exit_4_and_keeps_the_previous_outputs(tmp_path: Path) -> None:
    with running(tmp_path, pages=12) as setup:
        args = [
            *setup.args("--no-llm", "--pages-dir", str(tmp_path / "pages")),
            "--max-file-tokens",
            "6000",
        ]
        first = setup.run(*args)
        assert first.code == 0, first
        before = snapshot(tmp_path)
        parts = sorted(n for n in before if ".part-" in n)
        assert len(parts) >= 2
        largest = max(len(before[name]) for name in parts)
        # Every page file and cache entry fits (a page is about 6 KB); the largest part does not.
        second = _limited(args, tmp_path, setup.env, largest - 100)
    assert second.code == 4, second
    message = " ".join(second.stderr.split())
    assert "Outputs could not be written (File too large: " in message, second
    assert "Written: nothing; every previous file is as it was." in message
    after = snapshot(tmp_path)
    for name in (*parts, *(n for n in before if n.startswith("pages/"))):
        assert after[name] == before[name], name
    assert not [n for n in after if "staging" in n]
    assert report(tmp_path)["run_finished"]["exit_code"] == 4
    assert_bounded(tmp_path, second)
