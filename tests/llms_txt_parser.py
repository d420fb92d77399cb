"""A strict parser for llms.txt files (https://llmstxt.org), for tests.

The format, in this order:

1. an optional byte-order mark;
2. exactly one H1 (``# Name``), on the first line;
3. optionally a blockquote (``> summary``), the first block after the H1;
4. optionally any Markdown blocks except headings (paragraphs, lists, code...): the details;
5. zero or more sections, each an H2 (``## Name``) followed only by a Markdown list whose items
   are a link ``[name](url)``, optionally followed by ``:`` and notes.

Anything else is an error naming the line, so a test that feeds our output through
``parse_llms_txt`` fails on the first deviation rather than on a vague mismatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_H1 = re.compile(r"^# +(?P<text>\S.*?)(?: +#+)? *$")
_H2 = re.compile(r"^## +(?P<text>\S.*?)(?: +#+)? *$")
_ANY_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(
    r"^[-*+] \[(?P<name>(?:[^\[\]\\]|\\.)+)\]"
    r"\((?P<url>[^\s()<>]+)\)"
    r"(?::[ \t]*(?P<notes>\S.*?))?[ \t]*$"
)


class LlmsTxtError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Link:
    name: str
    url: str
    notes: str | None


@dataclass
class LlmsTxt:
    title: str
    summary: str | None
    details: str
    sections: dict[str, list[Link]] = field(default_factory=dict)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_llms_txt(text: str, *, absolute_urls: bool = True) -> LlmsTxt:
    """Parse ``text`` or raise ``LlmsTxtError``; ``absolute_urls`` also demands http(s) links."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        raise LlmsTxtError(1, "carriage returns: use \\n line endings")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline

    first = _H1.match(lines[0]) if lines else None
    if first is None:
        raise LlmsTxtError(1, "the file must start with an H1 '# Name'")
    result = LlmsTxt(title=first.group("text"), summary=None, details="")

    number = 1  # index of the next line to read
    while number < len(lines) and not lines[number].strip():
        number += 1
    if number < len(lines) and lines[number].startswith(">"):
        quote: list[str] = []
        while number < len(lines) and lines[number].startswith(">"):
            quote.append(lines[number][1:].strip())
            number += 1
        summary = " ".join(part for part in quote if part)
        if not summary:
            raise LlmsTxtError(number, "the summary blockquote is empty")
        result.summary = summary

    details: list[str] = []
    fence: str | None = None
    while number < len(lines):
        line = lines[number]
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = None
        elif opening := _FENCE.match(line):
            fence = opening.group(1)
        elif _H2.match(line):
            break
        elif _ANY_HEADING.match(line):
            raise LlmsTxtError(number + 1, f"only H2 headings may follow the H1: {line!r}")
        elif _SETEXT_UNDERLINE.match(line) and number > 0 and lines[number - 1].strip():
            raise LlmsTxtError(number + 1, "a setext heading is not allowed in the details")
        details.append(line)
        number += 1
    if fence is not None:
        raise LlmsTxtError(number, "unclosed code fence in the details")
    result.details = "\n".join(details).strip()

    section: list[Link] | None = None
    section_line = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if heading := _H2.match(line):
            if section is not None and not section:
                raise LlmsTxtError(section_line, "a section must list at least one link")
            name = heading.group("text")
            if name in result.sections:
                raise LlmsTxtError(number, f"section {name!r} appears twice")
            section = result.sections[name] = []
            section_line = number
            continue
        if not line.strip():
            continue
        item = _ITEM.match(line)
        if item is None or section is None:
            raise LlmsTxtError(
                number, f"a section holds only '- [name](url): notes' items, got {line!r}"
            )
        url = item.group("url")
        if absolute_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise LlmsTxtError(number, f"not an absolute http(s) URL: {url!r}")
        section.append(Link(_unescape(item.group("name")).strip(), url, item.group("notes")))
    if section is not None and not section:
        raise LlmsTxtError(section_line, "a section must list at least one link")
    return result
