"""Credentials for private documentation: per-origin headers and cookies (``[[crawl.auth]]``).

Each request gets the credentials of its own origin (scheme, host and port), decided on the
request's URL: every redirect hop is a request of its own (``redirects.follow``), so a hop to
another origin carries none. Over HTTP they are the site client's ``httpx.Auth``
(``OriginAuth``), so every fetch from a site (pages, robots.txt, sitemaps, llms.txt, the
Markdown a page offers) gets them alike; in browser mode the interception adds them to each
request Chromium makes (``crawl/intercept.py``).

Values are read once at start-up: ``${NAME}`` in a value is the environment variable NAME, so
no secret needs to sit in a config file. ``secrets`` lists every value, for the log redactor.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from msgspec import Struct

from crawl4ai_llm_docs.config import AuthEntry, CrawlConfig, origin_key
from crawl4ai_llm_docs.errors import ConfigError
from crawl4ai_llm_docs.fetch.cookies import (
    Cookie,
    CookieFileError,
    cookie_header,
    domain_match,
    merge_cookie_headers,
    read_netscape,
    read_storage_state,
)

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SENDABLE = re.compile(r"^[\t\x20-\x7e]*$")  # printable ASCII and tabs
README_SECTION = 'the README, "Private docs"'


class OriginCredential(Struct, frozen=True, kw_only=True):
    """What one origin is sent: headers (values resolved) and cookies, and where each came
    from (for messages that name a credential without showing it)."""

    origin: str
    headers: dict[str, str]
    header_sources: dict[str, str]  # header -> "${DOCS_TOKEN}" or "the config file"
    cookies: tuple[Cookie, ...] = ()
    cookie_files: tuple[str, ...] = ()  # the files the cookies came from
    local_storage: tuple[tuple[str, str], ...] = ()  # browser mode: set before pages run

    def request_headers(self, scheme: str, host: str, path: str) -> dict[str, str]:
        headers = dict(self.headers)
        if self.cookies and (cookies := cookie_header(self.cookies, scheme, host, path)):
            own = headers.get("Cookie") or headers.get("cookie")
            headers["Cookie"] = f"{own}; {cookies}" if own else cookies
            headers.pop("cookie", None)
        return headers

    def described(self) -> str:
        """What was sent, by name: ``header Authorization (from ${DOCS_TOKEN}) and cookies
        session, theme (from cookies.txt)``."""
        parts = [f"header {name} (from {self.header_sources[name]})" for name in self.headers]
        if self.cookies:
            names = ", ".join(dict.fromkeys(cookie.name for cookie in self.cookies))
            parts.append(f"cookies {names} (from {', '.join(self.cookie_files)})")
        return " and ".join(parts)

    def refresh_hint(self) -> str:
        hints = []
        for name in self.headers:
            source = self.header_sources[name]
            variables = _REFERENCE.findall(source)
            if variables:
                hints.append(f"export a fresh value in {', '.join(variables)}")
            else:
                hints.append(f"update header {name} in the config file")
        if self.cookies:
            files = ", ".join(self.cookie_files)
            hints.append(f"log in again in a browser and export its cookies to {files}")
        return "; ".join(dict.fromkeys(hints))


class Credentials:
    """Every origin's credentials; ``headers_for(url)`` is what a request to ``url`` gets."""

    def __init__(self, entries: Iterable[OriginCredential] = (), warnings: Iterable[str] = ()):
        self.by_origin = {entry.origin: entry for entry in entries}
        self.warnings = list(warnings)  # e.g. expired cookies left out, for the run to log

    def __bool__(self) -> bool:
        return bool(self.by_origin)

    def for_url(self, url: str) -> OriginCredential | None:
        if not self.by_origin:
            return None
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        return self.by_origin.get(origin_key(parts.scheme, parts.hostname, port))

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers a request to ``url`` carries: its exact origin's, or none."""
        credential = self.for_url(url)
        if credential is None:
            return {}
        parts = urlsplit(url)
        return credential.request_headers(
            parts.scheme.lower(), parts.hostname or "", parts.path or "/"
        )

    @property
    def secrets(self) -> list[str]:
        """Every credential value, for the redactor of logs and messages."""
        found: list[str] = []
        for entry in self.by_origin.values():
            found += entry.headers.values()
            found += (cookie.value for cookie in entry.cookies)
            found += (value for _, value in entry.local_storage)
        return [value for value in found if value.strip()]

    def refused(self, reason: str, url: str, status: int | None) -> str:
        """``reason`` of a 401/403 answer, saying which credential was sent (by name) and
        how to refresh it; or, for a 401 with none, how to add one."""
        if status not in (401, 403):
            return reason
        credential = self.for_url(url)
        if credential is None:
            if status != 401:
                return reason  # a public site's 403 is usually a bot wall, not a login
            parts = urlsplit(url)
            origin = origin_key(parts.scheme, parts.hostname or "", _port(url))
            return (
                f"{reason} (no credential is configured for {origin}: add a [[crawl.auth]] "
                f"table for it, see {README_SECTION})"
            )
        return (
            f"{reason}: {credential.origin} refused the credential sent, "
            f"{credential.described()}; it may have expired: {credential.refresh_hint()}"
        )


