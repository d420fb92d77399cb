"""One line that says what a page is about, for llms.txt links and per-page front matter.

The LLM's description line when it gave one, else the page's meta description, else the first
sentence of its text; always plain text on one line, at most ``MAX_CHARS`` characters.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from crawl4ai_llm_docs.markdown.blocks import fence_mask, heading_level
from crawl4ai_llm_docs.models import Document

MAX_CHARS = 160
MIN_WORDS = 4  # a shorter paragraph ("Source code: Lib/os.py") is a label, not a sentence
MAX_BLOCKS = 12  # paragraphs looked at for a sentence before settling for the best seen
MAX_MARKDOWN = 50_000  # the start of the page is where its first sentence is
MAX_SCAN = 2_000  # characters of a paragraph looked at (links included): a sentence ends before

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()\s]|\([^)]*\))*(?:\s+\"[^\"]*\")?\)")
_REFERENCE_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*{1,3})(?=\S)(.+?)(?<=\S)\1|(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\3(?!\w)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_STRAY = re.compile(r"[¶#]+\s*$|^\s*(?:[-*+>]|\d{1,9}[.)])\s+")
# A sentence ends at . ! ? followed by a space and a capital (or the end): not at "e.g." or "3.11".
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"\u201d\u2019)]?\s+(?=[\"\u201c\u2018(]?[A-Z])")
_NOT_PROSE = re.compile(r"^\s*(?:\||<|!\[|-{3,}|\*{3,}|_{3,}|={3,}|\[!?\[?[^\]]*\]\([^)]*\)\]?$)")
# Sphinx's version notes often come first: they say when, not what.
_VERSION_NOTE = re.compile(
    r"^\s*\*?(?:New in version|Changed in version|Deprecated since version) "
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+")


def _markup_free(text: str) -> str:
    text = _TAG.sub("", text)
    return _EMPHASIS.sub(lambda m: m.group(2) or m.group(4), text)


def _plain(text: str) -> str:
    """Markdown markup removed: links and images first (their text may be code), then tags
    and emphasis except inside code spans (``__init__`` stays as it is)."""
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REFERENCE_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    pieces: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        pieces += [_markup_free(text[position : span.start()]), span.group(0)]
        position = span.end()
    pieces.append(_markup_free(text[position:]))
    return " ".join(_STRAY.sub("", " ".join("".join(pieces).split())).split())


def _shorten(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    cut = text[: MAX_CHARS - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-\u2014\u2013(") + "…"


def clean(text: str) -> str:
    """Markdown -> plain text on one line, cut at a word to at most ``MAX_CHARS``."""
    return _shorten(_plain(text))


def _paragraphs(markdown: str) -> list[tuple[str, bool]]:
    """(text, is_list) of each block outside code, headings, tables and HTML, in order."""
    lines = markdown[:MAX_MARKDOWN].split("\n")
    in_code = fence_mask(lines)
    blocks: list[tuple[str, bool]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append((" ".join(current), bool(_LIST_ITEM.match(current[0]))))
            current.clear()

    for line, code in zip(lines, in_code, strict=True):
        if code or not line.strip() or heading_level(line) or line.startswith("    "):
            flush()
            continue
        if _NOT_PROSE.match(line) or line.count(" | ") >= 2 or _VERSION_NOTE.match(line):
            flush()
            continue
        if _LIST_ITEM.match(line):
            flush()  # each item on its own
        current.append(line.strip())
    flush()
    return blocks


def _head(block: str) -> str:
    """The start of a long paragraph, cut at a space (not inside a link or code span)."""
    if len(block) <= MAX_SCAN:
        return block
    cut = block[:MAX_SCAN]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def first_sentence(markdown: str) -> str:
    """The first sentence of the page's prose: preferably a whole sentence (ending in . ! ?)
    of a paragraph, else the first paragraph of a few words, else the first text at all.
    List items count only when there is no paragraph."""
    blocks = _paragraphs(markdown)
    ranked = [text for text, is_list in blocks if not is_list] + [
        text for text, is_list in blocks if is_list
    ]
    fallback, first = "", ""
    for block in ranked[:MAX_BLOCKS]:
        plain = _plain(_head(block))
        sentence = _SENTENCE_END.split(plain, maxsplit=1)[0]
        words = len(sentence.split())
        if words >= MIN_WORDS and sentence.endswith((".", "!", "?")):
            return _shorten(sentence)
        if words >= MIN_WORDS and not fallback:
            fallback = _shorten(sentence)
        first = first or _shorten(sentence)
    return fallback or first


def describe(document: Document, *, title: str = "") -> str:
    """The page's description: the LLM's, the page's own, its first sentence, its title, or
    (a page with no words at all, e.g. titled only "¶") where it is: never empty, since an
    llms.txt link without one is a fault readers are told to fix."""
    for text in (document.description, document.meta_description):
        if described := clean(text):
            return described
    return (
        first_sentence(document.markdown)
        or clean(title or document.title)
        or clean(document.title)
        or f"The page at {urlsplit(document.url).path or '/'}"
    )
