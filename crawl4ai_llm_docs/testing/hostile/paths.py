"""A docs site whose page URLs try to choose where their files go (issue 25, ``--pages-dir``).

Every path is a page (HTML, its title and text naming the path), except robots.txt, sitemaps
and llms.txt, which are absent. ``/docs/`` links to every case, so discovery meets them as a
site would serve them. Listens on 127.0.0.1 only, on a port the OS picks::

    with serve_paths() as site:
        site.url(CASES[0].path)

    python -m crawl4ai_llm_docs.testing.hostile.paths   # prints the URLs, serves until Ctrl-C
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import quote, unquote


class Case(NamedTuple):
    path: str  # as sent on the wire (percent-encoded)
    what: str  # what the path tries


ROOT = "/docs/"
CASES: tuple[Case, ...] = (
    Case(ROOT, "the root page, linking to every case"),
    Case("/docs/%2fhome%2fuser%2fnotes", "an encoded absolute path: /home/user/notes.md"),
    Case("/docs/a%2f..%2f..%2fSIBLING", "encoded dot segments climbing above the directory"),
    Case("/docs/%2e%2e/%2e%2e/%2e%2e/ESCAPED", "encoded dot segments as whole segments"),
    Case("/docs/..%5c..%5cWINDOWS", "backslashes as separators"),
    Case("/docs/.bashrc", "a hidden file"),
    Case("/docs/ctl%00%1f%7fname", "control characters in a name"),
    Case(
        "/docs/" + quote("文" * 100), "100 CJK characters: 300 bytes, over the 255-byte name limit"
    ),
    Case("/docs/" + "/".join(["d" * 200] * 21), "a path of 4,200 bytes, over PATH_MAX"),
    Case("/docs/x.html", "a file..."),
    Case("/docs/x.md/y", "...and a directory of the same name (x.md)"),
    Case("/docs/Case", "two pages..."),
    Case("/docs/case", "...one file on a case-insensitive file system"),
)
# Answered 404 in any directory: the site offers no robots.txt, sitemap or llms.txt.
ABSENT = frozenset({"robots.txt", "sitemap.xml", "sitemap_index.xml", "llms.txt", "llms-full.txt"})


def page_html(path: str) -> bytes:
    """A small documentation page naming its own path (so each page's text is its own)."""
    shown = html.escape(unquote(path, errors="replace"))
    links = ""
    if path == ROOT:
        links = (
            "<ul>" + "".join(f'<li><a href="{c.path}">{c.what}</a></li>' for c in CASES) + "</ul>"
        )
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Page {shown}</title></head>"
        f"<body><main><h1>Page {shown}</h1>"
        f"<p>This documentation page lives at {shown}. It explains one thing in two sentences "
        f"so the crawler keeps it as content.</p>{links}</main></body></html>"
    )
    return body.encode()


class PathsSite:
    """The running site: its base URL and the paths it was asked for."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self.requests: list[str] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def urls(self) -> list[str]:
        return [self.url(case.path) for case in CASES]


def _handler(site_ref: list[PathsSite]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            site_ref[0].requests.append(path)
            if path.rsplit("/", 1)[-1] in ABSENT:
                status, body, kind = 404, b"not here", "text/plain"
            else:
                status, body, kind = 200, page_html(path), "text/html; charset=utf-8"
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_paths() -> Iterator[PathsSite]:
    """Serve the site from a daemon thread until the block ends."""
    holder: list[PathsSite] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    server.daemon_threads = True
    holder.append(PathsSite(server))
    thread = threading.Thread(target=server.serve_forever, name="hostile-paths", daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


if __name__ == "__main__":
    with serve_paths() as running:
        print("\n".join(running.urls()), flush=True)
        threading.Event().wait()
