"""What the crawl stage asks of the refresh state: send a conditional request, or none at all?

A run started from root URLs needs each page's links as well as its Markdown: a stored state
is only good enough for it when an earlier discovery run recorded the page's links
(``PageState.links``), which the crawl stage then replays to discovery instead of the body a
304 does not have. A page whose sitemap ``lastmod`` equals the stored one is reused without
a request (a site that edits a page without moving its lastmod is only corrected by
``--refresh full``).

A state whose Markdown another version of the extraction made (``PageState.extraction``) is
never reused: the page is fetched in full and converted again, once.
"""

from __future__ import annotations

from crawl4ai_llm_docs.cache.page_state import EXTRACTION_VERSION, PageState, PageStateStore
from crawl4ai_llm_docs.fetch.http import Validators
from crawl4ai_llm_docs.models import CrawlMode, Page, UrlEntry


def validators_for(
    store: PageStateStore,
    previous: PageState | None,
    *,
    discovering: bool,
    prefer_markdown: str = "never",
) -> Validators | None:
    """The validators to send, or None for a plain request."""
    if previous is None or not store.conditional or not current(previous):
        return None
    if not previous.complete(discovering=discovering, prefer_markdown=prefer_markdown):
        return None  # a 304 could not stand for the page: fetch it in full
    if previous.etag is None and previous.last_modified is None:
        return None
    return Validators(etag=previous.etag, last_modified=previous.last_modified)


def unchanged_by_lastmod(
    store: PageStateStore,
    entry: UrlEntry,
    previous: PageState | None,
    *,
    discovering: bool,
    prefer_markdown: str = "never",
) -> bool:
    """True when the sitemap says the page did not change since it was stored."""
    return (
        previous is not None
        and store.conditional
        and bool(entry.lastmod)
        and previous.lastmod == entry.lastmod
        and previous.complete(discovering=discovering, prefer_markdown=prefer_markdown)
        and current(previous)
    )


def current(previous: PageState) -> bool:
    """Whether this version of the extraction made the stored Markdown."""
    return previous.extraction == EXTRACTION_VERSION


def stored_page(
    entry: UrlEntry,
    previous: PageState,
    *,
    final_url: str,
    status: int | None,
    elapsed: float,
    mode: CrawlMode,
) -> Page:
    """The page a 304 (or a lastmod match) stands for, before the store fills in its text."""
    return Page(
        index=entry.index,
        url=entry.url,
        final_url=final_url,
        title=previous.title,
        markdown="",
        status=status,
        error=None,
        elapsed=elapsed,
        bytes=0,
        mode=mode,
    )
