"""``crawl4ai-llm-docs config show|init|path``: the configuration files and what they set."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from cyclopts import App, Parameter

from crawl4ai_llm_docs.cli.flags import ConfigFile
from crawl4ai_llm_docs.config import (
    LoadedConfig,
    load_config,
    project_config_path,
    template_text,
    user_config_path,
)
from crawl4ai_llm_docs.config_show import render_toml
from crawl4ai_llm_docs.errors import InputError

config_app = App(name="config", help="Show, create or locate configuration files.")


@config_app.command(name="show")
def config_show(*, config: ConfigFile = None) -> int:
    """Print the effective configuration as TOML, with the origin of every value.

    The API key is never shown, only whether it is set.
    """
    # Shows what an untrusted project file sets (marked), where a run would refuse it.
    loaded = load_config(config_file=config, sends_secrets=False)
    sys.stdout.write(render_toml(loaded))
    return 0


@config_app.command(name="init")
def config_init(
    path: Annotated[
        Path | None, Parameter(help="Where to write [default: ./crawl4ai-llm-docs.toml].")
    ] = None,
    *,
    force: Annotated[bool, Parameter(negative="", help="Overwrite an existing file.")] = False,
) -> int:
    """Write a commented configuration template (refuses to overwrite without --force)."""
    target = path or project_config_path()
    if target.is_dir():
        raise InputError(
            f"{target} is a directory. Give a file path, e.g. {target / 'crawl4ai-llm-docs.toml'}."
        )
    if target.exists() and not force:
        raise InputError(
            f"{target} already exists; it was left unchanged. Use --force to overwrite it."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template_text(), encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"Cannot write {target}: {exc.strerror}. Choose a writable location."
        ) from None
    print(f"Wrote {target}. Edit it, then check with `crawl4ai-llm-docs config show`.")
    return 0


@config_app.command(name="path")
def config_path() -> int:
    """Show where configuration files are looked for and which exist."""
    loaded: LoadedConfig = load_config(sends_secrets=False)
    for label, candidate in (("user", user_config_path()), ("project", project_config_path())):
        state = "found" if candidate.is_file() else "not present"
        print(f"{label}: {candidate} ({state})")
    print(f"cache: {loaded.config.cache_directory()}")
    return 0
