"""Rewrites and corruptions of real page Markdown, for the faithfulness check's tests.

The pages are ``tests/fixtures/markdown/*.md``: the extractor's Markdown of Sphinx pages from
Debian's python3.11-doc, python-click-doc and python-attr-doc (``make.py`` there). Each
function takes the Markdown (and what hypothesis chose) and returns a new answer.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts, without_links
from crawl4ai_llm_docs.markdown.blocks import code_blocks, fence_mask
from crawl4ai_llm_docs.markdown.chunking import split_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "markdown"
# Whole pages, and the chunks the pipeline cuts them into at 300 tokens ("page#2").
PAGES: dict[str, str] = {
    path.stem: path.read_text(encoding="utf-8") for path in sorted(FIXTURES.glob("*.md"))
}
PAGES.update(
    {
        f"{name}#{index}": chunk
        for name, page in list(PAGES.items())
        for index, (chunk, _) in enumerate(split_text(page, max_tokens=300))
        if len(split_text(page, max_tokens=300)) > 1
    }
)

_HEADING = re.compile(r"^( {0,3})(#{1,6})([ \t]+)", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)([-*+])([ \t]+)(?=\S)")
_NUMBER = re.compile(r"^([ \t]*)(\d{1,9})([.)])([ \t]+)")
_SPAN = re.compile(r"`([^`\n]+)`")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")

# What a documentation site puts around its content: lines of nothing but links.
BOILERPLATE_TOP = (
    "* [Home](https://docs.example.org/)\n"
    "* [Library reference](https://docs.example.org/library/index.html)\n"
    '* [Previous topic](https://docs.example.org/library/prev.html "previous chapter")\n'
    "\n"
    "[Edit on GitHub](https://github.com/example/docs/edit/main/page.rst)\n\n"
)
BOILERPLATE_BOTTOM = (
    "\n\n[Next topic](https://docs.example.org/library/next.html)\n\n"
    "* [Report a Bug](https://docs.example.org/bugs.html)\n"
    "* [Show Source](https://docs.example.org/_sources/page.rst.txt)\n"
)
FILLER_WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "labore",
    "magna",
    "aliqua",
    "enim",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
]


def _blocks(text: str) -> list[str]:
    """Blank-line separated blocks, with code blocks kept whole (never split or touched)."""
    lines = text.split("\n")
    mask = fence_mask([line + "\n" for line in lines])
    blocks: list[list[str]] = [[]]
    for line, in_code in zip(lines, mask, strict=True):
        if not line.strip() and not in_code:
            if blocks[-1]:
                blocks.append([])
            continue
        blocks[-1].append(line)
    return ["\n".join(block) for block in blocks if block]


def _is_paragraph(block: str) -> bool:
    first = block.lstrip()
    if first.startswith(("```", "~~~", "#", "|", ">")) or _BULLET.match(block):
        return False
    return not _NUMBER.match(block)


# ---------------------------------------------------------------- harmless rewrites


def relevel_headings(text: str, shift: int) -> str:
    """Every heading ``shift`` levels deeper (or shallower), kept within 1-6."""
    mask = fence_mask([line + "\n" for line in text.split("\n")])
    out = []
    for line, in_code in zip(text.split("\n"), mask, strict=True):
        match = None if in_code else _HEADING.match(line)
        if match:
            level = min(6, max(1, len(match.group(2)) + shift))
            line = match.group(1) + "#" * level + match.group(3) + line[match.end() :]
        out.append(line)
    return "\n".join(out)


def reflow_paragraphs(text: str, width: int) -> str:
    """Paragraphs re-wrapped at ``width`` (a large width joins their lines); words unbroken."""
    out = []
    for block in _blocks(text):
        if _is_paragraph(block):
            wrapped = textwrap.fill(
                " ".join(block.split()),
                width=width,
                break_long_words=False,
                break_on_hyphens=False,
            )
            # A wrapped line must not start like a list item or a heading.
            block = re.sub(r"\n(?=[-*+#>]|\d+[.)])", " ", wrapped)
        out.append(block)
    return "\n\n".join(out) + "\n"


def change_list_markers(text: str, bullet: str, numbered: bool) -> str:
    """Bullets become ``bullet``; with ``numbered``, bullets become ``1.``, ``2.`` ... and
    numbered items bullets."""
    mask = fence_mask([line + "\n" for line in text.split("\n")])
    out, count = [], 0
    for line, in_code in zip(text.split("\n"), mask, strict=True):
        if not in_code and line.strip() != "* * *":
            if match := _BULLET.match(line):
                count += 1
                marker = f"{count}." if numbered else bullet
                line = match.group(1) + marker + " " + line[match.end() :]
            elif numbered and (match := _NUMBER.match(line)):
                line = match.group(1) + bullet + " " + line[match.end() :]
        out.append(line)
    return "\n".join(out)


def with_boilerplate(text: str) -> str:
    """The page as a site serves it: navigation above, links below."""
    return BOILERPLATE_TOP + text + BOILERPLATE_BOTTOM


def drop_rules(text: str) -> str:
    """Without ``* * *`` rules (boilerplate of the extractor)."""
    return "\n".join(line for line in text.split("\n") if line.strip() != "* * *")


# ---------------------------------------------------------------- corruptions


def span_identifiers(text: str) -> list[str]:
    """Identifiers (3+ characters) used in the page's inline code, in order of appearance."""
    seen: dict[str, None] = {}
    for span in _SPAN.findall(MarkdownFacts.of(text).prose):
        for name in _IDENTIFIER.findall(span):
            seen.setdefault(name, None)
    return list(seen)


