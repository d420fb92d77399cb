"""The write stage's files: the consolidated Markdown document, ``llms.txt`` and
``llms-full.txt``, and the JSON run report.

Every file is written to a temporary file in the target directory and renamed over the target
only when complete, so a failure or Ctrl-C mid-write keeps the previous version; files are
0o600 because they hold provider responses. Documents arrive as an iterator in input order
(e.g. from ``cache.DocumentSpool``) and are streamed: bodies go to temporary files as they
come, so memory does not grow with the size of the pages (``llms.txt`` keeps one short entry
per page, because its sections are known only once every URL is).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import msgspec

from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.output_markdown import (
    atomic_text,
    nest_markdown,
    one_line,
    scratch_file,
    slugify,
)

FAILED_HEADING = "Pages that failed"
DEFAULT_SECTION = "Docs"


def document_title(document: Document) -> str:
    return one_line(document.title) or document.url


# ---------------------------------------------------------------- consolidated document


class WriteSummary(msgspec.Struct, frozen=True, kw_only=True):
    documents: int  # documents written in the body
    failed: int  # entries in "Pages that failed"
    bytes: int


def _header_line(written: int, failed: int, generated_at: datetime) -> str:
    when = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    pages = f"{written} page{'s' if written != 1 else ''}"
    failures = f", {failed} failed" if failed else ""
    return f"Sources: {pages}{failures} · Generated: {when}"


def _link_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def write_consolidated(
    path: Path,
    documents: Iterable[Document],
    *,
    title: str,
    failed: Sequence[tuple[str, str]] = (),
    incomplete: bool = False,
    incomplete_reason: str = "",
    generated_at: datetime,
) -> WriteSummary:
    """Write the consolidated Markdown document.

    ``documents`` in input order; those with an ``error`` go to "Pages that failed", after
    the ``failed`` ``(url, reason)`` pairs (a URL listed twice appears once). Each document
    gets a numbered H2 (``## 3. Title``) with ``Source: <url>`` under it and its own headings
    nested below; the number makes its anchor unique and stable even when titles repeat,
    without remembering earlier titles.
    """
    failures: list[tuple[str, str]] = [(url, one_line(reason)) for url, reason in failed]
    listed = {url for url, _ in failures}
    written = 0
    with scratch_file(path.parent) as toc, scratch_file(path.parent) as body:
        for document in documents:
            if document.error is not None:
                if document.url not in listed:
                    failures.append((document.url, one_line(document.error)))
                    listed.add(document.url)
                continue
            written += 1
            heading = f"{written}. {document_title(document)}"
            toc.write(f"- [{_link_text(heading)}](#{slugify(heading)})\n")
            content = nest_markdown(document.markdown, top=3, title=document.title)
            body.write(f"## {heading}\n\nSource: {document.url}\n\n")
            body.write(f"{content}\n\n" if content else "")
        if failures:
            toc.write(f"- [{FAILED_HEADING}](#{slugify(FAILED_HEADING)})\n")
        with atomic_text(path) as out:
            out.write(f"# {one_line(title) or 'Documentation'}\n\n")
            out.write(_header_line(written, len(failures), generated_at) + "\n\n")
            if incomplete:
                reason = one_line(incomplete_reason) or (
                    "the run was interrupted or stopped early; pages may be missing."
                )
                out.write(f"> **Incomplete:** {reason}\n\n")
            if written or failures:
                out.write("## Contents\n\n")
                toc.seek(0)
                shutil.copyfileobj(toc, out)
                out.write("\n")
            body.seek(0)
            shutil.copyfileobj(body, out)
            if failures:
                out.write(f"## {FAILED_HEADING}\n\n")
                for url, reason in failures:
                    out.write(f"- {url}: {reason}\n" if reason else f"- {url}\n")
    return WriteSummary(documents=written, failed=len(failures), bytes=path.stat().st_size)


# ---------------------------------------------------------------- llms.txt


class _Entry(NamedTuple):
    title: str
    url: str
    description: str
    directories: tuple[str, ...]  # the site, then the URL's directories


def _directories(url: str) -> tuple[str, ...]:
    """``https://h/docs/guide/install`` -> ``("https://h", "docs", "guide")``: the last path
    segment is the page itself, not a directory (unless the path ends with ``/``)."""
    parts = urlsplit(url)
    segments = parts.path.split("/")[:-1]
    return (f"{parts.scheme}://{parts.netloc.lower()}", *(s for s in segments if s))


def _common_prefix(entries: Sequence[_Entry]) -> int:
    if not entries:
        return 0
    first = entries[0].directories
    length = len(first)
    for entry in entries[1:]:
        length = min(length, len(entry.directories))
        for position in range(length):
            if entry.directories[position] != first[position]:
                length = position
                break
    return length


def _section_name(segment: str | None) -> str:
    if segment is None:
        return DEFAULT_SECTION
    name = one_line(unquote(segment).replace("-", " ").replace("_", " "))
    if "://" in segment:  # pages from several sites: the site is the section
        name = urlsplit(segment).netloc
    name = (name[:1].upper() + name[1:]) or segment
    # "Optional" has a meaning in llms.txt (links that may be skipped): not for a folder name.
    return f"{name} pages" if name.casefold() == "optional" else name


def _link_url(url: str) -> str:
    """The URL with the characters that would end a Markdown link destination escaped."""
    return quote(url, safe="!#$%&'*+,/:;=?@[]~-._")


def _llms_title(title: str) -> str:
    # Brackets would end the link text for simple llms.txt readers; parentheses read the same.
    return title.replace("[", "(").replace("]", ")")


def _llms_index(title: str, summary: str, details: str, entries: Sequence[_Entry]) -> str:
    lines = [f"# {one_line(title) or 'Documentation'}", ""]
    if one_line(summary):
        lines += [f"> {one_line(summary)}", ""]
    if details.strip():
        lines += [details.strip(), ""]
    prefix = _common_prefix(entries)
    sections: dict[str, list[str]] = {}
    for entry in entries:
        segment = entry.directories[prefix] if len(entry.directories) > prefix else None
        item = f"- [{_llms_title(entry.title)}]({_link_url(entry.url)})"
        if entry.description:
            item += f": {entry.description}"
        sections.setdefault(_section_name(segment), []).append(item)
    for name, items in sections.items():
        lines += [f"## {name}", "", *items, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_llms_txt(
    directory: Path,
    documents: Iterable[Document],
    *,
    title: str,
    summary: str,
    details: str = "",
) -> tuple[Path, Path]:
    """Write ``llms.txt`` (the llmstxt.org index) and ``llms-full.txt`` (every page in full).

    ``llms.txt``: an H1 ``title``, the ``summary`` as a blockquote, optional ``details``, then
    one H2 section per first URL directory below the folder all pages share (pages in that
    folder itself go to "Docs"), each page as ``- [title](url): description``. Failed pages
    are left out. An error while writing leaves both previous files as they were.
    """
    index_path = directory / "llms.txt"
    full_path = directory / "llms-full.txt"
    entries: list[_Entry] = []
    with atomic_text(full_path) as full, atomic_text(index_path) as index:
        full.write(f"# {one_line(title) or 'Documentation'}\n\n")
        if one_line(summary):
            full.write(f"> {one_line(summary)}\n\n")
        for document in documents:
            if document.error is not None:
                continue
            name = document_title(document)
            entries.append(
                _Entry(
                    name, document.url, one_line(document.description), _directories(document.url)
                )
            )
            content = nest_markdown(document.markdown, top=3, title=document.title)
            full.write(f"## {name}\n\nSource: {document.url}\n\n")
            full.write(f"{content}\n\n" if content else "")
        index.write(_llms_index(title, summary, details, entries))
    return index_path, full_path


# ---------------------------------------------------------------- report


def write_report(path: Path, report: Any) -> None:
    """The run report as indented JSON; ``report`` is anything msgspec encodes (dict, Struct)."""
    data = msgspec.json.format(msgspec.json.encode(report), indent=2)
    with atomic_text(path) as out:
        out.write(data.decode("utf-8") + "\n")
