"""A page's Markdown as sections: cut at its headings, each with its heading path.

A section is one heading and the text under it down to the next heading (code blocks are
never cut, and a ``#`` line inside one is not a heading). Its heading path is the chain of
headings above it, below the page's title ("Page title > Section > Subsection"). A heading
with no text of its own before the next heading joins that next section, so no section is
empty and every line belongs to exactly one section: the page is its sections joined by a
blank line, which is how ``fetch_doc`` gives pages back. A section longer than
``MAX_SECTION_TOKENS`` is cut at its paragraphs into parts with the same heading path
(search ranks passages of a few hundred tokens far better than whole chapters).

Besides its Markdown, each section carries ``body``, the text search indexes: the same lines
(one for one, so a match found in ``body`` is a line of the Markdown) with link targets,
images and HTML tags taken out, and the heading line left blank (it is indexed as the path).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from crawl4ai_llm_docs.markdown.blocks import fence_mask, heading_level, open_fence
from crawl4ai_llm_docs.markdown.chunking import split_text
from crawl4ai_llm_docs.search.names import Anchors, anchor_slug

MAX_SECTION_TOKENS = 512
PATH_SEPARATOR = " > "

_ATX_TEXT = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$")
# [text](target "title") and ![alt](target): the target and title are not words of the page.
_LINK_TARGET = re.compile(
    r"\]\(\s*<?[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*>?(?:\s+\"(?:[^\"\\]|\\.)*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<(?:https?|ftp|file|mailto):[^>\s]*>")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_IMAGE_START = re.compile(r"!\[")
# An identifier in camelCase or PascalCase (DictReader, getLogger, HTTPServer, maxBytes).
_CAMEL = re.compile(r"\b[A-Za-z]*(?:[a-z][A-Z]|[A-Z]{2}[a-z])[A-Za-z0-9]*\b")
_CAMEL_PART = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z])|[A-Z][a-z]+|[a-z]+|[A-Z]+|\d+")
_DECORATION = re.compile(r"[`*]+|\\(?=[^\w\s])|[\u00b6]")  # code ticks, emphasis, escapes, pilcrow


@dataclass(frozen=True, slots=True)
class Section:
    anchor: str  # unique within the page; "" for the text before the first heading
    headings: tuple[str, ...]  # the heading path below the page title
    text: str  # the Markdown, heading line included
    body: str  # what is indexed: ``text`` line for line, as plain words
    tokens: int  # cl100k tokens of ``text``
    link_share: float = 0.0  # of its words, the share that are link text (1.0: a link list)

    def heading_path(self, title: str) -> str:
        return (
            PATH_SEPARATOR.join((title, *self.headings))
            if title
            else PATH_SEPARATOR.join(self.headings)
        )


def _with_parts(match: re.Match[str]) -> str:
    word = match.group(0)
    return f"{word} ({' '.join(_CAMEL_PART.findall(word))})"


def plain_line(line: str) -> str:
    """A Markdown line's words: links and images keep their text, targets and tags go."""
    line = _LINK_TARGET.sub("]", line)
    line = _AUTOLINK.sub(" ", line)
    line = _HTML_TAG.sub(" ", line)
    return _IMAGE_START.sub("[", line)


def indexed_line(line: str) -> str:
    """``plain_line``, and each camelCase identifier followed by its words ("DictReader
    (Dict Reader)"): a question in words finds the API that is named in them."""
    return _CAMEL.sub(_with_parts, plain_line(line))


def heading_text(line: str) -> str:
    """An ATX heading line's text, as a reader sees it: "[`csv`](...) — CSV" -> "csv — CSV"."""
    match = _ATX_TEXT.match(line)
    text = match.group(1) if match else line
    text = _DECORATION.sub("", plain_line(text)).replace("[", "").replace("]", "")
    return " ".join(text.split())


_LINK_TEXT = re.compile(r"(?<!!)\[([^\]]*)\]\(")
_LETTERS = re.compile(r"[^\W\d_]+")


