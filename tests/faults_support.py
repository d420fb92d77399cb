"""Helpers for the fault, interruption and security suites, on top of ``e2e_support``.

- ``StubServer``: a tiny threaded HTTP(S) server on 127.0.0.1 answering from a function, for
  what the docs site and the fake provider cannot do (redirect to ``file:``, echo the
  Authorization header, self-signed TLS).
- Reading what a run left behind: the cache's result entries, section bodies, the digests the
  fake provider uses for answered documents.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
from e2e_support import Section, sections

from crawl4ai_llm_docs.testing.provider.answers import ChatRequest, answer
from crawl4ai_llm_docs.testing.provider.server import document_digest

# ---------------------------------------------------------------- a stub HTTP server


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Reply]


class StubServer:
    """Answers every request with ``handler(request)``; ``requests`` records what came in."""

    def __init__(self, handler: Handler, *, cert: tuple[Path, Path] | None = None) -> None:
        self.requests: list[Request] = []
        stub = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                stub.requests.append(request)
                reply = handler(request)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[StubServer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)


def html_reply(html: str) -> Reply:
    return Reply(200, html.encode(), (("content-type", "text/html; charset=utf-8"),))


def json_reply(status: int, payload: object) -> Reply:
    return Reply(status, json.dumps(payload).encode(), (("content-type", "application/json"),))


def completion_reply(request: Request) -> Reply:
    """What the fake provider answers when nothing goes wrong (same text, same digests)."""
    chat = msgspec.json.decode(request.body, type=ChatRequest)
    result = answer(chat, None)
    return json_reply(
        200,
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": chat.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.content},
                    "finish_reason": result.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens,
            },
        },
    )


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 that no trust store accepts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def free_port() -> int:
    """A loopback port nothing listens on (closed again at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- what a run left behind


def cache_root(tmp: Path) -> Path:
    """The cache directory of a run started with ``cli_env(tmp)``."""
    return tmp / "xdg-cache" / "crawl4ai-llm-docs"


def cache_entries(tmp: Path) -> list[Path]:
    results = cache_root(tmp) / "results"
    return sorted(path for path in results.rglob("*") if path.is_file())


def cached_digests(tmp: Path) -> set[str]:
    """Provider digests of the answers in the cache; every entry must decode as JSON.

    Skips the ``.tmp-*`` file a write cut off by ``kill -9`` may leave (never read as an entry).
    """
    digests: set[str] = set()
    for path in cache_entries(tmp):
        if path.name.startswith(".tmp-"):
            continue
        entry = json.loads(path.read_bytes())  # raises on a torn entry
        digests.add(document_digest(entry["markdown"]))
    return digests


def body(section: Section) -> str:
    """A section's own text: up to the next H2 (the last one would include "Pages that failed")."""
    end = section.body.find("\n## ")
    return (section.body if end < 0 else section.body[:end]).strip()


def bodies(markdown: str) -> dict[str, str]:
    return {section.source: body(section) for section in sections(markdown)}


def assert_well_formed(markdown: str, urls: list[str], expected: Mapping[str, str]) -> int:
    """A complete or partial output: numbered 1..n in input order, every body intact.

    Returns the number of sections. ``expected`` maps each URL to its complete body.
    """
    found = sections(markdown)
    assert [s.number for s in found] == list(range(1, len(found) + 1))
    positions = [urls.index(s.source) for s in found]
    assert positions == sorted(set(positions)), positions
    for section in found:
        # No torn text: each body is exactly what the complete run wrote for that page.
        assert body(section) == expected[section.source], section.source
    if len(found) < len(urls):
        assert "**Incomplete:**" in markdown or "## Pages that failed" in markdown
    return len(found)
