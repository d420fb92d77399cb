"""What the commands share: option groups of ``--help``, ``--config``, flags as config overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from cyclopts import Group, Parameter

OUTPUT = Group("Output", sort_key=1)


PROVIDER = Group("LLM provider", sort_key=2)


PARALLEL = Group("Parallel processing", sort_key=3)


CRAWL = Group("Crawling", sort_key=4)


PROGRESS = Group("Progress and logging", sort_key=5)


MODE = Group("Run mode", sort_key=6)


ConfigFile = Annotated[
    Path | None,
    Parameter(
        name="--config",
        group=OUTPUT,
        help="TOML config file; replaces ~/.config/crawl4ai-llm-docs/config.toml and "
        "./crawl4ai-llm-docs.toml.",
    ),
]


TrustProjectConfig = Annotated[
    bool,
    Parameter(
        name="--trust-project-config",
        negative="",
        group=OUTPUT,
        help="Let ./crawl4ai-llm-docs.toml set where the API key goes (llm.base_url, "
        "llm.api_key_env); refused from a project file otherwise.",
    ),
]


def trust_override(trust: bool) -> dict[str, tuple[Any, str]]:
    """``--trust-project-config`` as a config override (the top-level ``trust_project_config``)."""
    return flag_overrides(trust=("trust_project_config", "--trust-project-config", trust or None))


def flag_overrides(**flags: tuple[str, str, Any]) -> dict[str, tuple[Any, str]]:
    """Turn ``name=(dotted_key, flag, value)`` into config overrides, skipping unset flags."""
    return {
        key: (value, f"flag {flag}") for key, flag, value in flags.values() if value is not None
    }
