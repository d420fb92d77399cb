"""Private docs through the real CLI (issue 26): pages behind a header and behind a cookie
are crawled with the credential, a redirect to another origin carries none (asserted from
that server's request log), and no credential appears in any file, log or console output of
the run (every file under the test's directory is searched, the credential files aside).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import API_KEY, Result, cli_env, files_under, run_cli, sections, write_urls

from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, run_in_thread
from crawl4ai_llm_docs.testing.site.pages import LOCAL_STORAGE_KEY, LOCAL_STORAGE_TEXT
from crawl4ai_llm_docs.testing.site.server import (
    SPECIAL_PATHS,
    SiteConfig,
    SiteHandle,
    run_site_in_thread,
)

TOKEN = "docs-token-4c1f9e-SECRET"
SESSION = "session-8b2d77-SECRET"
needs_browser = pytest.mark.skipif(
    not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
    reason="no Chromium on PATH",
)


@dataclass
class Sites:
    header: SiteHandle  # every path needs Authorization: Bearer TOKEN
    cookie: SiteHandle  # every path needs the session cookie
    public: SiteHandle  # where the header site's /docs/away.html redirects
    provider: FakeProvider
    tmp: Path
    secrets: Path  # the credential files: the one place the secrets may be

    def config(self, extra: str = "") -> Path:
        cookies = self.secrets / "cookies.txt"
        cookies.write_text(
            "# Netscape HTTP Cookie File\n"
            f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{SESSION}\n"
            f"other.example\tFALSE\t/\tFALSE\t0\tsession\tnot-for-this-origin\n"
        )
        path = self.tmp / "config.toml"
        path.write_text(
            f'[[crawl.auth]]\norigin = "{self.header.base_url}"\n'
            'headers = { Authorization = "Bearer ${DOCS_TOKEN}" }\n\n'
            f'[[crawl.auth]]\norigin = "{self.cookie.base_url}"\ncookies_file = "{cookies}"\n'
            + extra
        )
        return path

    def urls(self, *extra: str) -> Path:
        listed = [
            self.header.url("/docs/page-000.html"),
            self.header.url("/docs/page-001.html"),
            self.header.url("/docs/away.html"),
            self.cookie.url("/docs/page-000.html"),
            self.cookie.url("/docs/page-001.html"),
            *extra,
        ]
        return write_urls(self.tmp / "urls.txt", listed)

    def run(self, *args: str, token: str | None = TOKEN, **env: str) -> Result:
        extra = {"DOCS_TOKEN": token} if token is not None else {}
        return run_cli(args, cwd=self.tmp, env=cli_env(self.tmp, **extra, **env))


@contextmanager
def private_sites(tmp: Path) -> Iterator[Sites]:
    with ExitStack() as stack:
        public = stack.enter_context(run_site_in_thread(SiteConfig(pages=2)))
        header = stack.enter_context(
            run_site_in_thread(
                SiteConfig(
                    pages=2,
                    require_header={"Authorization": f"Bearer {TOKEN}"},
                    redirects={"/docs/away.html": public.url("/docs/page-000.html")},
                )
            )
        )
        cookie = stack.enter_context(
            run_site_in_thread(SiteConfig(pages=2, require_cookies={"session": SESSION}))
        )
        provider = stack.enter_context(run_in_thread(make_config({})))
        secrets = tmp / "secrets"
        secrets.mkdir()
        yield Sites(header, cookie, public, provider, tmp, secrets)


def _no_secret_anywhere(sites: Sites, result: Result, *secrets: str, written: Path) -> None:
    """No secret in any file but the credential files, nor in the console; ``written`` (an
    output of the run) must be among the files searched."""
    searched = set()
    for path in files_under(sites.tmp):
        if sites.secrets in path.parents:
            continue
        data = path.read_bytes()
        searched.add(path)
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} found in {path}"
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
    assert written in searched


def _credentials_seen(site: SiteHandle) -> set[tuple[str | None, str | None]]:
    return {(r.headers.get("authorization"), r.cookies().get("session")) for r in site.request_log}


def test_private_pages_are_crawled_and_no_credential_leaves_its_origin(tmp_path: Path) -> None:
    with private_sites(tmp_path) as sites:
        output = tmp_path / "out" / "docs.md"
        result = sites.run(
            str(sites.urls()),
            "-o",
            str(output),
            "--config",
            str(sites.config()),
            "--crawler",
            "http",
            "--no-progress",
            "--base-url",
            sites.provider.base_url,
            "--log-json",
            str(tmp_path / "log.jsonl"),
            "--log-level",
            "debug",
            "--pages-dir",
            str(tmp_path / "pages"),
            "--llms-txt",
            str(tmp_path / "llms"),
            OPENAI_API_KEY=API_KEY,
        )
        assert result.code == 0, result
        assert len(sections(output.read_text())) == 5  # every page, the redirected one too
        assert _credentials_seen(sites.header) == {(f"Bearer {TOKEN}", None)}
        assert _credentials_seen(sites.cookie) == {(None, SESSION)}
        assert [r.path for r in sites.public.request_log] == ["/docs/page-000.html"]
        assert _credentials_seen(sites.public) == {(None, None)}  # the redirect carried none
        _no_secret_anywhere(sites, result, TOKEN, SESSION, written=output)


def test_a_refused_credential_is_named_with_how_to_refresh_it(tmp_path: Path) -> None:
    wrong = "expired-token-0d3a-SECRET"
    with private_sites(tmp_path) as sites:
        output = tmp_path / "docs.md"
        result = sites.run(
            str(sites.urls()),
            "-o",
            str(output),
            "--config",
            str(sites.config()),
            "--crawler",
            "http",
            "--no-progress",
            "--no-llm",
            token=wrong,
        )
        assert result.code == 1, result
        report = json.loads(output.with_suffix(".report.json").read_text())
        reasons = [reason for _, reason in report["failures"]]
        assert len(reasons) == 3  # the header site's pages and its redirect
        for reason in reasons:
            assert reason.startswith("HTTP 401 Unauthorized: ")
            assert "header Authorization (from Bearer ${DOCS_TOKEN})" in reason
            assert "export a fresh value in DOCS_TOKEN" in reason
        assert len(sections(output.read_text())) == 2  # the cookie site's pages
        _no_secret_anywhere(sites, result, wrong, SESSION, written=output)


def test_an_unset_variable_stops_before_anything_is_fetched(tmp_path: Path) -> None:
    with private_sites(tmp_path) as sites:
        output = tmp_path / "docs.md"
        args = [str(sites.urls()), "-o", str(output), "--config", str(sites.config())]
        result = sites.run(*args, "--no-llm", "--no-progress", token=None)
        assert result.code == 2, result
        for part in ("[[crawl.auth]]", sites.header.base_url, "${DOCS_TOKEN}", "is not set"):
            assert part in " ".join(result.stderr.split())
        assert not output.exists()
        assert sites.header.request_log == []
        shown = sites.run(
            "config",
            "show",
            "--config",
            str(sites.config('headers = { X-Literal = "lit-3d9e-SECRET" }\n')),
        )
        assert shown.code == 0, shown
        assert 'Authorization = "Bearer ${DOCS_TOKEN}"' in shown.stdout
        assert "lit-3d9e-SECRET" not in shown.stdout
        assert 'X-Literal = "[REDACTED]"' in shown.stdout


def test_map_reads_a_private_site_with_its_credential(tmp_path: Path) -> None:
    with private_sites(tmp_path) as sites:
        out = tmp_path / "urls-found.txt"
        root = sites.header.url("/docs/")
        result = sites.run("map", root, "-o", str(out), "--config", str(sites.config()))
        assert result.code == 0, result
        assert sites.header.url("/docs/page-001.html") in out.read_text()
        assert {r.path for r in sites.header.request_log} >= {"/robots.txt", "/docs/"}
        assert _credentials_seen(sites.header) == {(f"Bearer {TOKEN}", None)}
        _no_secret_anywhere(sites, result, TOKEN, SESSION, written=out)


def test_a_storage_state_gives_its_cookies_over_http(tmp_path: Path) -> None:
    with private_sites(tmp_path) as sites:
        state = sites.secrets / "state.json"
        state.write_text(
            json.dumps(
                {
                    "cookies": [
                        {"name": "session", "value": SESSION, "domain": "127.0.0.1", "path": "/"}
                    ],
                    "origins": [],
                }
            )
        )
        config = tmp_path / "state.toml"
        config.write_text(
            f'[[crawl.auth]]\norigin = "{sites.cookie.base_url}"\nstorage_state = "{state}"\n'
        )
        urls = write_urls(tmp_path / "cookie-urls.txt", [sites.cookie.url("/docs/page-000.html")])
        output = tmp_path / "docs.md"
        result = sites.run(
            str(urls),
            "-o",
            str(output),
            "--config",
            str(config),
            "--no-llm",
            "--no-progress",
            "--crawler",
            "http",
            token=None,
        )
        assert result.code == 0, result
        assert _credentials_seen(sites.cookie) == {(None, SESSION)}


@needs_browser
@pytest.mark.browser
def test_browser_mode_sends_credentials_only_to_their_origin(tmp_path: Path) -> None:
    with private_sites(tmp_path) as sites:
        state = sites.secrets / "state.json"
        state.write_text(
            json.dumps(
                {
                    "cookies": [],
                    "origins": [
                        {
                            "origin": sites.public.base_url,
                            "localStorage": [{"name": LOCAL_STORAGE_KEY, "value": SESSION}],
                        }
                    ],
                }
            )
        )
        extra = f'\n[[crawl.auth]]\norigin = "{sites.public.base_url}"\nstorage_state = "{state}"\n'
        urls = sites.urls(sites.public.url(SPECIAL_PATHS["local_storage"]))
        output = tmp_path / "docs.md"
        result = sites.run(
            str(urls),
            "-o",
            str(output),
            "--config",
            str(sites.config(extra)),
            "--no-llm",
            "--no-progress",
            "--crawler",
            "browser",
            "--log-json",
            str(tmp_path / "log.jsonl"),
        )
        assert result.code == 0, result
        text = output.read_text()
        assert len(sections(text)) == 6
        assert LOCAL_STORAGE_TEXT in text  # the page read its session from localStorage
        assert {a for a, _ in _credentials_seen(sites.header)} == {f"Bearer {TOKEN}"}
        assert {c for _, c in _credentials_seen(sites.cookie)} == {SESSION}
        assert _credentials_seen(sites.public) == {(None, None)}
        _no_secret_anywhere(sites, result, TOKEN, SESSION, written=output)
