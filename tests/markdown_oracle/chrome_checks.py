"""Chrome lines (rules written apart from the extractor's), definition lists, <var>, content."""

from __future__ import annotations

import re
from typing import Any

from markdown_oracle.base import Check, _collapse, _counts_up, _snip, normalise_code
from markdown_oracle.code_checks import _flatten_html
from markdown_oracle.html_side import INLINE_CODE_TAGS, _iter_main
from markdown_oracle.md_side import Block, ParsedMarkdown
from markdown_oracle.table_checks import _is_nav_text

PERMALINK_MARKS = frozenset(("¶", "§", "#", "🔗", "⚓", "\u2693", "[#]"))
SOURCE_TOGGLES = frozenset(
    (
        "source",
        "[source]",
        "src",
        "[src]",
        "[+]",
        "[-]",
        "[\u2212]",
        "show source",
        "view source",
        "edit on github",
        "edit this page",
        "view page source",
        "show this page source",
        "(source)",
        "expand description",
        "collapse",
        "expand",
        "copy",
        "copy to clipboard",
        "run",
        "§",
    )
)
ALONE_CHROME = frozenset(
    (
        "contents",
        "table of contents",
        "on this page",
        "in this article",
        "quick search",
        "this page",
        "previous topic",
        "next topic",
        "skip to content",
        "toggle navigation",
        "page contents",
        "jump to",
        "show source",
        "back to top",
        "expand all",
        "collapse all",
        "search docs",
    )
)
NAV_ALONE = frozenset(("index", "modules", "next", "previous", "prev", "up", "home", "top"))
FOOTER = re.compile(
    r"^(?:(?:this\s+)?(?:documentation|page|site|html|file)\s+)?(?:generated\s+(?:by|on|using|with)|produced\s+by|created\s+using|built\s+with"
    r"|documentation\s+built\s+with|this\s+(?:page|document|file)\s+was\s+(?:generated|created)"
    r"|page\s+generated|theme\s+by|powered\s+by|last\s+(?:updated|modified)\s+on)\b",
    re.I,
)
NAV_LABELS = re.compile(
    r"^(?:next|previous|prev|up|forward|back|fast\s*back|fast\s*forward)\s*:\s*\S", re.I
)


def _chrome_reason(block: Block) -> str | None:
    text = _collapse(block.plain)
    low = text.lower().rstrip(":").strip()
    if not text:
        return None
    cell = block.kind in ("td", "th")  # a table cell's word is content ("src", "#", "Copy")
    if low in ALONE_CHROME and not cell:
        return "alone"
    if (
        low in NAV_ALONE
        and block.link_texts
        and _collapse(" ".join(block.link_texts)).lower() == low
    ):
        return "nav link alone"
    styled_term = _collapse(" ".join(block.styled)) == text  # "**#**": a term, not a mark
    if (
        not cell
        and not styled_term
        and (text in PERMALINK_MARKS or text.strip("[]()") in PERMALINK_MARKS)
    ):
        return "permalink"
    for link in block.link_texts:
        if _collapse(link) in PERMALINK_MARKS:
            return "permalink link"
    if re.search(r"\s¶$|^¶\s|\s§$", text):
        return "permalink mark"
    if NAV_LABELS.match(text) and block.link_texts:
        return "nav labels"
    if block.link_texts and _is_nav_text(text):
        return "nav links"
    if block.link_texts and all(_is_nav_text(label) for label in block.link_texts):
        rest = text
        for link in block.link_texts:
            rest = rest.replace(_collapse(link), " ", 1)
        if not re.sub(r"[\s|·•,:\[\]<>«»-]+", "", rest):
            return "nav links"
    last = _collapse(block.link_texts[-1]).lower() if block.link_texts else ""
    if last in SOURCE_TOGGLES and (text.lower().endswith(last) or low == last):
        return "source toggle"
    if low in SOURCE_TOGGLES and not cell:
        return "toggle text"
    if len(text.split()) <= 25 and FOOTER.search(text):
        return "footer"
    return None


def check_chrome(md: ParsedMarkdown, page_code: set[str] | frozenset = frozenset()) -> Check:
    check = Check()
    previous = None
    for n, block in enumerate(md.blocks):
        check.total += 1
        reason = _chrome_reason(block)
        if reason == "alone" and block.kind in ("h1", "h2", "h3", "h4", "h5", "h6"):
            following = md.blocks[n + 1] if n + 1 < len(md.blocks) else None
            if following is None or following.kind != "li" or not following.link_texts:
                reason = None  # a section of that name, not a list of contents
        text = _collapse(block.plain)
        shape = [span.kind for span in block.spans]  # "**x**" then "`x`": a term and its code
        if (
            reason is None
            and previous is not None
            and text
            and (text, shape) == previous
            and len(text) > 3
            and block.kind in ("p", "h1", "h2", "h3", "h4", "h5", "h6")
        ):
            reason = "repeated"
        previous = (text, shape) if text else previous
        if reason:
            check.fail(reason, f"line {block.line + 1} {_snip(text, 80)}")
        else:
            check.ok += 1
    for _info, content in md.code_blocks:
        text = normalise_code(content)
        if text and _counts_up(text) and text not in page_code:
            check.total += 1
            check.fail("gutter block", _snip(text, 40))
    return check


# Definition lists, var, content --------------------------------------------------------------


def check_definition_lists(roots: list[Any], excluded: set[Any], md: ParsedMarkdown) -> Check:
    check = Check()
    flats = [" ".join(b.flat.split()) for b in md.blocks]
    for dl in _iter_main(roots, excluded, "dl"):
        items = [c for c in dl if isinstance(c.tag, str)]
        for n, dt in enumerate(items):
            if dt.tag != "dt" or n + 1 >= len(items) or items[n + 1].tag != "dd":
                continue
            term = _collapse(dt.text_content())
            definition = _collapse(items[n + 1].text_content())
            if not term or not definition:
                continue
            check.total += 1
            if term[-1] in ":\uff1a\u2014\u2013-":
                check.ok += 1  # "Defined in: file.rb" reads as term and definition
                continue
            probe = f"{term} {definition[:30]}"
            if any(probe in flat for flat in flats):
                check.fail("flattened", _snip(probe, 80))
            else:
                check.ok += 1
    return check


def check_var(roots: list[Any], excluded: set[Any], md: ParsedMarkdown) -> Check:
    check = Check()
    styled = [_collapse(s) for b in md.blocks for s in b.styled] + [
        _collapse(c) for _, c in md.code_blocks
    ]
    for el in _iter_main(roots, excluded, "var"):
        if any(
            a.tag in INLINE_CODE_TAGS or a.tag in ("pre", "var", "em", "i")
            for a in el.iterancestors()
        ):
            continue
        text = _collapse(el.text_content())
        if not text:
            continue
        check.total += 1
        if any(text in s for s in styled):
            check.ok += 1
        else:
            check.fail("plain", _snip(text, 60))
    return check


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def check_content(roots: list[Any], excluded: set[Any], markdown: str, md: ParsedMarkdown) -> Check:
    check = Check(total=1)
    html_words = sum(_words(_flatten_html(root, excluded)[0]) for root in roots)
    md_words = sum(_words(b.plain) for b in md.blocks) + sum(_words(c) for _, c in md.code_blocks)
    ratio = md_words / html_words if html_words else 1.0
    check.extra["html_words"] = html_words
    check.extra["md_words"] = md_words
    if md_words > 0 and ratio >= 0.3:
        check.ok = 1
    else:
        check.fail("little content", f"{md_words} words of {html_words}")
    return check
