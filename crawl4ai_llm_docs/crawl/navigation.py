"""What navigation looks like inside a page's content, by structure first: links marked
``rel=prev|next|up|…`` or with an ``accesskey``; blocks made of nothing but navigation links
and their labels ("Next: …, Up: …", ``[ < ] [ > ] [Up]``); lists of links to the page's own
anchors (an in-page table of contents). The words of links (prev, next, up, home, top, index,
contents) count only inside such link-only blocks, never in prose.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urldefrag, urljoin

BLOCK_TAGS = frozenset(
    (
        "p",
        "div",
        "section",
        "article",
        "li",
        "dd",
        "dt",
        "td",
        "th",
        "tr",
        "table",
        "pre",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "header",
        "center",
        "address",
        "ul",
        "ol",
        "dl",
        "body",
        "main",
        "figure",
        "details",
    )
)
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_LABEL_MAX_CHARS = 60
_NAV_RELS = frozenset(
    (
        "prev",
        "previous",
        "next",
        "up",
        "start",
        "first",
        "last",
        "top",
        "home",
        "index",
        "contents",
        "toc",
        "parent",
        "chapter",
        "section",
        "subsection",
    )
)


# Words of navigation: a supporting signal only (see module docstring).
_NAV_WORDS = frozenset(
    (
        "prev",
        "previous",
        "next",
        "up",
        "home",
        "top",
        "index",
        "contents",
        "table of contents",
        "toc",
        "back",
        "forward",
        "about",
        "previous page",
        "next page",
        "previous topic",
        "next topic",
        "go to top",
        "back to top",
        "top of page",
    )
)


_LABEL_WORDS = re.compile(
    r"\b(?:(?:previous|next) (?:page|topic|chapter|section)|next|prev(?:ious)?|up|home|top|"
    r"index|contents|back|forward|chapter|section|page)\b\s*:?",
    re.IGNORECASE,
)


_NUMBERS = re.compile(r"\b[\dA-Z]?[\d.]*\d\.?(?=\s|$)")


_NO_WORDS = re.compile(r"^[\W_]*$")


_NAV_BLOCKS = frozenset(("table", "tr", "tbody", "div", "p", "ul", "ol", "center", "span"))


_CONTENTS_LABEL = re.compile(
    r"^(?:table of contents|contents|page contents|on this page|index|in this (?:article|page|"
    r"section|chapter)|sections|local contents|topics)\s*:?$",
    re.IGNORECASE,
)


def words(text: str) -> int:
    return len(text.split())


def one_line(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


def drop(element: Any) -> None:
    """Remove ``element`` and its content; the text after it stays."""
    if element.getparent() is not None:
        element.drop_tree()


def marked_nav_link(anchor: Any) -> bool:
    rels = set((anchor.get("rel") or "").lower().split())
    return bool(rels & _NAV_RELS or anchor.get("accesskey"))


def is_nav_link(anchor: Any) -> bool:
    return marked_nav_link(anchor) or nav_text(link_text(anchor))


def nav_text(text: str) -> bool:
    text = text.strip().strip("[]()").strip().lower()
    return text in _NAV_WORDS or (bool(text) and _NO_WORDS.match(text) is not None)


def link_text(anchor: Any) -> str:
    text = one_line((anchor.text or "") if not len(anchor) else anchor.text_content())
    if not text:  # an image link: its alternative text ("Prev", "Up")
        text = " ".join(one_line(img.get("alt") or "") for img in anchor.iter("img"))
    return text


def text_outside_links(block: Any) -> str:
    parts: list[str] = []

    def walk(element: Any) -> None:
        parts.append(element.text or "")
        for child in element:
            if isinstance(child.tag, str) and child.tag != "a":
                walk(child)
            parts.append(child.tail or "")

    if block.tag != "a":
        walk(block)
    return one_line(" ".join(parts))


def only_labels(text: str, *, numbers: bool = False) -> bool:
    """Text outside links made of navigation labels and punctuation only ("Next: , Up:");
    with ``numbers``, section numbers too ("1.2")."""
    rest = _LABEL_WORDS.sub(" ", text)
    if numbers:
        rest = _NUMBERS.sub(" ", rest)
    return _NO_WORDS.match(rest.replace(" ", "")) is not None


def navigation_only(block: Any) -> bool | None:
    """True: two or more links, all navigation, nothing else but labels (a navigation bar).
    None: nothing but navigation yet too few links to tell. False: anything else."""
    if block.find(".//pre") is not None:
        return False
    links = list(block.iter("a"))
    if not all(is_nav_link(a) for a in links):
        return False
    if not only_labels(text_outside_links(block)):
        return False
    return True if len(links) >= 2 else None


def remove_navigation_blocks(container: Any, in_code: set[Any]) -> None:
    """From each navigation link up: the largest block made only of navigation goes."""
    for anchor in list(container.iter("a")):
        if anchor.getparent() is None or anchor in in_code or not is_nav_link(anchor):
            continue
        largest = None
        for ancestor in anchor.iterancestors():
            if ancestor is container or ancestor.tag in ("body", "html"):
                break
            if ancestor.tag not in _NAV_BLOCKS:
                continue
            verdict = navigation_only(ancestor)
            if verdict is False:
                break
            if verdict:
                largest = ancestor
        if largest is not None:
            drop(largest)


def remove_local_contents(container: Any, page_url: str) -> None:
    """A list of links to this page's own anchors goes, under a "Contents" label (label too)
    or first thing under the page's heading (DocBook's section contents).

    Elsewhere and unlabelled such a list is content ("See also" links to members of a page)."""
    page = urldefrag(page_url)[0]
    for listing in list(container.iter("ul", "ol", "dl")):
        if listing.getparent() is None or any(
            a.tag in ("ul", "ol", "dl") for a in listing.iterancestors()
        ):
            continue
        links = list(listing.iter("a"))
        if len(links) < 2 or not all(_in_page(a.get("href") or "", page) for a in links):
            continue
        if not only_labels(text_outside_links(listing), numbers=True):
            continue
        label = _label_of(listing)
        if label is None and not _at_top(listing, container):
            continue
        if label is not None:
            drop(label)
        parent = listing.getparent()
        drop(listing)
        if parent is not None and parent.getparent() is not None and parent is not container:
            text = one_line(parent.text_content())
            if not text or _CONTENTS_LABEL.match(text):
                drop(parent)


def _label_of(listing: Any) -> Any:
    """The "Contents" / "Table of Contents" / "On this page" label right before ``listing``
    (a heading, a caption paragraph, a summary), or None."""
    label = listing.getprevious()
    while label is not None and not isinstance(label.tag, str):
        label = label.getprevious()
    if label is None or len(label.text_content()) > _LABEL_MAX_CHARS:
        return None
    return label if _CONTENTS_LABEL.match(one_line(label.text_content())) else None


def _at_top(listing: Any, container: Any) -> bool:
    """Whether nothing but headings comes before ``listing`` in the content."""
    node = listing
    while node is not None and node is not container:
        for sibling in node.itersiblings(preceding=True):
            if (sibling.tail or "").strip():
                return False
            if isinstance(sibling.tag, str) and not _only_headings(sibling):
                return False
        parent = node.getparent()
        if parent is not None and (parent.text or "").strip():
            return False
        node = parent
    return True


def _only_headings(element: Any) -> bool:
    """Whether all the text of ``element`` is inside headings (a title block)."""
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        in_heading = node.tag in HEADINGS or any(a.tag in HEADINGS for a in node.iterancestors())
        if (node.text or "").strip() and not in_heading:
            return False
        owner = node.getparent()
        tail = node is not element and (node.tail or "").strip() and owner is not None
        if tail and not (
            owner.tag in HEADINGS or any(a.tag in HEADINGS for a in owner.iterancestors())
        ):
            return False
    return True


def _in_page(href: str, page: str) -> bool:
    """Whether ``href`` is a link to an anchor of the page at ``page`` itself."""
    href = href.strip()
    if href.startswith("#"):
        return len(href) > 1
    if "#" not in href or not page:
        return False
    target, fragment = urldefrag(urljoin(page, href))
    return bool(fragment) and target == page
