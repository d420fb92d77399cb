"""A page's metadata from its ``<head>``: the site's name and the page's own description.

The write stage uses them for llms.txt and the table of contents (the H1 is the site's name,
a link's description falls back to the meta description). Only the head is parsed, so this
costs little next to the conversion of the body.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import msgspec
from msgspec import Struct

from crawl4ai_llm_docs.models import Page

# The head is near the top; a page without </head> in this much is not worth scanning further.
HEAD_LIMIT = 256_000
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
# Most specific first.
_SITE_NAME_KEYS = ("og:site_name", "application-name", "apple-mobile-web-app-title")
_DESCRIPTION_KEYS = ("description", "og:description", "twitter:description", "dc.description")


class PageMetadata(Struct, frozen=True, kw_only=True):
    site_name: str = ""
    description: str = ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _metas(head: Any) -> dict[str, str]:
    """``name``/``property`` (lower case) -> the first non-empty ``content``."""
    found: dict[str, str] = {}
    for meta in head.iter("meta"):
        content = _one_line(str(meta.get("content") or ""))
        if not content:
            continue
        for attribute in ("property", "name", "itemprop"):
            key = str(meta.get(attribute) or "").strip().lower()
            if key and key not in found:
                found[key] = content
    return found


def read_metadata(html: str) -> PageMetadata:
    """The site name and description ``html`` declares in its head; empty when it has none."""
    match = _HEAD_END.search(html, 0, HEAD_LIMIT)
    head_html = html[: match.end()] if match else html[:HEAD_LIMIT]
    if not head_html.strip():
        return PageMetadata()
    try:
        doc = lxml.html.document_fromstring(head_html + "</html>")
    except (ValueError, lxml.etree.ParserError):
        return PageMetadata()
    metas = _metas(doc)
    site_name = next((metas[key] for key in _SITE_NAME_KEYS if key in metas), "")
    description = next((metas[key] for key in _DESCRIPTION_KEYS if key in metas), "")
    return PageMetadata(site_name=site_name, description=description)


def with_metadata(page: Page, html: str, title_site_name: str = "") -> Page:
    """``page`` with the metadata of the ``html`` it was made from, and the time it was fetched
    (the refresh state's ``record`` sets the same time when it keeps one).

    ``title_site_name`` is the site's name the page's ``<title>`` carried: the site's name
    when the head declares none (``og:site_name`` and the like win)."""
    meta = read_metadata(html)
    return msgspec.structs.replace(
        page,
        site_name=meta.site_name or title_site_name,
        meta_description=meta.description,
        fetched_at=page.fetched_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
