"""What the faithfulness check compares: the facts of one Markdown text.

``MarkdownFacts.of(text)`` splits the text into fenced code blocks and prose; the rest is
computed when first asked for: the inline-code spans, the headings, list items and table rows
of the prose, the words of the whole text, and how often each line occurs. Words are
normalised so that a faithful rewrite reads the same as the original: link targets, list
markers and numbers, escapes and HTML entities are dropped, case is folded, and Markdown
syntax (``#``, ``|``, ``*``) is never a word.

A line made only of links (a table-of-contents entry, "Next topic", "Edit on GitHub") is
*boilerplate*: an answer may drop it, so it is left out of what must be kept.

Speed matters (the whole check must cost well under 1 ms per 10 KB): the work is a few passes
of regular expressions and ``bytes`` methods over the whole text; Python loops run only over
fences, items and distinct lines, never over every character or word.
"""

from __future__ import annotations

import itertools
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from crawl4ai_llm_docs.markdown.blocks import CodeBlock, open_fence

ItemKind = Literal["heading", "list item", "table row"]

# A code span: a run of n backticks, content (not across a blank line), the same run again;
# the common case (no double backticks) has a regular expression several times as fast.
_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:[^\n]|\n(?![ \t]*\n))+?)(?<!`)\1(?!`)")
_SIMPLE_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
# ](target "title"): the target of a link or image, titles with escaped parentheses included
# and titles wrapped over lines (not across a blank line).
# (Unrolled, possessive: the obvious ``(?:\\.|[^()]|\(...\))*`` is three times slower.)
_TARGET = r"\]\([^()\\\n]*+(?:(?:\\.|\([^)\n]*\)|\n(?![ \t]*\n))[^()\\\n]*+)*\)"
_LINK_TARGET = re.compile(_TARGET)
# A list marker (or number) at the start of a line. Patterns over whole texts start with a
# literal ("\n", "](", "`") wherever possible: the regex engine then skips to it quickly.
_MARKER = re.compile(r"\n[ \t]*(?:>[ \t]?)*(?:[-*+]|\d{1,9}[.)])(?=[ \t\n])")
_ENTITY = re.compile(r"&#?\w+;")
# Words are split on ASCII punctuation and white space, over UTF-8 bytes: a regular
# expression would be seven times slower. Underscores split too (``_emphasis_`` reads as
# "emphasis", ``foo_bar`` as "foo bar"): the same on both sides of every comparison.
_PUNCTUATION = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
_UNICODE_PUNCTUATION = "\u201c\u201d\u2018\u2019\u2014\u2013\u2026\u00b6\u00a0"
_ITEM = re.compile(
    r"\n(?: {0,3}#{1,6}[ \t]+(?P<heading>[^\n]*)"
    r"|[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?P<item>[^\n]*)"
    r"|[ \t]*\|(?P<row>[^\n]*)"
    r"|[ \t]*(?P<link>!?\[[^\n]*\]\([^\n]*))(?=\n)"
)
# Nothing but links and punctuation (what is left of a line after its marker).
_NOT_WORD = r"(?:[^\w\[\n]|_)*"
_LINK_ONLY = re.compile(rf"{_NOT_WORD}(?:!?\[(?:\\.|[^\]\\\n])*{_TARGET}{_NOT_WORD})+")
# The repetition check also cuts lines longer than this into sentences.
_LONG_LINE = 200


def split_words(text: str) -> list[bytes]:
    """The words of ``text`` (markup already removed), lower case, as UTF-8 bytes."""
    if "&" in text:
        text = _ENTITY.sub(" ", text)
    if not text.isascii():
        for mark in _UNICODE_PUNCTUATION:
            if mark in text:
                text = text.replace(mark, " ")
    return text.encode().translate(_PUNCTUATION).lower().split()


def without_markup(text: str) -> str:
    """``text`` without list markers and link targets (``[a](b "c")`` reads ``[a] ``)."""
    return without_links(_MARKER.sub("\n", "\n" + text)[1:])