def rename(text: str, names: list[str], suffix: str) -> str:
    """Each of ``names`` renamed (everywhere, as a whole word) to a name the page lacks."""
    vocabulary = set(re.findall(r"\w+", text))
    for name in names:
        new = name + suffix
        while new in vocabulary:
            new += "q"
        text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", new, text)
        vocabulary.add(new)
    return text


def filler(length: int, words: list[str]) -> str:
    pieces: list[str] = []
    size = 0
    index = 0
    while size <= length:
        word = words[index % len(words)]
        pieces.append(word)
        size += len(word) + 1
        index += 1
    return " ".join(pieces)[:length]


_LINK_TARGET = re.compile(r"\]\((?:\\.|[^()\\]|\([^)]*\))*\)")


def replace_half(text: str, start_share: float, words: list[str]) -> str:
    """A stretch holding half of the page's words (link targets are not words), starting at
    ``start_share`` of where it may start, swapped for filler words of the same length."""
    targets = [match.span() for match in _LINK_TARGET.finditer(text)]
    positions = [
        match.span()
        for match in re.finditer(r"\w+", text)
        if not any(start <= match.start() < end for start, end in targets)
    ]
    half = len(positions) // 2
    first = int(start_share * (len(positions) - half))
    start, end = positions[first][0], positions[first + half - 1][1]
    return text[:start] + filler(end - start, words) + text[end:]


def repetition_loop(text: str, line: str, times: int, *, numbered: bool, at_end: bool) -> str:
    """``line`` repeated ``times`` times (renumbered like list items, if ``numbered``),
    appended or replacing the second half (a model stuck in a loop)."""
    looped = "\n".join(f"{number}. {line}" if numbered else line for number in range(1, times + 1))
    if at_end:
        return text.rstrip("\n") + "\n\n" + looped + "\n"
    return text[: len(text) // 2] + "\n\n" + looped + "\n"


def loop_candidates(text: str) -> list[str]:
    """Lines of prose a loop may repeat: long enough, each once in the page."""
    lines = [line.strip() for line in _blocks(text) if _is_paragraph(line)]
    return [
        line
        for line in lines
        if len(without_links(line).strip()) >= 12 and len(line) <= 300 and text.count(line) == 1
    ]


def drop_code_block(text: str, index: int) -> str:
    """Without its ``index``-th fenced code block (fences included)."""
    lines = text.split("\n")
    mask = fence_mask([line + "\n" for line in lines])
    out: list[str] = []
    block = -1
    previous = False
    for line, in_code in zip(lines, mask, strict=True):
        if in_code and not previous:
            block += 1
        previous = in_code
        if not (in_code and block == index):
            out.append(line)
    return "\n".join(out)


def code_block_count(text: str) -> int:
    return len(code_blocks(text))


def insert_block(text: str, block: str, position: float) -> str:
    """``block`` inserted between two blocks, at ``position`` (0-1) of the page."""
    blocks = _blocks(text)
    at = round(position * len(blocks))
    return "\n\n".join([*blocks[:at], block, *blocks[at:]]) + "\n"
