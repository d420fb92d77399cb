"""Names in the docs index: docs sets (slugs), page paths, section anchors and the ids built
from them (``SET/PATH`` for a page, ``SET/PATH#anchor`` for a section, ``docs://SET/PATH``
for a page's MCP resource).

A page's PATH is its URL without the scheme (``docs.python.org/3/library/csv.html``): stable
from run to run whatever else the set holds, and unique across the hosts of one set.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

from crawl4ai_llm_docs.config_schema import DOCS_SET_PATTERN

RESOURCE_SCHEME = "docs://"
MAX_SET_LENGTH = 64
# Words that end most documentation sites' names and tell sets apart not at all.
_GENERIC_TAIL = re.compile(
    r"(?:[\s:|\-\u2013\u2014]*\b(?:documentation|docs|manual|reference|guide|handbook)\b)+\s*$",
    re.IGNORECASE,
)
_SET_RE = re.compile(DOCS_SET_PATTERN)
_SLUG_RUNS = re.compile(r"[^a-z0-9.]+")


def is_docs_set(name: str) -> bool:
    return bool(_SET_RE.match(name))


def docs_set_slug(name: str, *, fallback: str = "docs") -> str:
    """The docs set a site's name gives: "Python 3.11.2 documentation" -> "python-3.11.2"."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).strip()
    text = _GENERIC_TAIL.sub("", text) or text
    slug = _SLUG_RUNS.sub("-", text.lower())
    slug = re.sub(r"[-.]{2,}", "-", slug).strip("-.")[:MAX_SET_LENGTH].strip("-.")
    if is_docs_set(slug):
        return slug
    return fallback if is_docs_set(fallback) else "docs"


def page_path(url: str) -> str:
    """``https://h/a/b.html?x=1`` -> ``h/a/b.html?x=1``: the URL without scheme or fragment."""
    parts = urlsplit(url)
    path = parts.netloc.lower() + (parts.path or "/")
    return f"{path}?{parts.query}" if parts.query else path


_PAGE_EXTENSION = re.compile(r"\.(?:html?|xhtml|shtml|php|aspx?|jsp|md|txt)$", re.IGNORECASE)


def url_words(url: str) -> str:
    """The words of a URL's path (``/library/tempfile.html`` -> "library tempfile"): slugs
    often name what a page is about in words its title does not use."""
    path = _PAGE_EXTENSION.sub("", unquote(urlsplit(url).path))
    return " ".join(re.findall(r"[^\W_]+", path))


def page_id(docs_set: str, path: str) -> str:
    return f"{docs_set}/{path}"


def section_id(docs_set: str, path: str, anchor: str) -> str:
    return f"{docs_set}/{path}#{anchor}" if anchor else f"{docs_set}/{path}"


def resource_uri(docs_set: str, path: str) -> str:
    return f"{RESOURCE_SCHEME}{docs_set}/{path}"


def anchor_slug(heading: str) -> str:
    """A heading's anchor as GitHub writes it: lower case, punctuation dropped, spaces to '-'."""
    kept = [c for c in heading.strip().lower() if c.isalnum() or c in " -_"]
    return re.sub(r"\s+", "-", "".join(kept)).strip("-") or "section"


class Anchors:
    """Anchors unique within one page: a repeated heading gets ``-2``, ``-3`` ..."""

    def __init__(self) -> None:
        self._used: set[str] = {""}

    def unique(self, anchor: str) -> str:
        candidate, number = anchor, 1
        while candidate in self._used:
            number += 1
            candidate = f"{anchor}-{number}"
        self._used.add(candidate)
        return candidate
