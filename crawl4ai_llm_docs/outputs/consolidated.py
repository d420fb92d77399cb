"""The write stage's files: the consolidated Markdown document (whole or in parts) and the JSON
run report; ``llms_txt`` writes llms.txt / llms-full.txt, ``pages_dir`` one file per page.

Every file is written to a temporary file in the target directory and renamed over the target
only when complete, so a failure or Ctrl-C mid-write keeps the previous version; files are
0o600 because they hold provider responses. Documents come in input order from something
that can be read twice (``collect.spool.DocumentSpool``, a list): a first pass learns the site's name,
title suffix and sections (``site_structure``), the second streams the bodies to temporary
files, so memory does not grow with the size or number of the pages.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from crawl4ai_llm_docs.files import Staging, atomic_text, scratch_file
from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.llms_txt import heading_title, page_title, site_of
from crawl4ai_llm_docs.outputs.markdown import nest_markdown, one_line, slugify
from crawl4ai_llm_docs.outputs.parts import TAIL, SplitInput, write_parts
from crawl4ai_llm_docs.outputs.site_structure import OPTIONAL_SECTION, SiteStructure

__all__ = ["WriteSummary", "document_title", "write_consolidated", "write_report"]

FAILED_HEADING = "Pages that failed"
_TARGET = "\x00"  # in a contents line: where the file name goes when the document is split


def document_title(document: Document) -> str:
    return one_line(document.title) or document.url


# ---------------------------------------------------------------- consolidated document


class WriteSummary(msgspec.Struct, frozen=True, kw_only=True):
    documents: int  # documents written in the body
    failed: int  # entries in "Pages that failed"
    bytes: int
    files: tuple[str, ...] = ()  # the file, or the parts in order
    warnings: tuple[str, ...] = ()


def _header_line(written: int, failed: int, generated_at: datetime) -> str:
    when = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    pages = f"{written} page{'s' if written != 1 else ''}"
    failures = f", {failed} failed" if failed else ""
    return f"Sources: {pages}{failures} · Generated: {when}"


def _link_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


class _Contents:
    """The table of contents, kept in a scratch file as ``number<TAB>section<TAB>line``
    records (``number``: the page's, ``TAIL`` for the failed pages; ``section``: an index into
    ``names``, -1 for the failed pages). Written grouped by section, in the order the sections
    were met and "Optional" last, with one pass over the file per section: memory holds the
    section names, not the lines."""

    def __init__(self, scratch: IO[str], *, grouped: bool) -> None:
        self.scratch = scratch
        self.grouped = grouped
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def add(self, number: int, section: str, line: str) -> None:
        sid = self._ids.setdefault(section, len(self._ids)) if self.grouped else 0
        if sid == len(self.names):
            self.names.append(section)
        self.scratch.write(f"{number}\t{sid}\t{line}\n")

    def add_tail(self, line: str) -> None:
        self.scratch.write(f"{TAIL}\t-1\t{line}\n")

    def _lines(self, wanted: int, names: Callable[[int], str]) -> Iterator[str]:
        self.scratch.seek(0)
        for record in self.scratch:
            number, sid, line = record.split("\t", 2)
            if int(sid) == wanted:
                yield line.replace(_TARGET, names(int(number)))

    def write(self, names: Callable[[int], str], out: IO[str]) -> None:
        """The contents, with each link's file name (``names(number)``) filled in."""
        if not self.grouped:
            out.writelines(self._lines(0, names))
        else:
            order = sorted(range(len(self.names)), key=lambda i: self.names[i] == OPTIONAL_SECTION)
            for sid in order:
                out.write(f"- {self.names[sid]}\n")
                out.writelines(f"  {line}" for line in self._lines(sid, names))
        out.writelines(self._lines(-1, names))

    def text(self, names: Callable[[int], str]) -> str:
        buffer = io.StringIO()
        self.write(names, buffer)
        return buffer.getvalue()


