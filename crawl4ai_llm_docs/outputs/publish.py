"""Every output of a run from its finished documents: the one call the run makes to write.

The site's structure (name, title suffix, sections) is learned once, in a first pass over the
documents, and shared by the consolidated document, llms.txt / llms-full.txt and the pages
directory, so all of them name the site and its pages the same way. All files are staged and
moved into place together; a failure is one ``OutputWriteError`` (exit 4) listing what was
written and what was not. Blocking file I/O: call it from a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import structlog
from msgspec import Struct

from crawl4ai_llm_docs.errors import OutputWriteError
from crawl4ai_llm_docs.files import Staging
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.consolidated import write_consolidated
from crawl4ai_llm_docs.outputs.descriptions import describe
from crawl4ai_llm_docs.outputs.llms_txt import (
    default_summary,
    page_title,
    reiterable,
    write_llms_txt,
)
from crawl4ai_llm_docs.outputs.llms_txt_sections import write_section_llms_txt
from crawl4ai_llm_docs.outputs.pages_dir import write_pages_dir
from crawl4ai_llm_docs.outputs.site_structure import survey
from crawl4ai_llm_docs.search.update import IndexRequest, write_index

log = structlog.get_logger()


class OutputRequest(Struct, frozen=True, kw_only=True):
    markdown: Path  # the consolidated document (NAME.part-NN.md beside it when split)
    generated_at: datetime
    llms_dir: Path | None = None
    llms_txt_per_section: bool = False  # also one llms.txt per section directory (v2)
    pages_dir: Path | None = None
    pages_naming: str = "page.md"  # output.pages_naming
    title: str = ""  # output.title: wins over the site's own name
    fallback_title: str = ""  # when nothing names the site (e.g. from the URL file's name)
    max_file_tokens: int = 0  # 0: one file
    cleaned: bool = True  # the pages were cleaned by the LLM (not --no-llm)
    failed: Sequence[tuple[str, str]] = ()
    incomplete: bool = False
    incomplete_reason: str = ""
    index: IndexRequest | None = None  # the docs index and --chunks-jsonl (search/)


def write_outputs(documents: Iterable[Document], request: OutputRequest) -> list[str]:
    """Write every requested output; returns the files (and directory) written, in order.

    Every file is staged first and all are moved into place together once each is written
    (``files.Staging``): an error before that leaves every previous file as it was. Any error
    raises ``OutputWriteError``, whose message lists what was written and what was not.
    """
    doing: list[Path] = []  # the output being written, for a message naming it
    with Staging() as staging:
        try:
            written = _stage_outputs(documents, request, staging, doing)
            staging.commit()
        except (OSError, UnicodeError) as exc:
            raise _not_written(exc, request, staging, doing[-1:]) from exc
    try:
        return written + _write_index(documents, request)
    except (OSError, UnicodeError) as exc:
        where = request.index.path or request.index.chunks_jsonl if request.index else None
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputWriteError(
            f"The docs index could not be updated ({cause}: {where}); the previous index is "
            f"whole. Written: {', '.join(written)}. Every LLM answer is cached: fix the problem "
            "and run the same command again.",
            written=written,
        ) from exc


def _stage_outputs(
    documents: Iterable[Document], request: OutputRequest, staging: Staging, doing: list[Path]
) -> list[str]:
    documents = reiterable(documents)
    doing.append(request.markdown)
    site = survey(documents, title=request.title)
    title = site.name or request.fallback_title
    summary = write_consolidated(
        request.markdown,
        documents,
        title=title,
        failed=request.failed,
        incomplete=request.incomplete,
        incomplete_reason=request.incomplete_reason,
        generated_at=request.generated_at,
        site=site,
        max_file_tokens=request.max_file_tokens,
        staging=staging,
    )
    for warning in summary.warnings:
        log.warning("warning", message=warning)
    written = list(summary.files)
    if request.llms_dir is not None:
        doing.append(request.llms_dir)
        paths = write_llms_txt(
            request.llms_dir,
            documents,
            title=title,
            summary=default_summary(site, title),
            site=site,
            generated_at=request.generated_at,
            cleaned=request.cleaned,
            staging=staging,
        )
        written += map(str, paths)
        if request.llms_txt_per_section:
            written += map(
                str,
                write_section_llms_txt(
                    request.llms_dir,
                    documents,
                    title=title,
                    site=site,
                    generated_at=request.generated_at,
                    cleaned=request.cleaned,
                    staging=staging,
                ),
            )
    if request.pages_dir is not None:
        doing.append(request.pages_dir)
        write_pages_dir(
            request.pages_dir,
            documents,
            site=site,
            generated_at=request.generated_at,
            reserved=[Path(p) for p in written] + [request.markdown.with_suffix(".report.json")],
            staging=staging,
            naming=request.pages_naming,
        )
        written.append(str(request.pages_dir))
    return written


def _write_index(documents: Iterable[Document], request: OutputRequest) -> list[str]:
    """The docs index and --chunks-jsonl, once the files are in place: one SQLite transaction,
    so a failure leaves the previous index whole."""
    if request.index is None:
        return []
    documents = reiterable(documents)
    site = survey(documents, title=request.title)
    title = site.name or request.fallback_title
    return write_index(
        documents,
        request.index,
        site_name=title,
        title_of=lambda document: page_title(document, site),
        describe=lambda document, title: describe(document, title=title),
        generated_at=request.generated_at,
    )[0]


def _named(paths: Sequence[Path], pages_dir: Path | None) -> list[str]:
    """Files as a message names them: page files counted, not listed one by one."""
    pages = [p for p in paths if pages_dir is not None and p.is_relative_to(pages_dir)]
    named = [str(p) for p in paths if p not in set(pages)]
    if pages:
        named.append(f"{len(pages)} page file{'s' if len(pages) != 1 else ''} in {pages_dir}")
    return named


def _requested(request: OutputRequest) -> list[Path]:
    """Every output the run was asked for, by the name the user knows it."""
    markdown = request.markdown
    if request.max_file_tokens:
        markdown = markdown.with_name(f"{markdown.stem}.part-NN{markdown.suffix}")
    wanted = [markdown]
    if request.llms_dir is not None:
        wanted += [request.llms_dir / "llms.txt", request.llms_dir / "llms-full.txt"]
    return wanted


def _not_written(
    exc: OSError | UnicodeError, request: OutputRequest, staging: Staging, doing: list[Path]
) -> OutputWriteError:
    if isinstance(exc, OSError) and exc.strerror:
        # A scratch file has no name: then the output it was for.
        where = exc.filename or (f"writing {doing[0]}" if doing else "")
        cause = f"{exc.strerror}: {where}" if where else exc.strerror
    else:
        cause = str(exc)
    moved = staging.moved
    if not moved:
        missing = [str(p) for p in _requested(request)]
        if request.pages_dir is not None:
            missing.append(f"the page files in {request.pages_dir}")
        state = "Written: nothing; every previous file is as it was."
    else:
        left = [p for p in staging.targets if p not in set(moved)]
        missing = _named(left, request.pages_dir)
        state = f"Written: {', '.join(_named(moved, request.pages_dir))}."
    message = (
        f"Outputs could not be written ({cause}). {state} Not written: {', '.join(missing)}. "
        "Every LLM answer is cached: fix the problem and run the same command again."
    )
    return OutputWriteError(message, written=[str(p) for p in moved])
