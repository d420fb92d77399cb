"""``--help`` keeps every option name on one line, at any width down to 80 columns."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from crawl4ai_llm_docs.cli.app import app

COMMANDS = [[], ["check"], ["config", "show"], ["config", "init"], ["config", "path"]]
WIDTHS = [80, 81, 87, 92, 100, 120, 160, 240]
_NAME = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def render_help(command: list[str], width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    app([*command, "--help"], console=console, exit_on_error=False)
    return out.getvalue()


def names(text: str) -> set[str]:
    return set(_NAME.findall(text))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_option_names_are_never_broken(command: list[str]) -> None:
    wide = names(render_help(command, 1000))  # nothing wraps at this width
    assert wide or command == ["config", "path"]  # every other command has options
    for width in WIDTHS:
        text = render_help(command, width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert names(text) == wide, f"at {width} columns"


def test_the_long_flag_fits_at_80_columns() -> None:
    text = render_help([], 80)
    [line] = [line for line in text.splitlines() if "--disable-adaptive-rate-limiting" in line]
    assert "--disable-adaptive-rate-limiting  " in line  # its description follows on the line


def test_check_help_lists_the_provider_options() -> None:
    text = render_help(["check"], 80)
    for flag in ("--base-url", "--model", "--config", "--insecure"):
        assert flag in names(text)


def test_help_of_the_installed_command_at_columns_80() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "crawl4ai_llm_docs", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "--disable-adaptive-rate-limiting" in done.stdout
    assert "limi\n" not in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
