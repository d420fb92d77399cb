"""Fetch one page over plain HTTP with a pooled httpx client; no browser, no asyncio.

Every way a fetch can fail becomes a ``FetchFailure`` with a short human reason and whether
trying again may help (timeouts, connection errors, 5xx, 429 and 408 may).
"""

from __future__ import annotations

import codecs
import email.utils
import errno
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx
from msgspec import Struct

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.errors import CrawlError, causes
from crawl4ai_llm_docs.fetch.credentials import (
    Credentials,
    OriginAuth,
    credentials_of,
    load_credentials,
)
from crawl4ai_llm_docs.fetch.decode import ACCEPT_ENCODING, BodyRefused, body_decoder, raw_body
from crawl4ai_llm_docs.fetch.guard import GuardedTransport
from crawl4ai_llm_docs.fetch.redirects import OPEN_ROUTE, HopRefused, Route, follow

HTML_TYPES = ("text/html", "application/xhtml+xml")
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")
ACCEPT_HTML = "text/html,application/xhtml+xml"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # seconds; a server asking for longer is treated as asking for this
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)


class FetchFailure(CrawlError):
    """One attempt at one page failed."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        final_url: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.final_url = final_url


class Fetched(Struct, frozen=True, kw_only=True):
    final_url: str
    status: int
    html: str  # the body's text (HTML, or Markdown when content_type says so); "" for a 304
    bytes: int
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""  # media type only, lower case ("" when the server sent none)
    link_header: str = ""  # the Link header(s), comma-joined: where a page says its alternates are

    @property
    def is_markdown(self) -> bool:
        return self.content_type in MARKDOWN_TYPES

    @property
    def not_modified(self) -> bool:
        return self.status == HTTPStatus.NOT_MODIFIED


class Validators(Struct, frozen=True, kw_only=True):
    """What a previous response said about its version, sent back as a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["if-none-match"] = self.etag
        if self.last_modified:
            headers["if-modified-since"] = self.last_modified
        return headers


@asynccontextmanager
async def open_client(
    config: CrawlConfig, *, credentials: Credentials | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """One pooled client for the whole run; the caller's ``trio.fail_after`` bounds each page.

    Redirects are not followed by httpx: ``redirects.follow`` decides every hop. Connections
    go through the address guard (``guard.GuardedTransport``), except through a proxy from
    the environment, which resolves names itself (the check before each hop still holds).
    Every request carries its own origin's credentials (``crawl.auth``; read from the config
    unless given), none on a hop to another origin.
    """
    if credentials is None:
        credentials = load_credentials(config)
    limits = httpx.Limits(
        max_connections=config.max_concurrent * 2, max_keepalive_connections=config.max_concurrent
    )
    proxied = any(urllib.request.getproxies().get(key) for key in ("http", "https", "all"))
    transport = None if proxied else GuardedTransport(verify=config.verify_tls, limits=limits)
    async with httpx.AsyncClient(
        follow_redirects=False,
        verify=config.verify_tls,
        headers={
            "user-agent": config.user_agent,
            "accept": ACCEPT_HTML,
            "accept-encoding": ACCEPT_ENCODING,
        },
        auth=OriginAuth(credentials),
        limits=limits,
        timeout=httpx.Timeout(None),
        transport=transport,
    ) as client:
        yield client


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    validators: Validators | None = None,
    route: Route = OPEN_ROUTE,
    accept: str = "",
    types: Collection[str] = HTML_TYPES,
) -> Fetched:
    """GET ``url``; the body is decoded in bounded steps and refused once over ``max_bytes``.

    Redirects are followed hop by hop as ``route`` allows. With ``validators`` the request is
    conditional: a 304 comes back as a ``Fetched`` with no body (``not_modified``), for the
    caller to reuse what it stored. ``accept`` replaces the client's Accept header; an answer
    of a media type not in ``types`` is refused (one without a type is let through).
    """
    headers = validators.headers() if validators is not None else {}
    if accept:
        headers["accept"] = accept
    try:
        async with follow(client, url, headers=headers, route=route) as response:
            final_url = str(response.url)
            etag = response.headers.get("etag")
            last_modified = response.headers.get("last-modified")
            if headers and response.status_code == HTTPStatus.NOT_MODIFIED:
                return Fetched(
                    final_url=final_url,
                    status=response.status_code,
                    html="",
                    bytes=0,
                    etag=etag or (validators.etag if validators else None),
                    last_modified=last_modified
                    or (validators.last_modified if validators else None),
                )
            try:
                check_status(response)
            except FetchFailure as failure:  # a 401/403 names the credential sent, if any
                failure.reason = credentials_of(client).refused(
                    failure.reason, final_url, failure.status
                )
                failure.args = (failure.reason,)
                raise
            content_type = media_type(response)
            # A missing type is let through: the HTML parser copes, and tiny servers forget it.
            if content_type and content_type not in types:
                wanted = "HTML" if any(kind in types for kind in HTML_TYPES) else "Markdown"
                raise FetchFailure(
                    f"not {wanted} ({content_type})",
                    status=response.status_code,
                    final_url=final_url,
                )
            body = await read_body(response, max_bytes=max_bytes, what="page")
            # <meta charset> is looked for in HTML only: Markdown may quote one in its code.
            html = content_type in ("", *HTML_TYPES)
            return Fetched(
                final_url=final_url,
                status=response.status_code,
                html=(decode_html if html else decode_text)(body, response.charset_encoding),
                bytes=len(body),
                etag=etag,
                last_modified=last_modified,
                content_type=content_type,
                link_header=", ".join(response.headers.get_list("link")),
            )
    except HopRefused as exc:
        raise FetchFailure(exc.reason, status=exc.status, final_url=exc.target) from None
    except httpx.InvalidURL as exc:
        raise FetchFailure(f"invalid URL: {exc}") from None
    except httpx.TransportError as exc:
        raise transport_failure(exc, url) from None


