"""Every output of a run from its finished documents: the one call the run makes to write.

The site's structure (name, title suffix, sections) is learned once, in a first pass over the
documents, and shared by the consolidated document, llms.txt / llms-full.txt and the pages
directory, so all of them name the site and its pages the same way. Blocking file I/O: call it
from a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import structlog
from msgspec import Struct

from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.consolidated import write_consolidated
from crawl4ai_llm_docs.outputs.llms_txt import default_summary, reiterable, write_llms_txt
from crawl4ai_llm_docs.outputs.pages_dir import write_pages_dir
from crawl4ai_llm_docs.outputs.site_structure import survey

log = structlog.get_logger()


class OutputRequest(Struct, frozen=True, kw_only=True):
    markdown: Path  # the consolidated document (NAME.part-NN.md beside it when split)
    generated_at: datetime
    llms_dir: Path | None = None
    pages_dir: Path | None = None
    pages_naming: str = "page.md"  # output.pages_naming
    title: str = ""  # output.title: wins over the site's own name
    fallback_title: str = ""  # when nothing names the site (e.g. from the URL file's name)
    max_file_tokens: int = 0  # 0: one file
    cleaned: bool = True  # the pages were cleaned by the LLM (not --no-llm)
    failed: Sequence[tuple[str, str]] = ()
    incomplete: bool = False
    incomplete_reason: str = ""


def write_outputs(documents: Iterable[Document], request: OutputRequest) -> list[str]:
    """Write every requested output; returns the files (and directory) written, in order."""
    documents = reiterable(documents)
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
    )
    for warning in summary.warnings:
        log.warning("warning", message=warning)
    written = list(summary.files)
    if request.llms_dir is not None:
        paths = write_llms_txt(
            request.llms_dir,
            documents,
            title=title,
            summary=default_summary(site, title),
            site=site,
            generated_at=request.generated_at,
            cleaned=request.cleaned,
        )
        written += map(str, paths)
    if request.pages_dir is not None:
        write_pages_dir(
            request.pages_dir,
            documents,
            site=site,
            generated_at=request.generated_at,
            reserved=[Path(p) for p in written] + [request.markdown.with_suffix(".report.json")],
            naming=request.pages_naming,
        )
        written.append(str(request.pages_dir))
    return written
