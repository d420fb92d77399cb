"""The main command's options are one flattened ``RunFlags`` object: parsed from the command
line into it, and turned into config overrides that name the flag they came from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crawl4ai_llm_docs.cli.app import app, run_cli
from crawl4ai_llm_docs.cli.discover import DiscoverFlags
from crawl4ai_llm_docs.cli.run import RunFlags


def test_the_command_line_binds_one_flags_object() -> None:
    _, bound, _ = app.parse_args(
        ["urls.txt", "--max-concurrent", "8", "--no-cache", "-o", "out.md", "--max-pages", "5"]
    )
    flags = bound.arguments["flags"]
    assert isinstance(flags, RunFlags)
    assert (flags.max_concurrent, flags.no_cache, flags.output) == (8, True, Path("out.md"))
    assert bound.arguments["discover"] == DiscoverFlags(max_pages=5)
    assert bound.arguments["targets"] == ("urls.txt",)


def test_unset_flags_override_nothing() -> None:
    assert RunFlags().overrides() == {}


def test_each_flag_names_its_config_key_and_origin() -> None:
    flags = RunFlags(
        output=Path("doc.md"),
        max_concurrent=3,
        sequential=True,
        insecure=True,
        batch=True,
        no_progress=True,
        crawler="http",
    )
    assert flags.overrides() == {
        "output.path": ("doc.md", "flag -o/--output"),
        "parallel.max_concurrent_requests": (3, "flag --max-concurrent"),
        "parallel.enable_parallel_processing": (False, "flag --sequential"),
        "llm.verify_tls": (False, "flag --insecure"),
        "crawl.verify_tls": (False, "flag --insecure"),
        "llm.mode": ("batch", "flag --batch"),
        "logging.progress": (False, "flag --no-progress"),
        "crawl.mode": ("http", "flag --crawler"),
    }


def test_every_run_flag_is_an_option_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    """A field added to ``RunFlags`` shows up in ``--help`` under its own name."""
    assert run_cli(["--help"]) == 0
    shown = capsys.readouterr().out
    for field in dataclasses.fields(RunFlags):
        option = "--" + field.name.replace("_", "-")
        assert option in shown, option