def without_links(text: str) -> str:
    return _LINK_TARGET.sub("] ", text) if "](" in text else text


def words_of(text: str) -> list[bytes]:
    return split_words(without_links(text))


def one_line(text: str) -> str:
    return " ".join(text.split())


def is_link_only(text: str) -> bool:
    """Whether ``text`` (a line without its list marker) is nothing but links."""
    return "](" in text and _LINK_ONLY.fullmatch(text) is not None


def non_space(text: str) -> int:
    """Characters that are not spaces or line ends, counted in C (tabs and other white space
    are rare in Markdown, and count the same in a chunk and its answer)."""
    return len(text) - text.count(" ") - text.count("\n")


def _find_fences(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line that may be a fence, found by ``str.find`` (fast)."""
    lines: list[tuple[int, int]] = []
    for marker in ("```", "~~~"):
        at = text.find(marker)
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            if not text[start:at].strip(" \t"):  # only indentation before the marker
                lines.append((start, end))
            at = text.find(marker, end)
    return sorted(set(lines))


@dataclass
class MarkdownFacts:
    text: str
    code_blocks: list[CodeBlock] = field(default_factory=list)
    unclosed_fence: bool = False
    prose: str = ""  # the text outside code blocks (a blank line where each block was)

    @classmethod
    def of(cls, text: str) -> MarkdownFacts:
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        facts = cls(text=text, prose=text)
        if "```" not in text and "~~~" not in text:
            return facts
        prose: list[str] = []
        position = 0  # where the current prose (or code body) starts
        opened = None
        for start, end in _find_fences(text):
            line = text[start:end]
            if opened is None:
                fence = open_fence(line)
                if fence is None:
                    continue
                prose.append(text[position:start])
                opened, position = fence, end + 1
            elif opened.closes(line):
                body = text[position:start].removesuffix("\n")
                facts.code_blocks.append(CodeBlock(opened.info, body.split("\n")))
                opened, position = None, end + 1
                prose.append("\n")
        if opened is not None:
            body = text[position:].removesuffix("\n")
            facts.code_blocks.append(CodeBlock(opened.info, body.split("\n") if body else []))
            facts.unclosed_fence = True
        else:
            prose.append(text[position:])
        facts.prose = "\n".join(prose)
        return facts

    # ------------------------------------------------------------ derived, computed once on use

    @cached_property
    def plain(self) -> str:
        """The whole text without list markers and link targets."""
        return without_markup(self.text)

    @cached_property
    def words(self) -> list[bytes]:
        """Every word of the text, code blocks included, in order."""
        return split_words(self.plain)

    @cached_property
    def word_set(self) -> frozenset[bytes]:
        return frozenset(self.words)

    @cached_property
    def pairs(self) -> set[tuple[bytes, bytes]]:
        """Every pair of adjacent words."""
        words = self.words
        return set(itertools.pairwise(words))

    @cached_property
    def items(self) -> list[tuple[ItemKind, list[bytes]]]:
        """The words of each heading, list item (its first line) and table row, items without
        words ("* * *", a table's ``|---|`` line) left out."""
        return [(kind, words) for kind, words, line in self._items if line is None]

    @cached_property
    def content_pairs(self) -> set[tuple[bytes, bytes]]:
        """The pairs of adjacent words once boilerplate lines are removed."""
        lines = {line for _, _, line in self._items if line is not None}
        if not lines:
            return self.pairs
        # As ``plain`` has them: without marker and link targets.
        drop = {without_markup(line).strip() for line in lines}
        text = "\n".join(line for line in self.lines if line.strip() not in drop)
        return set(itertools.pairwise(split_words(text)))

    @cached_property
    def _items(self) -> list[tuple[ItemKind, list[bytes], str | None]]:
        """(kind, words, the line if it is boilerplate) of every item and boilerplate line."""
        found: list[tuple[ItemKind, list[bytes], str | None]] = []
        for match in _ITEM.finditer(f"\n{self.prose}\n"):
            heading, item, row, link = match.group("heading", "item", "row", "link")
            kind: ItemKind = "list item"
            text = item
            if heading is not None:
                kind, text = "heading", heading
            elif row is not None:
                kind, text = "table row", row
            elif link is not None:
                text = link
            boilerplate = is_link_only(text)
            words = words_of(text)
            if words and (link is None or boilerplate):
                found.append((kind, words, match.group(0)[1:] if boilerplate else None))
        return found

    @cached_property
    def content_size(self) -> int:
        """Non-space characters, boilerplate lines left out."""
        size = non_space(self.text)
        for _, _, line in self._items:
            if line is not None:
                size -= non_space(line)
        return max(size, 0)

    @cached_property
    def spans(self) -> frozenset[str]:
        """Distinct inline-code spans, whitespace collapsed."""
        return _spans(self.prose)

    @cached_property
    def content_spans(self) -> frozenset[str]:
        """The spans outside boilerplate lines."""
        lines = {line for _, _, line in self._items if line is not None and "`" in line}
        if not lines:
            return self.spans
        content = self.prose
        for line in lines:
            content = content.replace(line, "")
        return _spans(content)

    @cached_property
    def flat(self) -> str:
        """The whole text on one line, whitespace collapsed."""
        return one_line(self.text)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """The tokens of the raw text, link targets and code included."""
        return Vocabulary(self.text)

    @cached_property
    def pieces(self) -> Counter[str]:
        """How often each line occurs (markers and link targets removed, so renumbered items
        count as the same; indentation counts), and each sentence of a long line."""
        counts = Counter(self.lines)
        for line in [line for line in counts if len(line) > _LONG_LINE and ". " in line]:
            counts.update(line.split(". ") * counts[line])
        return counts

    @cached_property
    def lines(self) -> list[str]:
        """The lines of ``plain``."""
        return self.plain.split("\n")


class Vocabulary:
    """The tokens of a text, to ask whether a name is made of them: an identifier must be
    there as it is (case, underscores), a plain word may change case or lose the
    underscores of emphasis (``_prompt_`` gives ``prompt``). Answered by searching the text
    for the token between word boundaries: a few microseconds a token, where building a set
    of a 10 KB text's tokens costs 0.2 ms."""

    __slots__ = ("_lower", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lower: str | None = None

    def __or__(self, other: Vocabulary) -> Vocabulary:
        return Vocabulary(f"{self.text}\n{other.text}")

    def has(self, token: str) -> bool:
        bare = token.strip("_")
        if _occurs(self.text, token, underscore_is_word=True) or (
            bare and bare != token and _occurs(self.text, bare, underscore_is_word=True)
        ):
            return True
        if not (bare.isalpha() and (bare.islower() or bare[1:].islower())):
            return False  # an identifier with inner capitals, digits or underscores
        if self._lower is None:
            self._lower = self.text.lower()
        return _occurs(self._lower, bare.lower(), underscore_is_word=False)


def _occurs(text: str, token: str, *, underscore_is_word: bool) -> bool:
    """Whether ``token`` occurs in ``text`` as a whole word."""
    size = len(token)
    at = text.find(token)
    while at >= 0:
        before = text[at - 1] if at else " "
        after = text[at + size] if at + size < len(text) else " "
        if not (before.isalnum() or (underscore_is_word and before == "_")) and not (
            after.isalnum() or (underscore_is_word and after == "_")
        ):
            return True
        at = text.find(token, at + 1)
    return False


def _spans(text: str) -> frozenset[str]:
    if "`" not in text:
        return frozenset()
    if "``" in text:
        raw = [match.group(2) for match in _SPAN.finditer(text)]
    else:
        raw = _SIMPLE_SPAN.findall(text)
    found = {
        " ".join(span.split()) if "  " in span or "\n" in span else span.strip() for span in raw
    }
    found.discard("")
    return frozenset(found)
