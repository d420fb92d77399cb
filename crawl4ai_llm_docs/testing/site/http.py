"""ASGI answers of the local docs site: plain, streamed without a length, and revised pages.

``EPOCH`` is the Last-Modified of a page's revision 0; each ``SiteHandle.change`` moves it an
hour on and adds a line to the page (``revised``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HTML = "text/html; charset=utf-8"

EPOCH = 1_700_000_000  # Last-Modified of revision 0 (November 2023)


def revised(body: bytes, revision: int) -> bytes:
    """The page with a line of its main text naming the revision, after the first heading."""
    line = f"<p>Revision {revision}: this page was edited.</p>".encode()
    at = body.find(b"</h1>")
    if at < 0:
        at = body.find(b"</body>")
        return body + line if at < 0 else body[:at] + line + body[at:]
    at += len(b"</h1>")
    return body[:at] + line + body[at:]


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "text/html; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    length = str(len(body)).encode()
    extra = [(b"content-type", content_type.encode()), (b"content-length", length)]
    await send(
        {"type": "http.response.start", "status": status, "headers": extra + (headers or [])}
    )
    await send({"type": "http.response.body", "body": body})


async def html_answer(send: Send, html: str) -> None:
    await respond(send, 200, html.encode())


async def stream_huge(send: Send, size: int) -> None:
    """A page of ``size`` bytes sent in chunks without Content-Length, so clients must count."""
    headers = [(b"content-type", HTML.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    chunk = b"<p>" + b"filler text " * 5000 + b"</p>\n"
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        sent += len(piece)
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
