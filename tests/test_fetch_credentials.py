"""Credentials for private docs (fetch/credentials.py): read once, sent only to their exact
origin, on every hop decided by that hop's own URL, and named (never shown) when refused.

Unit tests: ``httpx.MockTransport`` records what each request carried. The oracle for "the
same origin" is written here from RFC 6454 (scheme, host, port with its default), not taken
from the code under test.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.config import CrawlConfig
from crawl4ai_llm_docs.errors import ConfigError
from crawl4ai_llm_docs.fetch.credentials import (
    OriginAuth,
    credentials_of,
    load_credentials,
)
from crawl4ai_llm_docs.fetch.http import FetchFailure, fetch
from crawl4ai_llm_docs.fetch.redirects import follow

TOKEN = "tok-3f9a-SECRET-VALUE"
COOKIE = "cookie-77c1-SECRET"


def crawl(*auth: dict[str, object]) -> CrawlConfig:
    return msgspec.convert({"auth": list(auth)}, CrawlConfig)


def same_origin(a: str, b: str) -> bool:
    def key(url: str) -> tuple[str, str, int]:
        parts = urlsplit(url)
        default = {"http": 80, "https": 443}[parts.scheme.lower()]
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default

    return key(a) == key(b)


ORIGIN = "https://docs.example.com"
schemes = st.sampled_from(("http", "https", "HTTPS"))
hosts = st.sampled_from(
    ("docs.example.com", "DOCS.example.com", "example.com", "docs.example.com.evil.net")
)
ports = st.sampled_from(("", ":443", ":80", ":8443"))
paths = st.sampled_from(("", "/", "/guide/install.html", "/a?q=1#frag"))


@settings(deadline=None)  # correctness, not speed: a busy machine is slow
@given(scheme=schemes, host=hosts, port=ports, path=paths)
def test_a_request_carries_credentials_only_to_the_exact_origin(
    scheme: str, host: str, port: str, path: str
) -> None:
    credentials = load_credentials(
        crawl({"origin": ORIGIN, "headers": {"Authorization": "Bearer ${T}"}}),
        environ={"T": TOKEN},
    )
    url = f"{scheme}://{host}{port}{path}"
    sent = credentials.headers_for(url)
    if same_origin(url, ORIGIN):
        assert sent == {"Authorization": f"Bearer {TOKEN}"}
    else:
        assert sent == {}


def _recording_client(routes: dict[str, httpx.Response], seen: list[httpx.Request], auth):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return routes[str(request.url)]

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth)


async def test_a_redirect_to_another_origin_carries_none(tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(f"docs.example.com\tFALSE\t/\tFALSE\t0\tsid\t{COOKIE}\n")
    credentials = load_credentials(
        crawl(
            {
                "origin": ORIGIN,
                "headers": {"X-Docs-Token": "${T}"},
                "cookies_file": str(cookies),
            }
        ),
        environ={"T": TOKEN},
    )
    chain = [
        f"{ORIGIN}/start.html",
        "http://docs.example.com/plain.html",  # another scheme
        "https://docs.example.com:8443/port.html",  # another port
        "https://cdn.example.com/asset.html",  # another host
        f"{ORIGIN}/back.html",  # the origin again
    ]
    routes = {
        url: httpx.Response(302, headers={"location": nxt})
        for url, nxt in itertools.pairwise(chain)
    }
    routes[chain[-1]] = httpx.Response(200, text="<p>ok</p>", headers={"content-type": "text/html"})
    seen: list[httpx.Request] = []
    async with (
        _recording_client(routes, seen, OriginAuth(credentials)) as client,
        follow(client, chain[0]) as response,
    ):
        assert response.status_code == 200
    assert [str(r.url) for r in seen] == chain
    for request in seen:
        mine = same_origin(str(request.url), ORIGIN)
        assert (request.headers.get("x-docs-token") == TOKEN) is mine, request.url
        assert (request.headers.get("cookie") == f"sid={COOKIE}") is mine, request.url
        if not mine:
            assert TOKEN not in str(request.headers)
            assert COOKIE not in str(request.headers)


async def test_a_refusal_names_the_credential_and_how_to_refresh_it() -> None:
    credentials = load_credentials(
        crawl({"origin": ORIGIN, "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}),
        environ={"DOCS_TOKEN": TOKEN},
    )
    routes = {
        f"{ORIGIN}/private.html": httpx.Response(401),
        f"{ORIGIN}/forbidden.html": httpx.Response(403),
        "https://public.example.org/login.html": httpx.Response(401),
        "https://public.example.org/bot-wall.html": httpx.Response(403),
    }
    async with _recording_client(routes, [], OriginAuth(credentials)) as client:
        assert credentials_of(client) is credentials
        reasons = {}
        for url in routes:
            with pytest.raises(FetchFailure) as failed:
                await fetch(client, url, max_bytes=10_000)
            reasons[url.rsplit("/", 1)[1]] = failed.value.reason
            assert TOKEN not in str(failed.value)
    for name in ("private.html", "forbidden.html"):
        assert "header Authorization (from Bearer ${DOCS_TOKEN})" in reasons[name]
        assert "export a fresh value in DOCS_TOKEN" in reasons[name]
    assert reasons["private.html"].startswith("HTTP 401 Unauthorized")
    assert "[[crawl.auth]]" in reasons["login.html"]  # no credential: how to add one
    assert reasons["bot-wall.html"] == "HTTP 403 Forbidden"  # a public 403 is left alone


def test_values_come_from_the_environment_and_are_all_secrets(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        f'{{"cookies": [{{"name": "sid", "value": "{COOKIE}", "domain": "docs.example.com",'
        ' "path": "/"}], "origins": [{"origin": "https://docs.example.com",'
        ' "localStorage": [{"name": "jwt", "value": "jwt-secret-1"}]}]}'
    )
    credentials = load_credentials(
        crawl(
            {
                "origin": "HTTPS://Docs.Example.com:443/",
                "headers": {"Authorization": "Bearer ${A}${B}", "X-Plain": "literal-secret"},
                "storage_state": str(state),
            }
        ),
        environ={"A": "part1", "B": "part2"},
    )
    entry = credentials.for_url(f"{ORIGIN}/x")
    assert entry is not None
    assert entry.headers["Authorization"] == "Bearer part1part2"
    assert set(credentials.secrets) >= {
        "Bearer part1part2",
        "literal-secret",
        COOKIE,
        "jwt-secret-1",
    }
    assert credentials.headers_for(f"{ORIGIN}/x")["Cookie"] == f"sid={COOKIE}"
    assert entry.local_storage == (("jwt", "jwt-secret-1"),)


@pytest.mark.parametrize(
    ("environ", "says"),
    [({}, "is not set"), ({"DOCS_TOKEN": ""}, "is empty")],
)
def test_a_missing_variable_stops_with_the_key_origin_and_variable(
    environ: dict[str, str], says: str
) -> None:
    config = crawl({"origin": ORIGIN, "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}})
    with pytest.raises(ConfigError) as raised:
        load_credentials(config, source="/home/u/c.toml:12", environ=environ)
    message = str(raised.value)
    for part in ("crawl.auth", ORIGIN, "header Authorization", "${DOCS_TOKEN}", says, "c.toml:12"):
        assert part in message


def test_cookie_files_that_cannot_work_are_refused_at_start(tmp_path: Path) -> None:
    now = time.time()
    other = tmp_path / "other.txt"
    other.write_text(f".other.org\tTRUE\t/\tFALSE\t0\tsid\t{COOKIE}\n")
    stale = tmp_path / "stale.txt"
    stale.write_text(f"docs.example.com\tFALSE\t/\tFALSE\t{int(now) - 86400}\tsid\t{COOKIE}\n")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(
        f"docs.example.com\tFALSE\t/\tFALSE\t{int(now) - 86400}\told\t{COOKIE}\n"
        f"docs.example.com\tFALSE\t/\tFALSE\t0\tsid\tfresh-value\n"
    )
    cases = {
        tmp_path / "missing.txt": "does not exist",
        other: "has no cookie for docs.example.com (it has cookies for other.org)",
        stale: "every cookie for docs.example.com",
    }
    for path, says in cases.items():
        with pytest.raises(ConfigError) as raised:
            load_credentials(crawl({"origin": ORIGIN, "cookies_file": str(path)}), now=now)
        assert says in str(raised.value)
        assert COOKIE not in str(raised.value)
    loaded = load_credentials(crawl({"origin": ORIGIN, "cookies_file": str(mixed)}), now=now)
    assert loaded.headers_for(ORIGIN + "/") == {"Cookie": "sid=fresh-value"}
    assert len(loaded.warnings) == 1
    assert "1 expired cookie(s)" in loaded.warnings[0]


async def test_cookies_the_site_sets_are_kept_beside_ours(tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        f"docs.example.com\tFALSE\t/\tFALSE\t0\tsid\t{COOKIE}\n"
        "docs.example.com\tFALSE\t/\tFALSE\t0\tlang\ten\n"
    )
    credentials = load_credentials(crawl({"origin": ORIGIN, "cookies_file": str(cookies)}))
    first = httpx.Response(
        200,
        headers=[("set-cookie", "sid=rotated; Path=/"), ("set-cookie", "theme=dark; Path=/")],
    )
    routes = {f"{ORIGIN}/a.html": first, f"{ORIGIN}/b.html": httpx.Response(200)}
    seen: list[httpx.Request] = []
    async with _recording_client(routes, seen, OriginAuth(credentials)) as client:
        for url in routes:
            async with follow(client, url):
                pass
    assert seen[0].headers["cookie"] == f"sid={COOKIE}; lang=en"
    sent = dict(pair.split("=", 1) for pair in seen[1].headers["cookie"].split("; "))
    assert sent == {"sid": "rotated", "theme": "dark", "lang": "en"}  # as a browser's jar


def test_values_a_request_could_not_carry_are_refused_without_showing_them(
    tmp_path: Path,
) -> None:
    """Else the request would fail with the value in its error message (and the report)."""
    config = crawl({"origin": ORIGIN, "headers": {"Authorization": "Bearer ${T}"}})
    for bad in (f"{TOKEN}\x01", f"{TOKEN}é", f"{TOKEN}\x7f"):
        with pytest.raises(ConfigError) as raised:
            load_credentials(config, environ={"T": bad})
        assert "characters a header cannot carry" in str(raised.value)
        assert TOKEN not in str(raised.value)
    cookies = tmp_path / "cookies.txt"
    for value in (f"{COOKIE}\x01", f"{COOKIE};x=1", f"{COOKIE}é"):
        cookies.write_text(f"docs.example.com\tFALSE\t/\tFALSE\t0\tsid\t{value}\n")
        with pytest.raises(ConfigError) as raised:
            load_credentials(crawl({"origin": ORIGIN, "cookies_file": str(cookies)}))
        assert "cannot carry" in str(raised.value)
        assert COOKIE not in str(raised.value)
