"""How ``serve`` talks: MCP over stdio (what Claude Code, Cursor and Codex start from a config
line) or over streamable HTTP, both under trio.

stdio: the SDK reads and writes private copies of fd 0 and 1 and points fd 1 at stderr while
it serves; Python-level ``print`` is redirected to stderr too (inside the block: the SDK looks
at ``sys.stdout`` to find the wire), so nothing stray corrupts the protocol.

HTTP: the SDK's session manager (its task group is a trio nursery here) behind a small ASGI
app, served by hypercorn's trio worker (the SDK's own runner, uvicorn, is asyncio only). The
app answers only ``/mcp``, checks the bearer token in constant time when there is one, and
keeps the SDK's DNS-rebinding guard (Host and Origin must name the address served). A bind
off loopback needs a token (``CRAWL4AI_LLM_DOCS_SERVE_TOKEN``): it is refused without one.
"""

from __future__ import annotations

import contextlib
import hmac
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import trio
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import (
    StreamableHTTPASGIApp,
    StreamableHTTPSessionManager,
)
from mcp.server.transport_security import TransportSecuritySettings

from crawl4ai_llm_docs.search.endpoints import is_loopback

MCP_PATH = "/mcp"
REALM = b'Bearer realm="crawl4ai-llm-docs"'

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client on stdin/stdout until it closes stdin."""
    async with stdio_server() as (read_stream, write_stream):
        with contextlib.redirect_stdout(sys.stderr):
            await server.run(read_stream, write_stream, server.create_initialization_options())


def _security(host: str) -> TransportSecuritySettings:
    """The DNS-rebinding guard: requests must name the address served (the SDK's defaults
    only know 127.0.0.1, localhost and [::1])."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if not is_loopback(host):
        hosts.append(f"[{host}]:*" if ":" in host else f"{host}:*")
    origins = [f"{scheme}://{name}" for name in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerApp:
    """ASGI: lifespan answered here, ``/mcp`` checked for the token then passed to the SDK,
    anything else 404."""

    def __init__(self, inner: ASGIApp, token: str | None) -> None:
        self.inner = inner
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the session manager's lifetime is our nursery's
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http" or scope["path"].rstrip("/") != MCP_PATH:
            await _plain(send, 404, b"not found: the MCP endpoint is /mcp")
            return
        if self.expected is not None:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):  # constant time in the content
                await _plain(send, 401, b"missing or wrong bearer token", REALM)
                return
        await self.inner(scope, receive, send)


async def _plain(send: Send, status: int, body: bytes, challenge: bytes = b"") -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    if challenge:
        headers.append((b"www-authenticate", challenge))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_http(
    server: Server[Any],
    host: str,
    port: int,
    token: str | None,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve streamable HTTP on ``host:port`` (0: any free port) until cancelled; reports the
    endpoint's URL once listening. A non-loopback host without a token is refused
    (``ValueError``) before anything listens."""
    import hypercorn.trio
    from hypercorn.config import Config

    if not is_loopback(host) and not token:
        raise ValueError(f"refusing to serve on {host}, not a loopback address, without a token")
    manager = StreamableHTTPSessionManager(app=server, security_settings=_security(host))
    app: Any = BearerApp(StreamableHTTPASGIApp(manager), token)  # hypercorn's own ASGI types
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 1.0
    async with manager.run(), trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn.trio.serve, app, config, mode="asgi")
        )
        task_status.started(binds[0] + MCP_PATH)
