"""An llms.txt read line by line: its parts and every way it departs from the format.

The format (https://llmstxt.org): one H1 with the site's name; a ``>`` blockquote summary;
any Markdown but headings (the details); then sections, each an H2 followed only by a list
of ``- [name](url): description`` items. Each fault names its line and the fix. The reading
ends with the reference parser's own (``reference``): a file read without faults reads the
same to both, and any difference left is a fault too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from msgspec import Struct

from crawl4ai_llm_docs.validate.faults import Fault, by_line
from crawl4ai_llm_docs.validate.reference import (
    ReferenceReading,
    reference_head,
    reference_reading,
)
from crawl4ai_llm_docs.validate.sections import H1, Link, no_sections, read_sections

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT_H1 = re.compile(r"^ {0,3}=+[ \t]*$")


class Reading(Struct, frozen=True, kw_only=True):
    title: str
    summary: str
    details: str
    sections: dict[str, list[Link]]
    faults: list[Fault]

    @property
    def links(self) -> list[Link]:
        return [link for links in self.sections.values() for link in links]


def _is_html(text: str) -> bool:
    return text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


def read(text: str) -> Reading:
    """Read ``text`` (an llms.txt) and list its faults."""
    faults: list[Fault] = []
    if text.startswith("\ufeff"):
        text = text[1:]
        faults.append(
            Fault(
                code="bom",
                line=1,
                message="the file starts with a byte-order mark, which the reference parser "
                "reads as text before the H1: save it as UTF-8 without a BOM",
            )
        )
    if "\r" in text:
        faults.append(
            Fault(
                code="crlf",
                line=text[: text.index("\r")].count("\n") + 1,
                message="carriage returns (Windows line ends): the reference parser reads them "
                "as part of the title and links; use \\n line ends",
            )
        )
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return _only(Fault(code="empty", message="the file is empty: start it with '# Name'"))
    if _is_html(text):
        return _only(
            Fault(
                code="html",
                message="this is an HTML page, not an llms.txt (a server answering every path "
                "with a page?): an llms.txt is Markdown starting with '# Name'",
            )
        )
    lines = text.split("\n")
    starts = [number for number, line in enumerate(lines) if line.startswith("##")]
    head_end = starts[0] if starts else len(lines)
    title, summary, details = _read_head(lines, head_end, faults)
    sections = read_sections(lines, starts, faults)
    if not sections:
        faults.append(no_sections(lines, head_end))
    reading = Reading(
        title=title, summary=summary, details=details, sections=sections, faults=faults
    )
    if summary and reading_summary_lost(text):
        faults.append(
            Fault(
                code="summary-not-read",
                line=_first(lines, lambda line: line.startswith(">")),
                message="the reference parser reads the summary only when a paragraph follows "
                "it before the first section: add one (what the sections hold, say)",
            )
        )
    if not faults and (difference := _difference(reading, reference_reading(text))):
        faults.append(Fault(code="reference-mismatch", message=difference))
    return Reading(
        title=title, summary=summary, details=details, sections=sections, faults=by_line(faults)
    )


def _only(fault: Fault) -> Reading:
    return Reading(title="", summary="", details="", sections={}, faults=[fault])


def _first(lines: list[str], test: Callable[[str], bool]) -> int:
    return next((number + 1 for number, line in enumerate(lines) if test(line)), 0)


def reading_summary_lost(text: str) -> bool:
    head = reference_head(text)
    return head is None or head["summary"] is None


def _outside_fences(lines: list[str], start: int, end: int) -> list[int]:
    """Indices of the lines in ``[start, end)`` that are not inside a fenced code block."""
    fence = ""
    found = []
    for number in range(start, end):
        line = lines[number]
        if fence:
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = ""
        elif opening := _FENCE.match(line):
            fence = opening.group(1)
        else:
            found.append(number)
    return found


def _read_head(lines: list[str], end: int, faults: list[Fault]) -> tuple[str, str, str]:
    """(title, summary, details) of the lines before the first section."""
    content = [number for number in _outside_fences(lines, 0, end) if lines[number].strip()]
    if not content:
        line = end + 1 if end < len(lines) else 1
        faults.append(Fault(code="no-h1", line=line, message="no H1: start the file with '# Name'"))
        return "", "", ""
    first = content[0]
    h1s = [number for number in content if H1.match(lines[number])]
    if H1.match(lines[first]):
        title_line = first
    elif lines[first].startswith("#") and not lines[first].startswith("##"):
        title_line = first
        faults.append(
            Fault(
                code="h1-space",
                line=first + 1,
                message=f"{lines[first].strip()!r} is not a Markdown heading: put a space after "
                "the '#'",
            )
        )
    elif h1s:
        title_line = h1s[0]
        faults.append(
            Fault(
                code="text-before-h1",
                line=first + 1,
                message=f"text before the H1 (line {title_line + 1}): the reference parser "
                "skips it; the H1 must come first",
            )
        )
    else:
        setext = first + 1 < end and _SETEXT_H1.match(lines[first + 1])
        hint = " ('===' underlines are not read as one)" if setext else ""
        faults.append(
            Fault(
                code="no-h1",
                line=first + 1,
                message=f"no H1{hint}: start the file with '# Name', the site's name",
            )
        )
        return "", "", "\n".join(lines[first:end]).strip()
    faults += [
        Fault(
            code="several-h1",
            line=number + 1,
            message=f"a second H1 ({lines[number].strip()!r}; the first is on line "
            f"{title_line + 1}): an llms.txt has one H1, the site's name; make this an H2 "
            "section or plain text",
        )
        for number in h1s
        if number > title_line
    ]
    title = lines[title_line].lstrip("#").strip()
    rest = [number for number in content if number > title_line]
    quote_end = title_line + 1
    summary = ""
    if rest and lines[rest[0]].startswith(">"):
        quote_end = rest[0]
        parts = []
        while quote_end < end and lines[quote_end].startswith(">"):
            parts.append(lines[quote_end][1:].strip())
            quote_end += 1
        summary = " ".join(part for part in parts if part)
        if not summary:
            faults.append(
                Fault(
                    code="empty-summary",
                    line=rest[0] + 1,
                    message="the summary blockquote is empty: write one sentence on what the "
                    "site is after the '>'",
                )
            )
        elif len(parts) > 1:
            faults.append(
                Fault(
                    code="summary-lines",
                    line=rest[0] + 2,
                    message="the summary spans several lines and the reference parser reads "
                    "only the first: put it on one line",
                )
            )
    else:
        faults.append(
            Fault(
                code="no-summary",
                line=(rest[0] if rest else title_line) + 1,
                message="no summary: after the H1, add a blank line and a blockquote '> one "
                "sentence on what the site is'",
            )
        )
    return title, summary, "\n".join(lines[quote_end:end]).strip()


def _difference(ours: Reading, reference: ReferenceReading | None) -> str:
    """How the reference parser's reading differs from ours; "" when it does not."""
    if reference is None:
        return "the reference parser cannot read this file"
    theirs_summary = (reference.summary or "").strip()
    names = [name.strip() for name in reference.sections]
    if reference.title.strip() != ours.title or theirs_summary != ours.summary:
        return "the reference parser reads another title or summary"
    if names != list(ours.sections):
        return f"the reference parser reads the sections {names}"
    for mine, links in zip(ours.sections.values(), reference.sections.values(), strict=True):
        theirs = [(link.title, link.url, (link.desc or "").strip()) for link in links]
        if theirs != [(link.name, link.url, link.description) for link in mine]:
            return "the reference parser reads other links"
    return ""