def link_share(lines: list[str]) -> float:
    """The share of a text's words (outside code) that are the text of links: close to 1 for
    a table of contents or a list of links, which say little of their own."""
    code = fence_mask(lines)
    linked = total = 0
    for line, in_code in zip(lines, code, strict=True):
        if in_code or heading_level(line):
            continue
        total += len(_LETTERS.findall(plain_line(line)))
        linked += sum(len(_LETTERS.findall(text)) for text in _LINK_TEXT.findall(line))
    return min(linked / total, 1.0) if total else 0.0


def _plain_body(lines: list[str]) -> str:
    code = fence_mask(lines)
    out: list[str] = []
    for line, in_code in zip(lines, code, strict=True):
        if in_code:  # code is kept word for word; its fence lines (opening or closing) are not
            out.append("" if open_fence(line) is not None else _CAMEL.sub(_with_parts, line))
        elif heading_level(line):
            out.append("")
        else:
            out.append(indexed_line(line))
    return "\n".join(out)


@dataclass(slots=True)
class _Raw:
    heading: str  # "" for the text before the first heading
    headings: tuple[str, ...]
    lines: list[str]
    body_start: int  # lines before it are heading lines

    def has_text(self) -> bool:
        return any(line.strip() for line in self.lines[self.body_start :])


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _raw_sections(markdown: str, title: str) -> Iterator[_Raw]:
    lines = markdown.replace("\r\n", "\n").split("\n")
    code = fence_mask(lines)
    current = _Raw("", (), [], 0)
    stack: list[tuple[int, str]] = []
    first_heading = True
    for line, in_code in zip(lines, code, strict=True):
        level = 0 if in_code else heading_level(line)
        if not level:
            current.lines.append(line)
            continue
        text = heading_text(line)
        # The page's own heading (an H1, or its title, before any text) is the path's root,
        # which the title already names.
        if first_heading and not current.has_text() and (level == 1 or _same(text, title)):
            first_heading = False
            current.lines.append(line)
            current.body_start = len(current.lines)
            continue
        first_heading = False
        yield current
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        current = _Raw(text, tuple(heading for _, heading in stack), [line], 1)
    yield current


def _merged(raws: Iterator[_Raw]) -> Iterator[_Raw]:
    """A heading with no text of its own joins the next section (whose path is deeper)."""
    pending: list[str] = []
    last: _Raw | None = None
    for raw in raws:
        if not raw.has_text():
            pending += [line for line in raw.lines if line.strip()]
            continue
        if pending:
            raw.lines[:0] = [*pending, ""]
            pending = []
        if last is not None:
            yield last
        last = raw
    if pending:  # headings at the very end: they close the last section
        if last is None:
            last = _Raw("", (), [], 0)
        last.lines += ["", *pending]
    if last is not None:
        yield last


def split_sections(
    markdown: str, *, title: str = "", max_tokens: int = MAX_SECTION_TOKENS
) -> list[Section]:
    """``markdown`` as sections in page order (none for a page without text). A first
    heading that is an H1 or repeats ``title`` is the page's own heading, not a section's."""
    anchors = Anchors()
    sections: list[Section] = []
    for raw in _merged(_raw_sections(markdown, title)):
        text = "\n".join(raw.lines).strip("\n")
        anchor = anchors.unique(anchor_slug(raw.heading)) if raw.headings else ""
        for number, (part, tokens) in enumerate(split_text(text, max_tokens=max_tokens)):
            if not part.strip():
                continue
            sections.append(
                Section(
                    anchor=anchor
                    if number == 0
                    else anchors.unique(f"{anchor or 'part'}-{number + 1}"),
                    headings=raw.headings,
                    text=part,
                    body=_plain_body(part.split("\n")),
                    tokens=tokens,
                    link_share=link_share(part.split("\n")),
                )
            )
    return sections
