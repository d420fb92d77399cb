"""The Markdown side, as markdown-it-py (CommonMark + GFM tables) reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt

# --------------------------------------------------------------------------------------------
# Markdown side

_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# markdown-it refuses file: and data: links (an XSS guard for rendering); here every link is one.
_MD.validateLink = lambda url: True


@dataclass
class Span:
    kind: str  # "code" or "link"
    text: str
    before: str  # the flat text before the span in its block
    after: str


@dataclass
class Block:
    kind: str  # paragraph, heading, td, th, li (the inline block's container)
    flat: str  # plain text, formatting boundaries marked with \x00
    plain: str  # plain text only
    spans: list[Span]
    link_texts: list[str]
    line: int
    styled: list[str]  # texts inside em/strong/code


@dataclass
class MdTable:
    header: list[str]
    rows: list[list[str]]


@dataclass
class ParsedMarkdown:
    tokens: list[Any]
    code_blocks: list[tuple[str, str]]  # (info, content)
    code_spans: list[str]
    blocks: list[Block]
    tables: list[MdTable]
    lists: list[list[str]]  # plain text of each item (all its blocks), per list


def _walk_inline(children: list[Any]) -> tuple[str, str, list[Span], list[str], list[str]]:
    flat: list[str] = []
    plain: list[str] = []
    spans: list[tuple[str, int, int, int, int]] = []  # kind, flat start, flat end, plain start, end
    link_stack: list[tuple[int, int]] = []
    style_stack: list[int] = []
    styled: list[str] = []
    links: list[str] = []
    for tok in children:
        t = tok.type
        if t == "text":
            flat.append(tok.content)
            plain.append(tok.content)
        elif t == "code_inline":
            start, pstart = len("".join(flat)), len("".join(plain))
            flat.append(tok.content)
            plain.append(tok.content)
            spans.append(
                ("code", start, start + len(tok.content), pstart, pstart + len(tok.content))
            )
            styled.append(tok.content)
        elif t in ("softbreak", "hardbreak"):
            flat.append("\n")
            plain.append("\n")
        elif t == "image":
            pass
        elif t == "link_open":
            link_stack.append((len("".join(flat)), len("".join(plain))))
        elif t == "link_close" and link_stack:
            start, pstart = link_stack.pop()
            end, pend = len("".join(flat)), len("".join(plain))
            spans.append(("link", start, end, pstart, pend))
            links.append("".join(plain)[pstart:pend])
        elif t in ("em_open", "strong_open", "s_open"):
            flat.append("\x00")
            style_stack.append(len("".join(plain)))
        elif t in ("em_close", "strong_close", "s_close"):
            flat.append("\x00")
            if style_stack:
                styled.append("".join(plain)[style_stack.pop() :])
    flat_s, plain_s = "".join(flat), "".join(plain)
    out = []
    for kind, start, end, pstart, pend in spans:
        out.append(Span(kind, plain_s[pstart:pend], flat_s[:start], flat_s[end:]))
    return flat_s, plain_s, out, links, styled


def parse_markdown(markdown: str) -> ParsedMarkdown:
    tokens = _MD.parse(markdown)
    code_blocks: list[tuple[str, str]] = []
    code_spans: list[str] = []
    blocks: list[Block] = []
    tables: list[MdTable] = []
    lists: list[list[str]] = []
    container: list[str] = []
    table: MdTable | None = None
    row: list[str] | None = None
    in_head = False
    list_stack: list[list[str]] = []
    for _i, tok in enumerate(tokens):
        t = tok.type
        if t in ("fence", "code_block"):
            code_blocks.append((tok.info.strip() if t == "fence" else "", tok.content))
            if list_stack and list_stack[-1]:  # an item's text runs on through its blocks
                list_stack[-1][-1] += " " + tok.content
        elif t.endswith("_open") and t != "inline":
            container.append(tok.tag)
            if t == "table_open":
                table = MdTable([], [])
            elif t == "thead_open":
                in_head = True
            elif t == "thead_close":
                in_head = False
            elif t == "tr_open":
                row = []
            elif t == "bullet_list_open" or t == "ordered_list_open":
                list_stack.append([])
            elif t == "list_item_open" and list_stack:
                list_stack[-1].append("")
        elif t.endswith("_close"):
            if container:
                container.pop()
            if t == "tr_close" and table is not None and row is not None:
                if in_head:
                    table.header = row
                else:
                    table.rows.append(row)
                row = None
            elif t == "thead_close":
                in_head = False
            elif t == "table_close" and table is not None:
                tables.append(table)
                table = None
            elif t in ("bullet_list_close", "ordered_list_close") and list_stack:
                items = list_stack.pop()
                lists.append(items)
        elif t == "inline":
            flat, plain, spans, links, styled = _walk_inline(tok.children or [])
            code_spans.extend(s.text for s in spans if s.kind == "code")
            kind = container[-1] if container else "p"
            if "li" in container:
                kind = "li" if kind == "p" else kind
            blocks.append(Block(kind, flat, plain, spans, links, (tok.map or [0])[0], styled))
            if row is not None and kind in ("td", "th"):
                row.append(plain)
            if list_stack and list_stack[-1]:
                list_stack[-1][-1] += " " + plain
    return ParsedMarkdown(tokens, code_blocks, code_spans, blocks, tables, lists)
