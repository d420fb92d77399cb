"""Checks of code: blocks, languages, inline code, spans nothing accounts for, glued words."""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher
from typing import Any

from markdown_oracle.base import Check, _collapse, _counts_up, _snip, normalise_code
from markdown_oracle.html_side import (
    BLOCK_TAGS,
    INLINE_CODE_TAGS,
    NO_LANGUAGE,
    _iter_main,
    canonical_language,
    declared_language,
)
from markdown_oracle.md_side import ParsedMarkdown

# --------------------------------------------------------------------------------------------
# Checks


def check_code_blocks(
    blocks: list[tuple[Any, str]], md: ParsedMarkdown
) -> tuple[Check, dict[int, int]]:
    """Each HTML block must equal one Markdown block; returns the pairing (html idx -> md idx)."""
    check = Check()
    md_norm = [normalise_code(content) for _, content in md.code_blocks]
    free: dict[str, list[int]] = {}
    for j, text in enumerate(md_norm):
        free.setdefault(text, []).append(j)
    pairing: dict[int, int] = {}
    for i, (_el, text) in enumerate(blocks):
        check.total += 1
        if free.get(text):
            pairing[i] = free[text].pop(0)
            check.ok += 1
            continue
        # The closest Markdown block, for the snippet and for the language check.
        best, best_ratio = -1, 0.0
        first = next((line for line in text.split("\n") if line.strip()), "")
        for j, other in enumerate(md_norm):
            if first.strip() and first.strip() not in other:
                continue
            ratio = (
                SequenceMatcher(None, text, other, autojunk=False).ratio()
                if len(text) < 20000
                else 0.5
            )
            if ratio > best_ratio:
                best, best_ratio = j, ratio
        if best >= 0 and best_ratio >= 0.6:
            pairing[i] = best
            diff = _first_difference(text, md_norm[best])
            check.fail("differs", f"{_snip(first)} first difference {diff}")
        elif any(text in other for other in md_norm):
            check.fail("merged", _snip(first))
        else:
            check.fail("missing", _snip(text))
    for _info, content in md.code_blocks:
        text = normalise_code(content)
        if text and _counts_up(text) and text not in {t for _, t in blocks}:
            check.extra["gutter_blocks"] = check.extra.get("gutter_blocks", 0) + 1
    return check, pairing


def _first_difference(expected: str, got: str) -> str:
    a, b = expected.split("\n"), got.split("\n")
    for n, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"line {n + 1}: html {x[:70]!r} md {y[:70]!r}"
    if len(a) != len(b):
        return f"html {len(a)} lines, md {len(b)} lines"
    return "?"


def check_languages(
    blocks: list[tuple[Any, str]], pairing: dict[int, int], md: ParsedMarkdown
) -> Check:
    check = Check()
    invented = 0
    for i, (el, text) in enumerate(blocks):
        declared = declared_language(el)
        j = pairing.get(i)
        got = ""
        if j is not None:
            info = md.code_blocks[j][0]
            got = canonical_language(re.split(r"[\s,{]", info, maxsplit=1)[0]) if info else ""
        if not declared:
            if got and got not in NO_LANGUAGE and j is not None:
                invented += 1
            continue
        check.total += 1
        if j is None:
            check.fail("no block", f"{declared} {_snip(text, 50)}")
        elif got == declared:
            check.ok += 1
        elif not got:
            check.fail("lost", f"{declared} {_snip(text, 50)}")
        else:
            check.fail("wrong", f"{declared} -> {got} {_snip(text, 50)}")
    check.extra["invented"] = invented
    return check


def html_inline_code(roots: list[Any], excluded: set[Any]) -> list[str]:
    found = []
    for el in _iter_main(roots, excluded, *INLINE_CODE_TAGS):
        if any(a.tag in INLINE_CODE_TAGS or a.tag == "pre" for a in el.iterancestors()):
            continue
        if el.find(".//pre") is not None:
            continue
        text = _collapse(_text_without(el, frozenset(), br=" "))
        if text:
            found.append(text)
    return found


def check_inline_code(expected: list[str], md: ParsedMarkdown) -> Check:
    check = Check()
    spans = Counter(_collapse(s) for s in md.code_spans)
    larger = [_collapse(s) for s in md.code_spans] + [_collapse(c) for _, c in md.code_blocks]
    for text in expected:
        check.total += 1
        if spans[text] > 0:
            spans[text] -= 1
            check.ok += 1
        elif any(text in other for other in larger):
            check.ok += 1
        else:
            check.fail("not a code span", _snip(text, 70))
    return check


def _text_without(el: Any, excluded: set[Any] | frozenset, br: str = "") -> str:
    parts = [el.text or ""]
    for child in el:
        if child.tag == "br":
            parts.append(br)
        elif isinstance(child.tag, str) and child not in excluded:
            parts.append(_text_without(child, excluded, br))
        parts.append(child.tail or "")
    return "".join(parts)


