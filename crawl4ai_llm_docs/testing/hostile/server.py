"""A hostile site on 127.0.0.1: fixed answers per path, sent exactly as given.

What ordinary servers refuse to do is the point: any ``Content-Encoding`` header over any
bytes (a bomb, a coding applied twice, an unknown one), bodies that drip a few bytes a second
and never end, redirects anywhere. Each path answers an ``Answer``; ``hits`` counts what was
asked for, so a test can prove a path was never fetched. It listens on 127.0.0.1 only.

    python -m crawl4ai_llm_docs.testing.hostile.server CASE [--port N]

serves one of ``sites.CASES`` until interrupted (for trying the tool by hand).
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Drip:
    """A body that starts with ``first``, then sends ``piece`` every ``every`` s, forever."""

    first: bytes = b""
    piece: bytes = b" "
    every: float = 1.0


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes | Drip = b""
    headers: tuple[tuple[str, str], ...] = ()
    templated: bool = False  # "{base}" / "{other}" in the body become addresses

    @classmethod
    def html(cls, text: str, *headers: tuple[str, str]) -> Answer:
        content_type = ("content-type", "text/html; charset=utf-8")
        return cls(200, text.encode(), (content_type, *headers), templated=True)

    @classmethod
    def text(cls, text: str, content_type: str = "text/plain") -> Answer:
        return cls(200, text.encode(), (("content-type", content_type),), templated=True)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Answer:
        return cls(status, b"", (("location", location),))


Routes = dict[str, Answer]
NOT_FOUND = Answer(404, b"not found", (("content-type", "text/plain"),))


@dataclass
class HostileServer:
    """Serves ``routes`` (path -> Answer; ``{base}`` in bodies and headers is this server's
    address) until the ``running`` block ends."""

    routes: Routes = field(default_factory=dict)
    host: str = "127.0.0.1"
    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    base_url: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base_url + path

    @contextmanager
    def running(self, port: int = 0) -> Iterator[HostileServer]:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        server.daemon_threads = True
        self.base_url = f"http://{self.host}:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, name="hostile", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()  # drips end
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    def answer(self, path: str) -> Answer:
        self.hits[path] += 1
        return self.routes.get(path, NOT_FOUND)

    @property
    def other_url(self) -> str:
        """This server under another host name (localhost): another host to a crawler."""
        return self.base_url.replace(f"//{self.host}:", "//localhost:")

    def fill(self, data: bytes) -> bytes:
        data = data.replace(b"{base}", self.base_url.encode())
        return data.replace(b"{other}", self.other_url.encode())


def _handler(site: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            answer = site.answer(self.path.split("?", 1)[0])
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, site.fill(value.encode()).decode())
            if isinstance(answer.body, Drip):
                self._drip(answer.body)
                return
            body = site.fill(answer.body) if answer.templated else answer.body
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _drip(self, drip: Drip) -> None:
            # No length: the body ends when the connection does, which it never does.
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(site.fill(drip.first))
                self.wfile.flush()
                while not site._stop.wait(drip.every):
                    self.wfile.write(drip.piece)
                    self.wfile.flush()
            except OSError:
                pass  # the client gave up: as it should

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    from crawl4ai_llm_docs.testing.hostile.sites import CASES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    routes_for: Callable[[], Routes] = CASES[args.case]
    with HostileServer(routes_for()).running(args.port) as site:
        print(f"serving {args.case} at {site.url('/')} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
