"""What the last run learnt about each URL, so a re-run only does the work that changed.

Layout: ``<cache_dir>/pages/ab/abcdef....json``, one msgspec JSON file per URL, named by the
SHA-256 of the URL. It holds the validators the server sent (ETag, Last-Modified), the sitemap
``lastmod`` when discovery saw one, the SHA-256 of the extracted Markdown, the Markdown itself
(a 304 reuses it: no download, no conversion, and its chunks hit the result cache, so no LLM
request either) and when the page was last fetched and last changed. A page a discovery run
fetched also keeps what discovery read from it (links, noindex, canonical), so a 304 in the
next discovery run is replayed to discovery as if the page had been read again; and a page
whose sitemap ``lastmod`` is the one stored is reused without any request at all.

``<cache_dir>/outputs/<sha of the output path>.json`` lists the URLs of the last run that wrote
that output, so the next run can say which pages were removed.

Every file is written atomically (``cache.write_atomic``): a ``kill -9`` mid-refresh leaves
each entry old or new, never torn, and the next run still works from it. A server that answers
304 for a page that did change cannot be detected; ``--refresh full`` corrects it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import trio

from crawl4ai_llm_docs.files import mkdir_private, write_atomic
from crawl4ai_llm_docs.models import Freshness, Page, PageLinks, SourceFormat

# The version of the code that turns a page into Markdown (crawl/extract.py and the modules it
# drives). A page stored by another version is fetched and converted again, once: a 304 must
# not stand for Markdown the old code made. Bump it with any change to what a page gives.
# 1: html-to-markdown, generic chrome removal, declared languages (issue 23).
EXTRACTION_VERSION = 1


class PageState(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    final_url: str
    title: str
    markdown: str
    content_hash: str
    fetched_at: str  # ISO 8601, UTC
    changed_at: str  # when the extracted text last differed from the run before
    etag: str | None = None
    last_modified: str | None = None
    lastmod: str | None = None  # from a sitemap, when discovery saw one
    site_name: str = ""  # the page's head metadata, for a 304 that brings no HTML
    meta_description: str = ""
    # What discovery read from the page (None: not fetched by a discovery run): a 304 or a
    # matching lastmod replays it, so a discovery re-run needs no body to follow links.
    links: PageLinks | None = None
    # EXTRACTION_VERSION of the code that made ``markdown``; 0 in states from before versions.
    extraction: int = 0
    # Markdown first: where the stored Markdown came from, and the crawl.prefer_markdown it
    # was made under (states written before it existed: HTML, never looked for Markdown).
    source_format: SourceFormat = "html"
    prefer_markdown: str = "never"

    def complete(self, *, discovering: bool, prefer_markdown: str = "never") -> bool:
        """Whether the state can stand for the page without reading it again (made under
        another ``prefer_markdown``, it answers another question)."""
        return (
            bool(self.markdown.strip())
            and (not discovering or self.links is not None)
            and self.prefer_markdown == prefer_markdown
        )


class OutputManifest(msgspec.Struct, frozen=True, kw_only=True):
    output: str
    urls: list[str]
    written_at: str


_state_decoder = msgspec.json.Decoder(PageState)
_manifest_decoder = msgspec.json.Decoder(OutputManifest)
_encoder = msgspec.json.Encoder()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def content_hash(markdown: str) -> str:
    return hashlib.sha256(markdown.encode("utf-8", errors="surrogatepass")).hexdigest()


def _name(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


class PageStateStore:
    """Per-URL refresh state; ``PageStateStore(None)`` is disabled (``--no-cache``).

    ``conditional`` is False for ``--refresh full``: stored validators are not sent and a
    stored page is never reused, but what this run fetches is still recorded, so the run
    after it can be conditional again.
    """

    def __init__(self, directory: Path | None, *, conditional: bool = True) -> None:
        self.directory = directory
        self.conditional = conditional and directory is not None

    @classmethod
    def disabled(cls) -> PageStateStore:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def _path(self, url: str) -> Path:
        assert self.directory is not None
        key = _name(url)
        return self.directory / "pages" / key[:2] / f"{key}.json"

    def _read(self, url: str) -> PageState | None:
        path = self._path(url)
        try:
            state = _state_decoder.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return None  # missing or unreadable: the page is simply new again
        return state if state.url == url else None

    async def get(self, url: str) -> PageState | None:
        """The stored state of ``url`` (whatever the mode: it tells new from changed)."""
        if self.directory is None:
            return None
        return await trio.to_thread.run_sync(self._read, url)

    def _write(self, state: PageState) -> None:
        path = self._path(state.url)
        mkdir_private(path.parent)
        write_atomic(path, _encoder.encode(state))

    async def put(self, state: PageState) -> None:
        """Record a fetched page; a failed write costs only the next run's shortcut."""
        if self.directory is None:
            return
        with contextlib.suppress(OSError):
            await trio.to_thread.run_sync(self._write, state)

    async def record(
        self,
        page: Page,
        previous: PageState | None,
        *,
        etag: str | None,
        last_modified: str | None,
        lastmod: str | None = None,
        links: PageLinks | None = None,
        prefer_markdown: str = "never",
    ) -> Page:
        """Store a freshly converted page; returns it marked new, changed or unchanged.

        ``lastmod`` is this run's sitemap lastmod of the page (None: none known, so none is
        kept: a stale one must not vouch for the page later); ``links`` what discovery read;
        ``prefer_markdown`` the setting the page was fetched under.
        """
        if self.directory is None:
            return page
        digest = content_hash(page.markdown)
        fetched_at = now_iso()
        freshness: Freshness
        if previous is None:
            freshness, changed_at = "new", fetched_at
        elif previous.content_hash == digest:
            freshness, changed_at = "unchanged", previous.changed_at
        else:
            freshness, changed_at = "changed", fetched_at
        await self.put(
            PageState(
                url=page.url,
                final_url=page.final_url,
                title=page.title,
                markdown=page.markdown,
                content_hash=digest,
                fetched_at=fetched_at,
                changed_at=changed_at,
                etag=etag,
                last_modified=last_modified,
                lastmod=lastmod,
                links=links,
                site_name=page.site_name,
                meta_description=page.meta_description,
                extraction=EXTRACTION_VERSION,
                source_format=page.source_format,
                prefer_markdown=prefer_markdown,
            )
        )
        return msgspec.structs.replace(
            page, freshness=freshness, fetched_at=fetched_at, changed_at=changed_at
        )

    async def reuse(
        self,
        page: Page,
        previous: PageState,
        *,
        lastmod: str | None = None,
        fetched: bool = True,
    ) -> Page:
        """A 304 (or a matching sitemap lastmod): the stored Markdown stands for the page.

        Only the fetch time moves on (not when ``fetched`` is False: no request was sent),
        and the sitemap ``lastmod`` when this run knows one.
        """
        fetched_at = now_iso() if fetched else previous.fetched_at
        stored = msgspec.structs.replace(
            previous, fetched_at=fetched_at, lastmod=lastmod or previous.lastmod
        )
        await self.put(stored)
        return msgspec.structs.replace(
            page,
            title=previous.title,
            markdown=previous.markdown,
            site_name=previous.site_name,
            meta_description=previous.meta_description,
            source_format=previous.source_format,
            freshness="unchanged",
            fetched_at=fetched_at,
            changed_at=previous.changed_at,
        )

    # ------------------------------------------------------------ per-output manifest

    def _manifest_path(self, output: Path) -> Path:
        assert self.directory is not None
        return self.directory / "outputs" / f"{_name(str(output.resolve()))}.json"

    def _removed(self, output: Path, urls: frozenset[str]) -> list[str]:
        try:
            manifest = _manifest_decoder.decode(self._manifest_path(output).read_bytes())
        except (OSError, msgspec.DecodeError):
            return []
        return [url for url in manifest.urls if url not in urls]

    async def removed_since_last_run(self, output: Path, urls: Iterable[str]) -> list[str]:
        """URLs the last run of ``output`` had that this one does not, in that run's order."""
        if self.directory is None:
            return []
        return await trio.to_thread.run_sync(self._removed, output, frozenset(urls))

    def _write_manifest(self, output: Path, urls: list[str]) -> None:
        path = self._manifest_path(output)
        mkdir_private(path.parent)
        manifest = OutputManifest(output=str(output.resolve()), urls=urls, written_at=now_iso())
        write_atomic(path, _encoder.encode(manifest))

    async def record_output(self, output: Path, urls: Iterable[str]) -> None:
        """Remember this run's URLs for ``output``; called once the output is written."""
        if self.directory is None:
            return
        with contextlib.suppress(OSError):
            await trio.to_thread.run_sync(self._write_manifest, output, list(urls))