def check_spurious_spans(
    roots: list[Any],
    excluded: set[Any],
    expected: list[str],
    blocks: list[tuple[Any, str]],
    md: ParsedMarkdown,
) -> Check:
    """Code spans of the Markdown that no code element of the HTML accounts for.

    A span is accounted for when it contains an HTML code text, lies inside one (or inside a
    <pre>), or is the whole text of some HTML element (a signature made one span). Literal
    backticks in the page's prose that were not escaped make spans that are none of these.
    """
    check = Check()
    codes = [c for c in set(expected) if c]
    pres = [_collapse(text) for _, text in blocks]
    whole: set[str] = set()
    for el in _iter_main(roots, excluded, "*"):
        if (
            isinstance(el.tag, str)
            and el.tag not in ("html", "body")
            and len(el.text_content()) < 600
            and (text := _collapse(_text_without(el, excluded)))
        ):
            whole.add(text)
    for span in md.code_spans:
        text = _collapse(span)
        if not text:
            continue
        check.total += 1
        if (
            text in whole
            or any(c in text for c in codes)
            or any(text in c for c in codes)
            or any(text in p for p in pres)
        ):
            check.ok += 1
        else:
            check.fail("spurious code span", _snip(text, 80))
    return check


# Glued words ---------------------------------------------------------------------------------


def _flatten_html(
    root: Any, excluded: set[Any], code_tags: tuple[str, ...] = INLINE_CODE_TAGS
) -> tuple[str, list[tuple[str, str, int, int]]]:
    """Plain text of ``root`` with block boundaries as newlines, and the code/link spans in it
    (``code_tags``: the elements that may come out as code spans)."""
    buf: list[str] = []
    size = [0]
    spans: list[tuple[str, str, int, int]] = []

    def put(text: str | None) -> None:
        if text:
            buf.append(text)
            size[0] += len(text)

    def visit(el: Any, inside_code: bool) -> None:
        if not isinstance(el.tag, str):
            put(el.tail)
            return
        if el in excluded:
            put(el.tail)
            return
        block = el.tag in BLOCK_TAGS or el.tag == "br"
        if block:
            put("\n")
        start = size[0]
        put(el.text)
        is_code = el.tag in code_tags and not inside_code
        for child in el:
            visit(child, inside_code or is_code or el.tag == "pre")
        end = size[0]
        if block:
            put("\n")
        if is_code:
            spans.append(("code", el.text_content(), start, end))
        elif el.tag == "a" and el.get("href") is not None:
            spans.append(("link", el.text_content(), start, end))
        put(el.tail)

    visit(root, False)
    return "".join(buf), spans


_WORD = re.compile(r"\w")


def _glue_keys_html(roots: list[Any], excluded: set[Any]) -> set[tuple[str, str, str]]:
    keys: set[tuple[str, str, str]] = set()
    for root in roots:
        # <var> may be written as code too (the issue asks for it), so its neighbours count.
        flat, spans = _flatten_html(root, excluded, (*INLINE_CODE_TAGS, "var"))
        for _kind, text, start, end in spans:
            norm = _collapse(text)
            if not norm:
                continue
            if start > 0 and not flat[start - 1].isspace() and not text[:1].isspace():
                keys.add(("L", norm, flat[start - 1]))
            if end < len(flat) and not flat[end].isspace() and not text[-1:].isspace():
                keys.add(("R", norm, flat[end]))
    return keys


def check_glued(html_keys: set[tuple[str, str, str]], md: ParsedMarkdown) -> Check:
    check = Check()
    for block in md.blocks:
        for span in block.spans:
            norm = _collapse(span.text)
            if not norm:
                continue
            check.total += 1
            bad = None
            for side, context in (
                ("L", span.before.replace("\x00", "")[::-1]),
                ("R", span.after.replace("\x00", "")),
            ):
                nearest = context[:1]
                edge = span.text[:1] if side == "L" else span.text[-1:]
                if not nearest or nearest.isspace() or edge.isspace():
                    continue
                if nearest in "*_" and (side, norm, nearest) not in html_keys:
                    # A literal emphasis delimiter beside the span: emphasis that did not parse.
                    bad = ("stray delimiter", side)
                    break
                if _WORD.match(nearest) and (side, norm, nearest) not in html_keys:
                    bad = ("glued", side)
                    break
            if bad:
                kind, side = bad
                around = (span.before[-25:] + "⟦" + span.text + "⟧" + span.after[:25]).replace(
                    "\x00", ""
                )
                check.fail(f"{kind} {span.kind} {side}", _snip(around, 100))
            else:
                check.ok += 1
    return check