def write_consolidated(
    path: Path,
    documents: Iterable[Document],
    *,
    title: str,
    failed: Sequence[tuple[str, str]] = (),
    incomplete: bool = False,
    incomplete_reason: str = "",
    generated_at: datetime,
    site: SiteStructure | None = None,
    max_file_tokens: int = 0,
    staging: Staging | None = None,
) -> WriteSummary:
    """Write the consolidated Markdown document (or its parts, when ``max_file_tokens``).

    ``documents`` in input order; those with an ``error`` go to "Pages that failed", after
    the ``failed`` ``(url, reason)`` pairs (a URL listed twice appears once). Each document
    gets a numbered H2 (``## 3. Title``, the title without the site's suffix) with
    ``Source: <url>`` under it and its own headings nested below; the number makes its anchor
    unique and stable even when titles repeat. When the pages fall into several sections the
    contents list the pages by section (in the order met, "Optional" last), as llms.txt does;
    the numbers keep the body's order. With ``staging`` the file (or parts) is only staged:
    its ``commit`` puts it in place with the run's other outputs.
    """
    site = site_of(documents, site)
    failures: list[tuple[str, str]] = [(url, one_line(reason)) for url, reason in failed]
    listed = {url for url, _ in failures}
    written = 0
    offsets, tokens = array("q"), array("q")
    with (
        scratch_file(path.parent) as scratch,
        tempfile.TemporaryFile("w+b", dir=path.parent) as body,
    ):
        contents = _Contents(scratch, grouped=site.sections > 1)
        for document in documents:
            if document.error is not None:
                if document.url not in listed:
                    failures.append((document.url, one_line(document.error)))
                    listed.add(document.url)
                continue
            written += 1
            name = page_title(document, site)
            heading = f"{written}. {name}"
            section = site.section(document.url, document.title)
            anchor = f"{_TARGET}#{slugify(heading)}"
            contents.add(written, section, f"- [{_link_text(heading)}]({anchor})")
            content = nest_markdown(document.markdown, top=3, title=document.title, also_title=name)
            text = f"## {heading}\n\nSource: {document.url}\n\n" + (
                f"{content}\n\n" if content else ""
            )
            if max_file_tokens:
                offsets.append(body.tell())
                tokens.append(count_tokens(text))
            body.write(text.encode("utf-8"))
        if failures:
            target = f"{_TARGET}#{slugify(FAILED_HEADING)}"
            contents.add_tail(f"- [{FAILED_HEADING}]({target})")
        tail = (
            f"## {FAILED_HEADING}\n\n"
            + "".join(
                f"- {url}: {reason}\n" if reason else f"- {url}\n" for url, reason in failures
            )
            if failures
            else ""
        )
        header = _header_line(written, len(failures), generated_at) + "\n\n"
        if incomplete:
            reason = one_line(incomplete_reason) or (
                "the run was interrupted or stopped early; pages may be missing."
            )
            header += f"> **Incomplete:** {reason}\n\n"
        h1 = heading_title(title, site)
        if max_file_tokens:
            split = SplitInput(
                title=h1,
                header=header,
                toc=contents.text,
                body=body,
                offsets=offsets,
                tokens=tokens,
                tail=tail,
            )
            paths, warnings = write_parts(path, split, limit=max_file_tokens, staging=staging)
            return WriteSummary(
                documents=written,
                failed=len(failures),
                bytes=sum(staging.size(p) if staging else p.stat().st_size for p in paths),
                files=tuple(map(str, paths)),
                warnings=tuple(warnings),
            )
        with atomic_text(path) if staging is None else staging.open(path) as out:
            out.write(f"# {h1}\n\n{header}")
            if written or failures:
                out.write("## Contents\n\n")
                contents.write(lambda _: "", out)
                out.write("\n")
            body.seek(0)
            out.flush()  # the body is bytes: copy it under the text layer, in order
            shutil.copyfileobj(body, out.buffer)
            out.write(tail)
    return WriteSummary(
        documents=written,
        failed=len(failures),
        bytes=path.stat().st_size if staging is None else staging.size(path),
        files=(str(path),),
    )


# ---------------------------------------------------------------- report


def write_report(path: Path, report: Any) -> None:
    """The run report as indented JSON; ``report`` is anything msgspec encodes (dict, Struct)."""
    data = msgspec.json.format(msgspec.json.encode(report), indent=2)
    with atomic_text(path) as out:
        out.write(data.decode("utf-8") + "\n")
