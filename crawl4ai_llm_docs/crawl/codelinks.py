"""Links in and around code, made safe for Markdown before and after conversion.

API reference generators (rustdoc, Javadoc, Doxygen) link every type name inside their code:
``<pre>Array(<a href="struct.ExprArray.html">ExprArray</a>)</pre>``. The Markdown writer turns
such a link into ``ExprArray[](url)`` inside the code, which corrupts it. Here:

- ``<pre>`` and ``<code>`` get their text only, as a browser shows it: links keep their text
  and lose their target, emphasis goes (no ``_x_`` inside code), a ``<br>`` or a nested block
  is a line break in a block and a space inline;
- an inline ``<code>`` that is exactly one link becomes ``<a><code>text</code></a>``, which the
  Markdown writer renders as ``[`text`](url)``;
- ``javascript:`` links lose their target everywhere; links with no text and images with no
  alternative text (which would render as ``[](url)`` or ``![](src)``) go;
- zero-width spaces, which Javadoc puts between a method name and its parameters, leave code.

:func:`scrub_markdown` is the last guard on the Markdown itself: outside code, no ``[](`` and no
``javascript:`` link survives, whatever HTML produced it.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html  # type: ignore[import-untyped]

_ZERO_WIDTH = ("\u200b", "\u2060", "\ufeff")
_JS_HREF = re.compile(r"^\s*(?:javascript|vbscript):", re.IGNORECASE)
_FENCE = re.compile(r"^\s*(```|~~~)")
# A Markdown link target: ( url "optional title" ), with html2text's backslash escapes.
_TARGET_REST = r"(?:\\.|[^()\\\n]|\((?:\\.|[^()\\\n])*\))*\)"
_EMPTY_OPEN = re.compile(r"(?<!\\)!?\[\s*\]\(")  # not an escaped "\\["
_TARGET_BODY = re.compile(_TARGET_REST)
_REAL_TARGET = re.compile(r"\s*<?\s*(?:[a-zA-Z][\w+.-]*:|#|/|\.)")
_CODE_SPAN = re.compile(r"(`+[^`]*?`+)")
_JS_LINK = re.compile(
    r"(!?)\[((?:\\.|[^\[\]\\\n]|\[[^\[\]\n]*\])*)\]\(\s*<?\s*(?:javascript|vbscript):"
    + _TARGET_REST,
    re.IGNORECASE,
)


def fix_links(container: Any) -> None:
    """Rewrite the links and code of ``container`` in place (see the module docstring)."""
    for anchor in container.iter("a"):
        href = anchor.get("href")
        if href is not None and _JS_HREF.match(href):
            del anchor.attrib["href"]
    for image in list(container.iter("img")):
        if not (image.get("alt") or "").strip():
            _drop(image)
    for code in [c for c in container.iter("code") if c.find(".//pre") is not None]:
        code.drop_tag()  # <code><pre>…</pre></code>: the block inside is the code
    for pre in list(container.iter("pre")):
        _to_text(pre, code_text(pre, block=True))  # its <code> and links go with its children
    for code in list(container.iter("code")):  # what is left is inline code
        if code.getparent() is not None and not _single_link(code):
            _inline_text(code, code_text(code, block=False))
    for anchor in list(container.iter("a")):
        if anchor.getparent() is None:
            continue
        has_image = any(img.get("alt") for img in anchor.iter("img"))
        if not has_image and not anchor.text_content().strip():
            _drop(anchor)
        elif not anchor.get("href"):
            anchor.drop_tag()


_BLOCKS = frozenset(("div", "p", "li", "tr", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6"))


def code_text(element: Any, *, block: bool) -> str:
    """The text of code as a browser shows it: a line break for ``<br>`` (and, in a block,
    after each nested block element), no zero-width spaces, plain spaces."""
    for child in element.iter():
        if child is element or not isinstance(child.tag, str):
            continue
        ends_line = child.tag == "br" or (block and child.tag in _BLOCKS)
        if ends_line and not (child.tail or "").startswith("\n"):
            child.tail = "\n" + (child.tail or "")
        if block and child.tag in _BLOCKS:  # a block also starts on a line of its own
            _break_before(child)
    text = element.text_content().replace("\xa0", " ")
    return _without_zero_width(text)


def _break_before(element: Any) -> None:
    previous = element.getprevious()
    if previous is not None:
        if previous.tail and not previous.tail.endswith("\n"):
            previous.tail += "\n"
        elif not previous.tail and previous.tag not in _BLOCKS and previous.tag != "br":
            previous.tail = "\n"
    else:
        parent = element.getparent()
        if parent is not None and parent.text and not parent.text.endswith("\n"):
            parent.text += "\n"


def _inline_text(code: Any, text: str) -> None:
    """Inline code shows its whitespace collapsed; space at its edges goes outside it."""
    if text[:1].isspace():
        previous = code.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + " "
        elif (parent := code.getparent()) is not None:
            parent.text = (parent.text or "") + " "
    if text[-1:].isspace():
        code.tail = " " + (code.tail or "")
    # The converter fences a span holding backticks with a longer run itself.
    _to_text(code, " ".join(text.split()))


def _to_text(element: Any, text: str) -> None:
    """Keep the element and its attributes, replace its content by ``text``."""
    for child in list(element):
        element.remove(child)  # the children's tails are part of ``text`` already
    element.text = text


def _single_link(code: Any) -> bool:
    """``<code><a href=u>name</a></code>`` becomes ``<a href=u><code>name</code></a>``."""
    children = list(code)
    if len(children) != 1 or children[0].tag != "a" or (code.text or "").strip():
        return False
    anchor = children[0]
    parent = code.getparent()
    if (anchor.tail or "").strip() or not anchor.get("href") or parent is None:
        return False
    if parent.tag == "a" or any(a.tag == "a" for a in code.iterancestors()):
        return False
    link = lxml.html.Element("a", {"href": anchor.get("href")})
    if title := anchor.get("title"):
        link.set("title", title)
    link.tail = code.tail
    code.tail = None
    text = " ".join(code_text(anchor, block=False).split())
    parent.replace(code, link)
    _to_text(code, text)
    link.append(code)
    return True


def _without_zero_width(text: str) -> str:
    for char in _ZERO_WIDTH:
        if char in text:
            text = text.replace(char, "")
    return text


def _drop(element: Any) -> None:
    if element.getparent() is not None:
        element.drop_tree()  # keeps the tail text


def scrub_markdown(markdown: str) -> str:
    """No ``[](…)`` link and no ``javascript:`` link outside code.

    A real empty link (``[](http://…)``, ``![](…)``) goes, a ``javascript:`` link keeps its
    text; text that only looks like one (C++'s ``operator[](int)``) gets its brackets escaped.
    Fenced code and inline code spans are left alone.
    """
    if "[" not in markdown:
        return markdown
    out: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and "](" in line:
            # One capturing group: [text, code span, text, code span, ..., text].
            parts = _CODE_SPAN.split(line)
            line = "".join(_scrub_text(p) if i % 2 == 0 else p for i, p in enumerate(parts))
        out.append(line)
    return "\n".join(out)


def _scrub_text(text: str) -> str:
    if "](" not in text:
        return text
    text = _JS_LINK.sub(lambda m: "" if m.group(1) else m.group(2), text)
    pieces: list[str] = []
    position = 0
    for found in _EMPTY_OPEN.finditer(text):
        if found.start() < position:
            continue
        pieces.append(text[position : found.start()])
        target = _TARGET_BODY.match(text, found.end())
        image = found.group(0).startswith("!")
        if target and (image or _REAL_TARGET.match(text, found.end())):
            position = target.end()  # a real link with nothing to click: drop it
        else:
            pieces.append(found.group(0).replace("[]", "\\[\\]"))
            position = found.end()
    pieces.append(text[position:])
    return "".join(pieces)
