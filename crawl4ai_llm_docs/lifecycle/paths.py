"""Where a run writes, checked before any work starts so a bad path fails fast (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.lifecycle.options import RunOptions
from crawl4ai_llm_docs.search.database import check_index_file
from crawl4ai_llm_docs.search.update import IndexRequest, source_key

LLMS_FILES = ("llms.txt", "llms-full.txt")


class OutputPaths(NamedTuple):
    markdown: Path  # the consolidated document
    llms_dir: Path | None  # where llms.txt and llms-full.txt go, when asked for
    report: Path | None  # the JSON run report beside the document, unless turned off


def output_paths(options: RunOptions, config: AppConfig) -> OutputPaths:
    """The consolidated Markdown file, the llms.txt directory and the JSON report."""
    markdown = (
        Path(config.output.path) if config.output.path else options.urls_file.with_suffix(".md")
    )
    llms_dir = Path(config.output.llms_txt_dir) if config.output.llms_txt_dir else None
    report = markdown.with_suffix(".report.json") if config.output.report else None
    return OutputPaths(markdown, llms_dir, report)


def index_request(
    options: RunOptions, config: AppConfig, *, urls: list[str], complete: bool
) -> IndexRequest | None:
    """What the run writes into the docs index and ``--chunks-jsonl``; None: neither."""
    out = config.output
    if not out.index and not out.chunks_jsonl:
        return None
    return IndexRequest(
        path=config.index_file() if out.index else None,
        chunks_jsonl=Path(out.chunks_jsonl) if out.chunks_jsonl else None,
        docs_set=out.docs_set,
        source=source_key(None if options.roots else options.urls_file, options.roots),
        urls=urls,
        complete=complete,
    )


def _check_index_locations(config: AppConfig) -> None:
    if config.output.index:
        index = config.index_file()
        problem = check_index_file(index)
        if problem:
            raise InputError(
                f"The docs index {index} {problem}. Give another --index FILE "
                "(output.index_path), or turn the index off with --no-index."
            )
        _writable_directory(index.parent, "docs index directory", "--index")
    if config.output.chunks_jsonl:
        jsonl = Path(config.output.chunks_jsonl)
        if jsonl.is_dir():
            raise InputError(f"--chunks-jsonl {jsonl} is a directory. Give a file name.")
        _writable_directory(jsonl.parent, "--chunks-jsonl directory", "--chunks-jsonl")


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


def _written_files(
    options: RunOptions, config: AppConfig, paths: OutputPaths
) -> list[tuple[Path, str]]:
    """Every file the run creates or replaces, with the flag that names it."""
    markdown, llms_dir, report = paths
    files = [(markdown, "-o/--output")]
    if report is not None:
        files.append((report, "-o/--output (the report beside it)"))
    if llms_dir is not None:
        files += [(llms_dir / name, "--llms-txt") for name in LLMS_FILES]
    if config.logging.json_file:
        files.append((Path(config.logging.json_file), "--log-json"))
    if config.output.index:
        files.append((config.index_file(), "--index"))
    if config.output.chunks_jsonl:
        files.append((Path(config.output.chunks_jsonl), "--chunks-jsonl"))
    return files


def _check_distinct(options: RunOptions, config: AppConfig, paths: OutputPaths) -> None:
    """No output may overwrite the URL file (or append to it), nor another output."""
    seen = {options.urls_file.resolve(): "the URL file"}
    for path, flag in _written_files(options, config, paths):
        resolved = path.resolve()
        if resolved in seen:
            raise InputError(
                f"{flag} would write {path}, which is {seen[resolved]}. Give another {flag}."
            )
        seen[resolved] = f"also written for {flag}"


def check_output_locations(options: RunOptions, config: AppConfig) -> None:
    json_log = Path(config.logging.json_file) if config.logging.json_file else None
    if json_log is not None:
        # The log is opened even by --dry-run; a bad path must be one message, not a traceback.
        if json_log.is_dir():
            raise InputError(f"--log-json {json_log} is a directory. Give a file name.")
        _writable_directory(json_log.parent, "JSON log directory", "--log-json")
    if options.dry_run:
        if json_log is not None and json_log.resolve() == options.urls_file.resolve():
            raise InputError(f"--log-json {json_log} is the URL file itself. Give another file.")
        return
    paths = output_paths(options, config)
    markdown, llms_dir, report = paths
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
    if config.output.pages_dir:
        pages_dir = Path(config.output.pages_dir)
        if pages_dir.exists() and not pages_dir.is_dir():
            raise InputError(
                f"--pages-dir {pages_dir} is a file, not a directory. Give a directory."
            )
        _writable_directory(pages_dir, "pages directory", "--pages-dir")
    if report is not None and report.is_dir():
        raise InputError(
            f"The run report {report} (written beside the output) is a directory. Remove it, "
            "choose another -o/--output, or turn the report off with output.report = false."
        )
    _check_index_locations(config)
    _check_distinct(options, config, paths)
