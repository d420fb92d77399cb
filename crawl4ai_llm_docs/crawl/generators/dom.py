"""What every generator profile is made of: the ``Profile`` shape and the lxml helpers the
profiles use to rewrite a page's main container in place."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lxml.etree  # type: ignore[import-untyped]
import lxml.html  # type: ignore[import-untyped]
from lxml.cssselect import CSSSelector  # type: ignore[import-untyped]

_SPACES = re.compile(r"\s+")


_BREAKS = ("br", "div", "p", "li", "dt", "dd")


@dataclass(frozen=True)
class Profile:
    name: str  # "rustdoc", "javadoc", "doxygen"
    main: tuple[str, ...]  # main-content selectors tried before the generic ones
    clean: Callable[[Any], None]  # rewrites one main container in place


@functools.lru_cache(maxsize=256)
def compiled(selector: str) -> Any:
    """``selector`` compiled to XPath once per process, not once per page."""
    return CSSSelector(selector, translator="html")


def select(root: Any, selector: str) -> list[Any]:
    """The elements under ``root`` (itself included) that match ``selector``."""
    return list(compiled(selector)(root))


def remove(container: Any, selector: str) -> None:
    """Drop every element matching ``selector``, keeping the text that follows each."""
    for element in select(container, selector):
        if element.getparent() is not None:
            element.drop_tree()


def text_of(element: Any) -> str:
    """The element's text on one line as shown: a ``<br>`` or a block boundary is a space;
    non-breaking and zero-width spaces normalised."""
    for child in element.iter(_BREAKS):
        if child is not element:
            child.tail = " " + (child.tail or "")
            if child.tag != "br":  # a block starts on a line of its own
                previous = child.getprevious()
                if previous is not None:
                    previous.tail = (previous.tail or "") + " "
                elif (parent := child.getparent()) is not None:
                    parent.text = (parent.text or "") + " "
    text = element.text_content().replace("\xa0", " ").replace("\u200b", "")
    return _SPACES.sub(" ", text).strip()


def replace_with(element: Any, new: Any) -> None:
    """Put ``new`` where ``element`` is, keeping the text that followed ``element``."""
    parent = element.getparent()
    if parent is None:
        return
    new.tail = element.tail
    parent.replace(element, new)


def code_element(text: str) -> Any:
    code = lxml.html.Element("code")
    code.text = text
    return code


def pre_element(text: str, language: str = "") -> Any:
    pre = lxml.html.Element("pre")
    if language:
        pre.set("data-language", language)
    pre.text = text
    return pre


def retag(container: Any, selector: str, tag: str) -> None:
    """Change the tag of every match (layout lists into plain blocks, for one)."""
    for element in select(container, selector):
        element.tag = tag


def unwrap(container: Any, selector: str) -> None:
    """Replace every match by its content."""
    for element in select(container, selector):
        if element.getparent() is not None:
            element.drop_tag()


def flatten_to_code(element: Any) -> str:
    """Replace the content of ``element`` by one ``<code>`` holding its text; return the text."""
    text = text_of(element)
    tail = element.tail
    element.clear()  # also clears attributes and the tail
    element.tail = tail
    if text:
        element.append(code_element(text))
    return text
