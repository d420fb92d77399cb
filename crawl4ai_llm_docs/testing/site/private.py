"""The local docs site as a private one: every path behind a header or a cookie, and a log of
the headers each request carried (for tests that assert where a credential went).

``SiteConfig.require_header`` maps header names to the values every request must carry (else
401 with ``WWW-Authenticate``); ``require_cookies`` maps cookie names to values (else 403, as
a portal whose session is missing or expired answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from msgspec import Struct


class LoggedRequest(Struct, frozen=True, kw_only=True):
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    def cookies(self) -> dict[str, str]:
        return read_cookies(self.headers.get("cookie", ""))


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def read_cookies(header: str) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def refusal(
    headers: Mapping[str, str],
    require_header: Mapping[str, str],
    require_cookies: Mapping[str, str],
) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
    """(status, body, headers) when the request lacks a credential; None when it may pass."""
    for name, value in require_header.items():
        if headers.get(name.lower()) != value:
            challenge = [(b"www-authenticate", b'Bearer realm="docs"')]
            return 401, b"<h1>401 Unauthorized</h1>", challenge
    if require_cookies:
        sent = read_cookies(headers.get("cookie", ""))
        if any(sent.get(name) != value for name, value in require_cookies.items()):
            return 403, b"<h1>403 Forbidden: log in first</h1>", []
    return None
