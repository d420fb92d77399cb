"""Per-invocation options that are not configuration (what to do this time, not how)."""

from __future__ import annotations

from pathlib import Path

from msgspec import Struct


class RunOptions(Struct, frozen=True, kw_only=True):
    urls_file: Path
    dry_run: bool = False
    no_llm: bool = False
    roots: tuple[str, ...] = ()  # discovery from these root URLs instead of reading urls_file