NO_CREDENTIALS = Credentials()


class OriginAuth(httpx.Auth):
    """The site client's auth: each request gets its own origin's credentials, or none."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        for name, value in self.credentials.headers_for(str(request.url)).items():
            if name.lower() == "cookie" and (site := request.headers.get("cookie")):
                value = merge_cookie_headers(site, value)  # what the site set stays
            request.headers[name] = value
        yield request


def credentials_of(client: httpx.AsyncClient) -> Credentials:
    """The credentials a site client sends (``fetch.http.open_client`` sets them)."""
    auth = client.auth
    return auth.credentials if isinstance(auth, OriginAuth) else NO_CREDENTIALS


def load_credentials(
    crawl: CrawlConfig,
    *,
    source: str = "",
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
) -> Credentials:
    """Read ``crawl.auth``: resolve ``${NAME}`` references, read the cookie files.

    Raises ``ConfigError`` (naming the origin, the header or file, and ``source``, the config
    file the table came from; never a value) when a variable is unset or a file is unusable.
    """
    environ = os.environ if environ is None else environ
    now = time.time() if now is None else now
    entries: list[OriginCredential] = []
    warnings: list[str] = []
    for entry in crawl.auth:
        entries.append(_load_entry(entry, source, environ, now, warnings))
    return Credentials(entries, warnings)


def _load_entry(
    entry: AuthEntry, source: str, environ: Mapping[str, str], now: float, warnings: list[str]
) -> OriginCredential:
    origin = entry.key()
    assert origin is not None  # checked when the configuration was built
    where = f"[[crawl.auth]] {origin}" + (f" (from {source})" if source else "")
    headers: dict[str, str] = {}
    header_sources: dict[str, str] = {}
    for name, value in entry.headers.items():
        headers[name] = _expand(value, f"{where}, header {name}", environ)
        header_sources[name] = value if _REFERENCE.search(value) else "the config file"
        if not _SENDABLE.match(headers[name]):  # else the request fails, its value in the error
            raise ConfigError(
                f"{where}, header {name}: its value (from {header_sources[name]}) has characters "
                "a header cannot carry (control characters or non-ASCII). Check it."
            )
    cookies: list[Cookie] = []
    files: list[str] = []
    storage: tuple[tuple[str, str], ...] = ()
    parts = urlsplit(origin)
    host = parts.hostname or ""
    for key, raw in (("cookies_file", entry.cookies_file), ("storage_state", entry.storage_state)):
        if not raw:
            continue
        path = Path(os.path.expanduser(_expand(raw, f"{where}, {key}", environ)))
        data = _read(path, f"{where}, {key}")
        try:
            if key == "cookies_file":
                found = read_netscape(data.decode("utf-8", errors="replace"), path.name)
            else:
                state = read_storage_state(data, path.name)
                found = list(state.cookies)
                storage = state.local_storage.get(origin, ())
        except CookieFileError as exc:
            raise ConfigError(f"{where}, {key}: {exc}. Export the file again.") from None
        # The origin's cookies; path and secure are decided per request, as a browser does.
        mine = [c for c in found if domain_match(host, c.domain, c.include_subdomains)]
        fresh = [cookie for cookie in mine if not cookie.expired(now)]
        if not mine and not (key == "storage_state" and storage):
            domains = ", ".join(sorted({c.domain for c in found})[:5]) or "none"
            raise ConfigError(
                f"{where}, {key}: {path} has no cookie for {host} (it has cookies for "
                f"{domains}). Export the cookies of {host} from a browser logged in to it."
            )
        if mine and not fresh and not storage:
            raise ConfigError(
                f"{where}, {key}: every cookie for {host} in {path} expired (the last on "
                f"{_date(max(c.expires for c in mine))}). Log in again in a browser and export "
                "its cookies again."
            )
        if len(fresh) < len(mine):
            warnings.append(
                f"{where}: {len(mine) - len(fresh)} expired cookie(s) in {path} left out; "
                "if pages answer 401 or 403, export the cookies again."
            )
        cookies += fresh
        files.append(path.name)
    return OriginCredential(
        origin=origin,
        headers=headers,
        header_sources=header_sources,
        cookies=tuple(cookies),
        cookie_files=tuple(files),
        local_storage=storage,
    )


def _expand(value: str, where: str, environ: Mapping[str, str]) -> str:
    def variable(found: re.Match[str]) -> str:
        name = found.group(1)
        resolved = environ.get(name, "")
        if not resolved:
            state = "is empty" if name in environ else "is not set"
            raise ConfigError(
                f"{where} names the environment variable ${{{name}}}, which {state}. Export it "
                f"(export {name}=...) before running, or remove that setting."
            )
        return resolved

    return _REFERENCE.sub(variable, value)


def _read(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path} does not exist. Check the path.") from None
    except OSError as exc:
        raise ConfigError(f"{where}: {path} cannot be read ({exc.strerror}).") from None


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None
