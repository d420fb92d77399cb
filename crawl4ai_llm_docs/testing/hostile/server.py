"""A hostile site on 127.0.0.1: fixed answers per path, sent exactly as given.

What ordinary servers refuse to do is the point: any ``Content-Encoding`` header over any
bytes (a bomb, a coding applied twice, an unknown one), bodies that drip a few bytes a second
and never end, redirects anywhere. Each path answers an ``Answer``; ``hits`` counts what was
asked for, so a test can prove a path was never fetched (``GET /_hits`` answers them as
JSON, for a benchmark running the server in another process). It listens on 127.0.0.1 only.

    python -m crawl4ai_llm_docs.testing.hostile.server CASE [--port N]

serves one of ``sites.CASES`` until interrupted (for trying the tool by hand).
"""

from __future__ import annotations

import argparse
import collections
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crawl4ai_llm_docs.testing.hostile.payloads import NOT_FOUND, Answer, Drip, Routes


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
        server = _QuietServer(("127.0.0.1", port), _handler(self))
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


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up on a bomb or a drip is doing the right thing


def _handler(site: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/_hits":  # what was asked so far, for a process outside this one
                hits = json.dumps(dict(site.hits)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(hits)))
                self.end_headers()
                self.wfile.write(hits)
                return
            answer = site.answer(path)
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
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    args = parser.parse_args(argv)
    routes_for: Callable[[], Routes] = CASES[args.case]
    with HostileServer(routes_for()).running(args.port) as site:
        print(f"serving {args.case}, listening on {site.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
