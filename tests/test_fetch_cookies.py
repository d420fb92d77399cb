"""Cookies exported from a browser (fetch/cookies.py) are read and sent as a browser would.

The oracle is the standard library's own cookie jar: ``http.cookiejar.MozillaCookieJar``
reads the same cookies.txt, and its ``add_cookie_header`` decides which cookies a request to
a URL carries (domain and path matching, secure only over https). It differs from RFC 6265
(and curl, and browsers) in one way: it sends a host-only cookie to subdomains too (the old
Netscape tail match); that case is left out of the comparison and asserted on its own.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.fetch.cookies import (
    CookieFileError,
    cookie_header,
    read_netscape,
    read_storage_state,
)

HOSTS = ("example.com", "docs.example.com", "a.docs.example.com", "example.org")
PATHS = ("/", "/docs", "/docs/", "/docs/api", "/docsx", "/other/page")
NAMES = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
FAR_FUTURE = 4_102_444_800  # 2100-01-01
VALUES = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1, max_size=16)

cookie_lines = st.lists(
    st.tuples(
        st.sampled_from(HOSTS),
        st.booleans(),  # a domain cookie (leading dot, subdomains included)
        st.sampled_from(PATHS),
        st.booleans(),  # secure
        NAMES,
        VALUES,
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda line: line[4],  # one cookie per name: the jar keys on more than the name
)


def _netscape(lines: list[tuple[str, bool, str, bool, str, str]], *, http_only: bool) -> str:
    out = ["# Netscape HTTP Cookie File", "# written by a test", ""]
    for host, domain, path, secure, name, value in lines:
        prefix = "#HttpOnly_" if http_only else ""
        host_field = f".{host}" if domain else host
        flags = "TRUE" if domain else "FALSE", "TRUE" if secure else "FALSE"
        expires = FAR_FUTURE  # the jar treats 0 as expired at send time (ours: a session)
        out.append(
            f"{prefix}{host_field}\t{flags[0]}\t{path}\t{flags[1]}\t{expires}\t{name}\t{value}"
        )
    return "\n".join(out) + "\n"


def _jar(text: str, tmp: Path) -> http.cookiejar.MozillaCookieJar:
    path = tmp / "cookies.txt"
    path.write_text(text)
    jar = http.cookiejar.MozillaCookieJar()
    jar.load(str(path), ignore_discard=True, ignore_expires=True)
    return jar


def _sent_by_jar(jar: http.cookiejar.CookieJar, url: str) -> set[str]:
    request = urllib.request.Request(url)
    jar.add_cookie_header(request)
    header = request.get_header("Cookie") or ""
    return {part.split("=", 1)[0] for part in header.split("; ") if part}


@settings(
    deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=cookie_lines,
    scheme=st.sampled_from(("http", "https")),
    host=st.sampled_from(HOSTS),
    path=st.sampled_from(PATHS),
)
def test_the_cookies_sent_are_the_ones_the_standard_library_jar_sends(
    tmp_path: Path,
    lines: list[tuple[str, bool, str, bool, str, str]],
    scheme: str,
    host: str,
    path: str,
) -> None:
    assume(
        not any(
            not domain and host.endswith("." + cookie_host) for cookie_host, domain, *_ in lines
        )
    )
    text = _netscape(lines, http_only=False)
    cookies = read_netscape(text, "cookies.txt")
    ours = cookie_header(cookies, scheme, host, path)
    sent = {part.split("=", 1)[0] for part in ours.split("; ") if part}
    assert sent == _sent_by_jar(_jar(text, tmp_path), f"{scheme}://{host}{path}")
    # Longer paths first, as browsers order them.
    paths = {cookie.name: cookie.path for cookie in cookies}
    order = [len(paths[part.split("=", 1)[0]]) for part in ours.split("; ") if part]
    assert order == sorted(order, reverse=True)


@settings(
    deadline=None, max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=cookie_lines)
def test_cookies_txt_reads_as_the_standard_library_reads_it(
    tmp_path: Path, lines: list[tuple[str, bool, str, bool, str, str]]
) -> None:
    text = _netscape(lines, http_only=True)  # curl's #HttpOnly_ lines are cookies, not comments
    ours = {(c.domain, c.path, c.name, c.value, c.secure) for c in read_netscape(text, "c.txt")}
    theirs = {
        (c.domain.lstrip("."), c.path, c.name, c.value or "", c.secure)
        for c in _jar(text.replace("#HttpOnly_", ""), tmp_path)
    }
    assert ours == theirs


def test_a_host_only_cookie_stays_on_its_host() -> None:
    """RFC 6265 5.3: without the subdomains flag a cookie goes to its exact host only."""
    cookies = read_netscape("example.com\tFALSE\t/\tFALSE\t0\tsid\tS\n", "c.txt")
    assert cookie_header(cookies, "https", "example.com", "/") == "sid=S"
    assert cookie_header(cookies, "https", "docs.example.com", "/") == ""
    wide = read_netscape(".example.com\tTRUE\t/\tFALSE\t0\tsid\tS\n", "c.txt")
    assert cookie_header(wide, "https", "docs.example.com", "/") == "sid=S"
    assert cookie_header(wide, "https", "badexample.com", "/") == ""


def test_expiry_and_empty_values_and_crlf() -> None:
    text = (
        "example.com\tFALSE\t/\tFALSE\t1700000000\told\tgone\r\n"
        "example.com\tFALSE\t/\tFALSE\t0\tsession\r\n"  # an empty value, its tab dropped
    )
    old, session = read_netscape(text, "c.txt")
    assert old.expired(1_800_000_000)
    assert not old.expired(1_600_000_000)
    assert (session.name, session.value, session.expired(2e9)) == ("session", "", False)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("example.com\tFALSE\t/\tFALSE\t0", "expected 7 tab-separated fields"),
        ("example.com\tMAYBE\t/\tFALSE\t0\tname\tSECRETVALUE", "subdomains field must be TRUE"),
        ("example.com\tFALSE\t/\tFALSE\tsoon\tname\tSECRETVALUE", "expires field"),
        ("\tFALSE\t/\tFALSE\t0\tname\tSECRETVALUE", "needs a domain and a name"),
    ],
)
def test_a_broken_line_is_named_without_its_value(line: str, says: str) -> None:
    with pytest.raises(CookieFileError) as raised:
        read_netscape(f"# header\n{line}\n", "cookies.txt")
    assert says in str(raised.value)
    assert "cookies.txt line 2" in str(raised.value)
    assert "SECRETVALUE" not in str(raised.value)


def test_a_playwright_storage_state_gives_cookies_and_local_storage() -> None:
    state = {
        "cookies": [
            {
                "name": "sid",
                "value": "S1",
                "domain": ".example.com",
                "path": "/",
                "expires": -1,
                "httpOnly": True,
                "secure": False,
                "sameSite": "Lax",
            },
            {"name": "host", "value": "H1", "domain": "docs.example.com", "path": "/docs"},
        ],
        "origins": [
            {"origin": "https://docs.example.com", "localStorage": [{"name": "t", "value": "v"}]}
        ],
    }
    read = read_storage_state(json.dumps(state).encode(), "state.json")
    assert cookie_header(read.cookies, "http", "docs.example.com", "/docs/x") == "host=H1; sid=S1"
    assert cookie_header(read.cookies, "http", "other.example.com", "/docs/x") == "sid=S1"
    assert read.local_storage == {"https://docs.example.com": (("t", "v"),)}


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"cookies": {}}', b'{"cookies": [{"name": "a"}]}'],
)
def test_a_broken_storage_state_is_refused_with_where(data: bytes) -> None:
    with pytest.raises(CookieFileError, match=r"state\.json"):
        read_storage_state(data, "state.json")
