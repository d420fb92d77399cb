"""A checker of the code in a page's Markdown, independent of the extractor.

From a page's HTML it takes the main content, leaves out the generator's user-interface bits
that sit inside code (rustdoc's "Show 40 variants" toggle, Doxygen's line numbers) and the
boilerplate the extractor is asked to drop (rustdoc's blanket implementations), and collects
every code block and the text of every inline ``<code>`` as a browser shows them (a ``<br>``
or a block boundary is whitespace). Each must appear in the page's Markdown,
whitespace-normalised: a block inside a fenced block, an inline text as an inline code span
(or inside a fence). It also counts ``[](`` outside code, ``javascript:`` links, the
generator's chrome phrases and missing member-summary tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.html  # type: ignore[import-untyped]

FENCED = re.compile(
    r"^[ \t]*```[^\n]*\n(.*?)\n[ \t]*```$", re.MULTILINE | re.DOTALL
)  # in list items too
INLINE = re.compile(r"(`+)(.+?)\1")
QUOTE_MARKERS = re.compile(r"^> ?", re.MULTILINE)
# Markdown links outside code: "[text](target" — an empty text is the failure looked for.
EMPTY_LINK = re.compile(r"\[\]\(")
JS_LINK = re.compile(r"\]\(\s*<?\s*javascript:", re.IGNORECASE)


@dataclass(frozen=True)
class DocSet:
    generator: str  # the row label in the table
    package: str  # the Debian package that ships the pages
    root: Path
    main: str  # the page's main content (a union of selectors, in document order)
    pages: tuple[str, ...]  # paths under root
    not_code: str = ""  # user-interface elements inside code: not part of the code's text
    dropped: str = ""  # boilerplate the extractor is asked to drop: expected nowhere
    blocks: str = "pre"  # code blocks
    signatures: str = ""  # elements whose text is a signature the Markdown must keep
    chrome: tuple[str, ...] = ()  # phrases of the generator's chrome: never in the Markdown
    tables: tuple[str, ...] = ()  # table header rows member summaries must come out as
    summary: str = ""  # a page with this element has a member summary: ``tables`` apply

    def available(self) -> bool:
        return all((self.root / page).is_file() for page in self.pages)


def spaces(text: str) -> str:
    """Whitespace-normalised text: one space for any run, no zero-width spaces."""
    text = text.replace("\xa0", " ").replace("\u200b", "")
    return " ".join(text.split())


@dataclass
class Expected:
    blocks: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)  # distinct texts
    signatures: list[str] = field(default_factory=list)
    summary: bool = False  # the page has a member summary


def expected_code(html: str, docset: DocSet) -> Expected:
    """The code a faithful Markdown of this page keeps, from its HTML alone."""
    doc = lxml.html.document_fromstring(html)
    _mark_read_more(doc)
    found = Expected()
    inline: dict[str, None] = {}
    for main in doc.cssselect(docset.main):
        _line_breaks(main)
        for selector in (docset.not_code, docset.dropped):
            for element in main.cssselect(selector) if selector else ():
                if element.getparent() is not None:
                    element.drop_tree()
        block_set = set(main.cssselect(docset.blocks))
        for block in main.cssselect(docset.blocks):
            if any(a.tag == "pre" for a in block.iterancestors()):
                continue
            lines = block.cssselect("div.line")  # Doxygen: one div per line
            text = "\n".join(line.text_content() for line in lines) if lines else None
            if text := spaces(text if text is not None else block.text_content()):
                found.blocks.append(text)
        for code in main.iter("code"):
            if any(a.tag in ("pre", "code") or a in block_set for a in code.iterancestors()):
                continue
            if text := spaces(code.text_content()):
                inline.setdefault(text)
        if docset.signatures:
            found.signatures += [
                text
                for s in main.cssselect(docset.signatures)
                if (text := spaces(s.text_content()))
            ]
    found.inline = list(inline)
    found.summary = bool(docset.summary and doc.cssselect(docset.summary))
    return found


def _line_breaks(main: Any) -> None:
    """A ``<br>`` or the boundary of a block element is a line break on screen: whitespace."""
    for element in main.iter("br"):
        element.tail = "\n" + (element.tail or "")
    for element in main.iter("div", "p"):
        if element is not main:
            element.tail = "\n" + (element.tail or "")
            previous = element.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + "\n"
            elif element.getparent() is not None:
                element.getparent().text = (element.getparent().text or "") + "\n"


def _mark_read_more(doc: Any) -> None:
    """rustdoc: a trait implementation's doc that ends in "Read more" is the trait's own."""
    for block in doc.cssselect(".impl-items .docblock"):
        if any(spaces(a.text_content()).lower() == "read more" for a in block.iter("a")):
            block.set("class", (block.get("class") or "") + " read-more")


@dataclass
class Checked:
    blocks: int
    blocks_kept: int
    inline: int
    inline_kept: int
    signatures: int
    signatures_kept: int
    missing_blocks: list[str]
    missing_inline: list[str]
    missing_signatures: list[str]
    empty_links: int
    js_links: int
    chrome: list[str]
    tables_missing: list[str]


def without_code(markdown: str) -> str:
    return INLINE.sub(" ", FENCED.sub(" ", markdown))


def check(markdown: str, expected: Expected, docset: DocSet) -> Checked:
    fences = [spaces(f) for f in FENCED.findall(markdown)]
    # Code in a blockquote ("> ```") is a code block too: read it without the quote markers.
    quoted = "\n".join(line for line in markdown.splitlines() if line.startswith(">"))
    fences += [spaces(f) for f in FENCED.findall(QUOTE_MARKERS.sub("", quoted))]
    rest = FENCED.sub(" ", markdown)
    spans = [spaces(m.group(2).replace("\\|", "|")) for m in INLINE.finditer(rest)]
    flat = spaces(markdown)
    text = without_code(markdown)
    missing_blocks = [b for b in expected.blocks if not any(b in f for f in fences)]
    missing_inline = [
        t for t in expected.inline if t not in spans and not any(t in f for f in fences)
    ]
    missing_signatures = [s for s in expected.signatures if s not in flat]
    return Checked(
        blocks=len(expected.blocks),
        blocks_kept=len(expected.blocks) - len(missing_blocks),
        inline=len(expected.inline),
        inline_kept=len(expected.inline) - len(missing_inline),
        signatures=len(expected.signatures),
        signatures_kept=len(expected.signatures) - len(missing_signatures),
        missing_blocks=missing_blocks,
        missing_inline=missing_inline,
        missing_signatures=missing_signatures,
        empty_links=len(EMPTY_LINK.findall(text)),
        js_links=len(JS_LINK.findall(markdown)) + markdown.lower().count("javascript:void"),
        chrome=[phrase for phrase in docset.chrome if phrase in text],
        tables_missing=[row for row in docset.tables if expected.summary and row not in markdown],
    )
