"""The cache directory itself: created user-only before anything writes into it."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil

from crawl4ai_llm_docs.files import mkdir_private


def prepare_cache_directory(path: Path) -> None:
    """Create the cache directory user-only, before anything else (crawl4ai) creates it with
    the umask's mode, and remove the document spools of runs that were killed."""
    mkdir_private(path)
    spools = path / "spool"
    if not spools.is_dir():
        return
    for stale in spools.glob("spool-*-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
