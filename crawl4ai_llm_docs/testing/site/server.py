"""A local documentation site for tests, benchmarks and trying the tool offline.

It serves generated Sphinx-like pages (``/docs/page-000.html`` ...) or a directory of HTML
files, plus fault-injecting paths under ``/special/``: a slow page, 404/500, redirects and a
redirect loop, a JavaScript-only page, a huge page, PDF/binary content, invalid UTF-8, a
Latin-1 page, and pages answering 429/503 with Retry-After before they work. Generated pages
can offer their own Markdown (``markdown.py``), and the whole site can be private, behind a
header or a cookie, logging the headers of every request (``private.py``).

    python -m crawl4ai_llm_docs.testing.site --port 0 --pages 28
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import mimetypes
import os
import posixpath
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

import trio

from crawl4ai_llm_docs.testing.site.discovery import file_response, sitemap_response
from crawl4ai_llm_docs.testing.site.handle import SiteConfig, SiteHandle
from crawl4ai_llm_docs.testing.site.http import (
    EPOCH,
    HTML,
    Receive,
    Scope,
    Send,
    html_answer,
    respond,
    revised,
    stream_huge,
)
from crawl4ai_llm_docs.testing.site.markdown import (
    MARKDOWN,
    generated_markdown,
    markdown_page,
    offered_in_page,
    prefers_markdown,
)
from crawl4ai_llm_docs.testing.site.pages import (
    JS_SHELL,
    JS_TEXT,
    LOCAL_STORAGE_PAGE,
    NAV_MARKERS,
    generated_page,
    generated_pages,
    js_content,
    page_index,
    page_path,
    page_title,
)
from crawl4ai_llm_docs.testing.site.private import LoggedRequest, refusal, request_headers

# The generated pages are part of this module's interface: tests import them from here.
__all__ = [
    "JS_TEXT",
    "NAV_MARKERS",
    "SPECIAL_PATHS",
    "SiteConfig",
    "SiteHandle",
    "generated_page",
    "generated_pages",
    "page_path",
    "page_title",
    "run_site_in_thread",
    "serve_site",
]

SPECIAL_PATHS = {
    "slow": "/special/slow.html",
    "js_only": "/special/js-only.html",
    "huge": "/special/huge.html",
    "pdf": "/special/file.pdf",
    "binary": "/special/binary.bin",
    "invalid_utf8": "/special/invalid-utf8.html",
    "latin1": "/special/latin1.html",
    "redirect": "/special/redirect.html",
    "loop": "/special/loop-a.html",
    "rate_limited": "/special/rate-limited.html",
    "flaky": "/special/flaky.html",
    "error": "/special/error.html",
    "missing": "/special/missing.html",
    "local_storage": "/special/local-storage.html",
}


_STATIC: dict[str, tuple[int, bytes, str, list[tuple[bytes, bytes]]]] = {
    SPECIAL_PATHS["js_only"]: (200, JS_SHELL.encode(), HTML, []),
    SPECIAL_PATHS["local_storage"]: (200, LOCAL_STORAGE_PAGE.encode(), HTML, []),
    "/special/js-content.json": (200, js_content(), "application/json", []),
    SPECIAL_PATHS["pdf"]: (
        200,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n",
        "application/pdf",
        [],
    ),
    SPECIAL_PATHS["binary"]: (200, bytes(range(256)) * 16, "application/octet-stream", []),
    SPECIAL_PATHS["invalid_utf8"]: (
        200,
        b"<html><head><title>Broken \xff encoding</title></head><body><main><h1>Invalid UTF-8</h1>"
        b"<p>Bytes \xc3\x28 and \xff here, then valid caf\xc3\xa9.</p></main></body></html>",
        HTML,
        [],
    ),
    SPECIAL_PATHS["latin1"]: (
        200,
        "<html><head><title>Latin-1</title></head><body><main><h1>Caf\xe9 cr\xe8me</h1>"
        "<p>D\xe9j\xe0 vu.</p></main></body></html>".encode("latin-1"),
        "text/html; charset=iso-8859-1",
        [],
    ),
    SPECIAL_PATHS["redirect"]: (301, b"", HTML, [(b"location", page_path(1).encode())]),
    SPECIAL_PATHS["loop"]: (302, b"", HTML, [(b"location", b"/special/loop-b.html")]),
    "/special/loop-b.html": (302, b"", HTML, [(b"location", SPECIAL_PATHS["loop"].encode())]),
    SPECIAL_PATHS["error"]: (500, b"<h1>Internal Server Error</h1>", HTML, []),
}


# ---------------------------------------------------------------- the ASGI app


class _SiteApp:
    def __init__(self, handle: SiteHandle) -> None:
        self.handle = handle
        self.site = handle.site
        self.root = Path(self.site.directory) if self.site.directory else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        hits = self.handle._record_hit(path)
        query = scope.get("query_string", b"").decode("latin-1")
        self.handle.requests.append(path + ("?" + query if query else ""))
        headers = request_headers(scope["headers"])
        self.handle.request_log.append(LoggedRequest(path=path, headers=headers))
        site = self.site
        if refused := refusal(headers, site.require_header, site.require_cookies):
            await respond(send, refused[0], refused[1], headers=refused[2])
            return
        if delay := site.delays.get(path, site.slow_delay if path == SPECIAL_PATHS["slow"] else 0):
            await trio.sleep(delay)
        if forced := site.statuses.get(path):
            await respond(send, forced, f"<h1>HTTP {forced}</h1>".encode())
        elif target := site.redirects.get(path):
            await respond(send, 301, b"", headers=[(b"location", target.encode())])
        elif (found := self._discovery_file(path)) is not None:
            await respond(send, 200, *found)
        elif path.startswith("/special/"):
            await self._special(path, hits, send)
        elif self.root is not None:
            await self._file(scope, path, send)
        elif path in ("/", "/docs/", "/docs/index.html"):
            links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in self.handle.page_paths)
            await html_answer(
                send,
                f"<html><head><title>Example Docs</title></head><body><main>"
                f"<h1>Example Docs</h1><ul>{links}</ul></main></body></html>",
            )
        elif (index := page_index(path)) is not None and index < site.pages:
            if site.markdown == "negotiate" and prefers_markdown(headers.get("accept", "")):
                await self._markdown(scope, send, path, index)
                return
            page = generated_page(
                index, pages=site.pages, sections=site.sections, paragraphs=site.paragraphs
            )
            body, extra = offered_in_page(site.markdown, path, page.encode())
            await self._page(scope, send, path, body, HTML, extra)
        elif site.markdown != "none" and (found_md := markdown_page(path)) is not None:
            await self._markdown(scope, send, *found_md)
        else:
            await respond(send, 404, b"<h1>Not Found</h1>")

    def _discovery_file(self, path: str) -> tuple[bytes, str] | None:
        if (found := file_response(self.site.files, path, self.handle.base_url)) is not None:
            return found
        if self.site.sitemap:
            return sitemap_response(
                self.handle.base_url, self.handle.page_paths, path, size=self.site.sitemap_size
            )
        return None

    async def _special(self, path: str, hits: int, send: Send) -> None:
        site, sp = self.site, SPECIAL_PATHS
        retry_after = [(b"retry-after", f"{site.retry_after:g}".encode())]
        if path in _STATIC:
            await respond(send, *_STATIC[path])
        elif path == sp["huge"]:
            await stream_huge(send, site.huge_bytes)
        elif path == sp["rate_limited"] and hits <= site.rate_limited_hits:
            await respond(send, 429, b"<h1>Too Many Requests</h1>", headers=retry_after)
        elif path == sp["flaky"] and hits <= site.flaky_hits:
            await respond(send, 503, b"<h1>Service Unavailable</h1>", headers=retry_after)
        elif path in (sp["slow"], sp["rate_limited"], sp["flaky"]):
            await html_answer(send, generated_page(1, pages=site.pages))
        else:
            await respond(send, 404, b"<h1>Not Found</h1>")

    async def _file(self, scope: Scope, path: str, send: Send) -> None:
        assert self.root is not None
        relative = posixpath.normpath(unquote(path)).lstrip("/")
        if relative.startswith(".."):
            await respond(send, 404, b"")
            return
        # Debian's doc packages symlink shared JavaScript out of the tree: follow links.
        target = trio.Path(self.root / relative)
        if await target.is_dir():
            target = target / "index.html"
        if not await target.is_file():
            await respond(send, 404, b"<h1>Not Found</h1>")
            return
        content_type = mimetypes.guess_type(str(target))[0] or "application/octet-stream"
        await self._page(scope, send, path, await target.read_bytes(), content_type)

    async def _markdown(self, scope: Scope, send: Send, path: str, index: int) -> None:
        """Page ``index``'s own Markdown (``path`` is its HTML page's), as revised as the page."""
        site, revision = self.site, self.handle.revisions[path]
        if index >= site.pages:
            await respond(send, 404, b"# Not Found\n", MARKDOWN)
            return
        text = generated_markdown(
            index,
            pages=site.pages,
            sections=site.sections,
            paragraphs=site.paragraphs,
            revision=revision,
            without_code=index in site.markdown_without_code,
        )
        vary = [(b"vary", b"accept")] if site.markdown == "negotiate" else []
        await self._answer(scope, send, text.encode(), MARKDOWN, revision, vary)

    async def _page(
        self,
        scope: Scope,
        send: Send,
        path: str,
        body: bytes,
        content_type: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """A document answer: its current revision, validators, and 304 when they match."""
        if revision := self.handle.revisions[path]:
            body = revised(body, revision)
        await self._answer(scope, send, body, content_type, revision, extra or [])

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        body: bytes,
        content_type: str,
        revision: int,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        headers = list(headers)
        mode = self.site.validators
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        # One fixed date per revision: a change moves Last-Modified forward by an hour.
        modified = email.utils.formatdate(EPOCH + 3600 * revision, usegmt=True)
        if mode in ("etag", "both"):
            headers.append((b"etag", etag.encode()))
        if mode in ("last-modified", "both"):
            headers.append((b"last-modified", modified.encode()))
        request = {name.lower(): value for name, value in scope["headers"]}
        if_none_match = request.get(b"if-none-match", b"").decode()
        if_modified_since = request.get(b"if-modified-since", b"").decode()
        fresh = False
        if mode in ("etag", "both") and if_none_match:
            fresh = etag in (tag.strip() for tag in if_none_match.split(","))
        elif mode in ("last-modified", "both") and if_modified_since:
            fresh = if_modified_since == modified
        status = 304 if fresh else 200
        self.handle.statuses[status] += 1
        if fresh:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        else:
            await respond(send, 200, body, content_type, headers=headers)


# ---------------------------------------------------------------- running it


async def serve_site(
    site: SiteConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[SiteHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``nursery.start(serve_site, site)`` returns the ``SiteHandle``."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    handle = SiteHandle(site)
    if site.directory:
        handle.page_paths = await trio.to_thread.run_sync(_html_files, Path(site.directory))
    else:
        handle.page_paths = [page_path(i) for i in range(site.pages)]
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.errorlog = None  # no "Running on ..." lines in test output
    config.graceful_timeout = 0.5
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(
                serve,
                cast(Any, _SiteApp(handle)),
                config,
                shutdown_trigger=trio.sleep_forever,
                mode="asgi",
            )
        )
        handle.base_url = binds[0]
        task_status.started(handle)


def _html_files(root: Path) -> list[str]:
    # Symlinked directories are followed: a site can be put together from several doc sets.
    found = []
    for directory, _, names in os.walk(root, followlinks=True):
        base = Path(directory).relative_to(root)
        found += ["/" + (base / name).as_posix() for name in names if name.endswith(".html")]
    return sorted(path.replace("/./", "/") for path in found)


@contextmanager
def run_site_in_thread(site: SiteConfig | None = None) -> Iterator[SiteHandle]:
    """Serve from a daemon thread with its own trio loop, for code that is not async."""
    ready: queue.Queue[
        tuple[SiteHandle, trio.lowlevel.TrioToken, trio.CancelScope] | BaseException
    ] = queue.Queue()

    async def main() -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                handle: SiteHandle = await nursery.start(serve_site, site or SiteConfig())
                ready.put((handle, trio.lowlevel.current_trio_token(), scope))

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # handed to the waiting caller
            ready.put(exc)

    thread = threading.Thread(target=thread_main, name="docs-site", daemon=True)
    thread.start()
    item = ready.get(timeout=60)
    if isinstance(item, BaseException):
        raise item
    handle, token, scope = item
    try:
        yield handle
    finally:
        with suppress(trio.RunFinishedError):
            token.run_sync_soon(scope.cancel)
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local documentation site.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pages", type=int, default=28)
    parser.add_argument("--directory", default="", help="serve this directory instead")
    parser.add_argument("--urls-file", default="", help="write the page URLs to this file")
    parser.add_argument("--sections", type=int, default=3, help="sections per generated page")
    parser.add_argument("--paragraphs", type=int, default=3, help="paragraphs per section")
    parser.add_argument("--sitemap", action="store_true", help="publish /sitemap.xml")
    parser.add_argument("--robots-txt", default="", help="serve this file as /robots.txt")
    parser.add_argument(
        "--markdown",
        default="none",
        choices=["none", "link", "header", "negotiate", "beside"],
        help="how pages offer their own Markdown",
    )
    args = parser.parse_args(argv)
    files = {"/robots.txt": Path(args.robots_txt).read_text()} if args.robots_txt else {}
    site = SiteConfig(
        pages=args.pages,
        directory=args.directory,
        sections=args.sections,
        paragraphs=args.paragraphs,
        sitemap=args.sitemap,
        files=files,
        markdown=args.markdown,
    )

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            handle: SiteHandle = await nursery.start(
                partial(serve_site, site, host=args.host, port=args.port)
            )
            if args.urls_file:
                await trio.Path(args.urls_file).write_text("\n".join(handle.page_urls()) + "\n")
            print(f"listening on {handle.base_url}", flush=True)

    with suppress(KeyboardInterrupt):
        trio.run(run)


if __name__ == "__main__":
    main()