async def read_body(response: httpx.Response, *, max_bytes: int, what: str) -> bytes:
    """The decoded body, refused (``FetchFailure``) once it would pass ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(what, max_bytes, response)
    try:
        decoder = body_decoder(response, limit=max_bytes)
        parts: list[bytes] = []
        async for raw in raw_body(response):
            parts.extend(decoder.feed(raw))
        parts.extend(decoder.finish())
    except BodyRefused as exc:
        if exc.too_large:
            raise _too_large(what, max_bytes, response) from None
        raise FetchFailure(
            exc.reason, status=response.status_code, final_url=str(response.url)
        ) from None
    return b"".join(parts)


def check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason_phrase
    raise FetchFailure(
        f"HTTP {status} {phrase}".strip(),
        status=status,
        transient=status in TRANSIENT_STATUSES,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        final_url=str(response.url),
    )


def media_type(response: httpx.Response) -> str:
    declared: str = response.headers.get("content-type", "")
    return declared.split(";")[0].strip().lower()


def _too_large(what: str, max_bytes: int, response: httpx.Response) -> FetchFailure:
    limit = "max_page_bytes" if what == "page" else "its limit"
    return FetchFailure(
        f"{what} larger than {limit} ({max_bytes} bytes)",
        status=response.status_code,
        final_url=str(response.url),
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def decode_html(body: bytes, declared: str | None) -> str:
    """Text of an HTML body: BOM, then the header's charset, then <meta charset>, then UTF-8.

    Undecodable bytes become U+FFFD instead of failing the page.
    """
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if not declared and (found := _META_CHARSET.search(body[:4096])):
        declared = found.group(1).decode("ascii", errors="ignore")
    return decode_text(body, declared)


def decode_text(body: bytes, declared: str | None) -> str:
    """Text of a body that is not HTML (Markdown): BOM, the header's charset, then UTF-8."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if declared:
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            codec = "utf-8"
        return body.decode(codec, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Undeclared and not UTF-8: what browsers assume for legacy pages.
        return body.decode("cp1252", errors="replace")


def transport_failure(exc: httpx.TransportError, url: str) -> FetchFailure:
    parts = urlsplit(url)
    host = parts.hostname or url
    chain = causes(exc)
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            # A name that does not exist will not appear on retry; a resolver hiccup may.
            transient = cause.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", -11))
            return FetchFailure(f"DNS lookup failed for host {host}", transient=transient)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchFailure(f"TLS certificate verification failed for host {host}")
        if (
            isinstance(cause, ConnectionRefusedError)
            or getattr(cause, "errno", None) == errno.ECONNREFUSED
        ):
            port = parts.port or (443 if parts.scheme == "https" else 80)
            return FetchFailure(f"connection refused by {host}:{port}", transient=True)
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "Name or service not known" in text:
        return FetchFailure(f"DNS lookup failed for host {host}")
    kind = "connection failed" if isinstance(exc, httpx.ConnectError) else "connection error"
    return FetchFailure(f"{kind}: {text}", transient=True)
