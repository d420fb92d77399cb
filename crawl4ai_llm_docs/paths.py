"""Where a run writes, checked before any work starts so a bad path fails fast (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.run_options import RunOptions


def output_paths(options: RunOptions, config: AppConfig) -> tuple[Path, Path | None, Path | None]:
    """The consolidated Markdown file, the llms.txt directory and the JSON report."""
    markdown = (
        Path(config.output.path) if config.output.path else options.urls_file.with_suffix(".md")
    )
    llms_dir = Path(config.output.llms_txt_dir) if config.output.llms_txt_dir else None
    report = markdown.with_suffix(".report.json") if config.output.report else None
    return markdown, llms_dir, report


def _writable_directory(directory: Path, what: str, flag: str) -> None:
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"The {what} {directory} cannot be created: {existing} is a file. Choose another {flag}."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"The {what} {directory} is not writable (no permission on {existing}). Choose another {flag}."
        )


def check_output_locations(options: RunOptions, config: AppConfig) -> None:
    if options.dry_run:
        return
    markdown, llms_dir, report = output_paths(options, config)
    if markdown.resolve() == options.urls_file.resolve():
        raise InputError(f"The output {markdown} is the URL file itself. Give another -o/--output.")
    if markdown.is_dir():
        raise InputError(
            f"The output {markdown} is a directory. Give a file name, e.g. -o {markdown / 'docs.md'}."
        )
    if markdown.exists() and not os.access(markdown, os.W_OK):
        raise InputError(f"The output {markdown} is not writable. Choose another -o/--output.")
    _writable_directory(markdown.parent, "output directory", "-o/--output")
    if llms_dir is not None:
        if llms_dir.exists() and not llms_dir.is_dir():
            raise InputError(f"--llms-txt {llms_dir} is a file, not a directory. Give a directory.")
        _writable_directory(llms_dir, "llms.txt directory", "--llms-txt")
    del report  # written beside the Markdown file: covered by its directory check
