"""Cookies a user exported from a logged-in browser: Netscape cookies.txt and Playwright's
storage state, read into one shape, and the ``Cookie`` header they make for a request.

Matching follows RFC 6265 (domain-match and path-match, secure cookies only over https), so
a cookie file behaves as the browser it came from did. Error messages name the file and the
line, never a cookie's value.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable, Sequence

from msgspec import Struct

NETSCAPE_FIELDS = "domain, subdomains, path, secure, expires, name, value"
_HTTP_ONLY_PREFIX = "#HttpOnly_"  # curl marks HttpOnly cookies so; the line is not a comment
# What a Cookie header can carry (printable ASCII but the pair separator): anything else would
# fail the request with the value in the error message.
_SENDABLE = re.compile(r"^[\x20-\x3a\x3c-\x7e]*$")


class CookieFileError(ValueError):
    """A cookie file that cannot be read: the message says where, never a value."""


class Cookie(Struct, frozen=True, kw_only=True):
    name: str
    value: str
    domain: str  # lower case, without a leading dot
    include_subdomains: bool
    path: str = "/"
    secure: bool = False
    expires: float = 0.0  # seconds since the epoch; 0 (or below): a session cookie

    def expired(self, now: float) -> bool:
        return self.expires > 0 and self.expires <= now

    def matches(self, scheme: str, host: str, path: str) -> bool:
        """Whether a browser would send this cookie with a request to ``scheme://host/path``."""
        if self.secure and scheme != "https":
            return False
        return domain_match(host, self.domain, self.include_subdomains) and path_match(
            path or "/", self.path
        )


class StorageState(Struct, frozen=True, kw_only=True):
    cookies: tuple[Cookie, ...] = ()
    local_storage: dict[str, tuple[tuple[str, str], ...]] = {}  # origin -> (name, value)...


def domain_match(host: str, domain: str, include_subdomains: bool) -> bool:
    host, domain = host.lower().rstrip("."), domain.lower().lstrip(".").rstrip(".")
    if host == domain:
        return True
    if not include_subdomains or not host.endswith("." + domain):
        return False
    try:  # an IP address has no subdomains
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True
    return False


def path_match(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"


def cookie_header(cookies: Iterable[Cookie], scheme: str, host: str, path: str) -> str:
    """``name=value; ...`` of the cookies that match, longer paths first (as browsers do)."""
    matching = [cookie for cookie in cookies if cookie.matches(scheme, host, path)]
    matching.sort(key=lambda cookie: len(cookie.path), reverse=True)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in matching)


def merge_cookie_headers(site: str, ours: str) -> str:
    """The cookies the site set (kept by the client or the browser) and ours; where both have
    a name, the site's, as a browser's jar would hold the value the site last set."""
    pairs = [pair.strip() for pair in site.split(";") if pair.strip()]
    names = {pair.split("=", 1)[0] for pair in pairs}
    pairs += [
        p.strip() for p in ours.split(";") if p.strip() and p.split("=", 1)[0].strip() not in names
    ]
    return "; ".join(pairs)


def _flag(text: str, line: int, what: str, source: str) -> bool:
    upper = text.strip().upper()
    if upper not in ("TRUE", "FALSE"):
        raise CookieFileError(f"{source} line {line}: the {what} field must be TRUE or FALSE")
    return upper == "TRUE"


def read_netscape(text: str, source: str) -> list[Cookie]:
    """The cookies of a Netscape cookies.txt (curl's ``-c``, browser exporters, yt-dlp)."""
    cookies: list[Cookie] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if line.startswith(_HTTP_ONLY_PREFIX):
            line = line[len(_HTTP_ONLY_PREFIX) :]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) == 6:  # an empty value, its tab dropped by some exporters
            fields.append("")
        if len(fields) != 7:
            raise CookieFileError(
                f"{source} line {number}: expected 7 tab-separated fields ({NETSCAPE_FIELDS}), "
                f"found {len(fields)}"
            )
        domain, subdomains, path, secure, expires, name, value = fields
        try:
            expiry = float(expires.strip() or 0)
        except ValueError:
            raise CookieFileError(
                f"{source} line {number}: the expires field must be a number of seconds"
            ) from None
        if not domain.strip() or not name:
            raise CookieFileError(f"{source} line {number}: a cookie needs a domain and a name")
        _check_sendable(name, value, f"{source} line {number}")
        cookies.append(
            Cookie(
                name=name,
                value=value,
                domain=domain.strip().lower().lstrip("."),
                include_subdomains=_flag(subdomains, number, "subdomains", source),
                path=path or "/",
                secure=_flag(secure, number, "secure", source),
                expires=expiry if math.isfinite(expiry) else 0.0,
            )
        )
    return cookies


def read_storage_state(data: bytes, source: str) -> StorageState:
    """Playwright's storage state (``context.storage_state(path=...)``): cookies, and each
    origin's localStorage."""
    try:
        state = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise CookieFileError(f"{source} is not a JSON storage state{position}") from None
    if not isinstance(state, dict):
        raise CookieFileError(f"{source} is not a storage state (a JSON object expected)")
    cookies = [
        _state_cookie(item, n, source) for n, item in enumerate(_list(state, "cookies", source))
    ]
    storage: dict[str, tuple[tuple[str, str], ...]] = {}
    for n, item in enumerate(_list(state, "origins", source)):
        if not isinstance(item, dict) or not isinstance(item.get("origin"), str):
            raise CookieFileError(f"{source}: origins[{n}] has no origin")
        pairs = _pairs(item.get("localStorage", []), f"{source}: origins[{n}].localStorage")
        storage[item["origin"].rstrip("/").lower()] = pairs
    return StorageState(cookies=tuple(cookies), local_storage=storage)


def _check_sendable(name: str, value: str, where: str) -> None:
    if not (_SENDABLE.match(name) and _SENDABLE.match(value)) or "=" in name:
        raise CookieFileError(
            f"{where}: a cookie's name or value has characters a Cookie header cannot carry "
            "(control characters, non-ASCII or ';')"
        )


def _list(state: dict[str, object], key: str, source: str) -> Sequence[object]:
    value = state.get(key, [])
    if not isinstance(value, list):
        raise CookieFileError(f"{source}: {key} must be a list")
    return value


def _pairs(items: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        raise CookieFileError(f"{where} must be a list")
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) for key in ("name", "value")
        ):
            raise CookieFileError(f"{where}: every item needs a name and a value (strings)")
        pairs.append((item["name"], item["value"]))
    return tuple(pairs)


def _state_cookie(item: object, n: int, source: str) -> Cookie:
    if not isinstance(item, dict) or not all(
        isinstance(item.get(key), str) for key in ("name", "value", "domain")
    ):
        raise CookieFileError(f"{source}: cookies[{n}] needs a name, a value and a domain")
    domain = item["domain"]
    expires = item.get("expires", -1)
    _check_sendable(item["name"], item["value"], f"{source}: cookies[{n}]")
    return Cookie(
        name=item["name"],
        value=item["value"],
        domain=domain.lower().lstrip("."),
        include_subdomains=domain.startswith("."),  # Playwright: a leading dot = a domain cookie
        path=str(item.get("path") or "/"),
        secure=bool(item.get("secure", False)),
        expires=float(expires) if isinstance(expires, int | float) and expires > 0 else 0.0,
    )
