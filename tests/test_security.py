"""Security through the real CLI: the API key never leaves the process except to the provider,
nothing but http(s) is ever fetched, TLS is verified unless ``--insecure`` says otherwise, and
files that hold provider responses are private.

"Leaked" means any 12 characters of the key in a row, anywhere the run wrote: stdout, stderr,
the JSON log, the output, the report, llms.txt, the cache and crawl4ai's own directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e_support import API_KEY, Result, Setup, failed_section, files_under, running, sections
from faults_support import (
    Reply,
    Request,
    StubServer,
    cache_entries,
    cache_root,
    completion_reply,
    html_reply,
    json_reply,
    self_signed_cert,
)

from crawl4ai_llm_docs.crawl.browser import find_chromium

pytestmark = pytest.mark.slow

WINDOW = 12
ONE_RETRY = {"CRAWL4AI_LLM_DOCS_LLM__MAX_RETRIES": "1"}


def _leaks(setup: Setup, *results: Result) -> dict[str, set[str]]:
    """Where pieces of the key were found: {file or stream: the pieces}."""
    pieces = {API_KEY[i : i + WINDOW] for i in range(len(API_KEY) - WINDOW + 1)}
    texts = {f"stdout/stderr of run {n}": r.stdout + r.stderr for n, r in enumerate(results)}
    for path in files_under(setup.tmp):
        texts[str(path.relative_to(setup.tmp))] = path.read_bytes().decode("utf-8", "replace")
    found = {where: {p for p in pieces if p in text} for where, text in texts.items()}
    return {where: hits for where, hits in found.items() if hits}


def _log_args(setup: Setup) -> tuple[str, ...]:
    return ("--log-json", str(setup.tmp / "logs" / "run.jsonl"), "--log-level", "debug")


# ---------------------------------------------------------------- the API key


def test_the_key_is_sent_to_the_provider_and_written_nowhere(tmp_path: Path) -> None:
    # The provider insists on the key, and faults make every retry and warning path run.
    provider = {"require_api_key": API_KEY, "error_rate": 0.2, "drop_rate": 0.1, "seed": 4}
    with running(tmp_path, pages=4, provider=provider) as setup:
        result = setup.run(*setup.args(*_log_args(setup), "--llms-txt", str(tmp_path / "llms")))
        shown = setup.run("config", "show")
        stats = setup.provider.stats()
    assert result.code == 0, result
    assert stats.successes == 4  # the key was accepted, so it was sent
    assert sum(stats.injected.values()) > 0
    assert shown.code == 0, shown
    assert (tmp_path / "logs" / "run.jsonl").stat().st_size > 0
    assert _leaks(setup, result, shown) == {}


def _echoing(status: int, *, pad: int = 0) -> Any:
    """A provider that copies the Authorization header into its error message."""

    def handler(request: Request) -> Reply:
        message = "x" * pad + f"Invalid header: {request.headers.get('authorization', '')}"
        error = {"message": message, "type": "invalid_request_error", "code": None}
        return json_reply(status, {"error": error})

    return handler


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(401, 3, id="401-fatal"),
        pytest.param(400, 1, id="400-chunk-failed"),
        pytest.param(500, 1, id="500-retried-then-failed"),
    ],
)
def test_a_provider_echoing_the_key_in_an_error_does_not_leak_it(
    tmp_path: Path, status: int, code: int
) -> None:
    with StubServer(_echoing(status)).running() as stub, running(tmp_path, pages=2) as setup:
        args = setup.args("--base-url", f"{stub.url}/v1", *_log_args(setup), llm=False)
        result = setup.run(*args, env={**setup.env, **ONE_RETRY})
    assert result.code == code, result
    assert stub.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert "Invalid header" in failed_section(setup.output.read_text())  # the reason is shown
    assert _leaks(setup, result) == {}


def test_the_fake_providers_own_401_masks_the_key(tmp_path: Path) -> None:
    with running(tmp_path, pages=2, provider={"require_api_key": "sk-another-key"}) as setup:
        result = setup.run(*setup.args(*_log_args(setup)))
    assert result.code == 3, result
    assert "Incorrect API key provided: sk-t" in result.stderr  # OpenAI's mask: 4 + 4 shown
    assert _leaks(setup, result) == {}


def test_a_key_cut_off_by_the_message_limit_does_not_leak(tmp_path: Path) -> None:
    # The message is cut at 200 characters: put the key across the cut, 3 characters short.
    pad = 200 - len("Invalid header: Bearer ") - (len(API_KEY) - 3)
    with (
        StubServer(_echoing(401, pad=pad)).running() as stub,
        running(tmp_path, pages=2) as setup,
    ):
        result = setup.run(*setup.args("--base-url", f"{stub.url}/v1", llm=False))
    assert result.code == 3, result
    assert _leaks(setup, result) == {}


def test_an_internal_error_traceback_does_not_show_the_key(tmp_path: Path) -> None:
    with running(tmp_path, pages=2) as setup:
        setup.report.mkdir(parents=True)  # the report cannot replace a directory
        result = setup.run(*setup.args(*_log_args(setup)))
    assert result.code != 0, result
    assert _leaks(setup, result) == {}


def test_an_unwritable_report_is_one_clear_message(tmp_path: Path) -> None:
    with running(tmp_path, pages=2) as setup:
        setup.report.mkdir(parents=True)
        result = setup.run(*setup.args())
    assert "Traceback" not in result.stderr, result
    assert "report" in result.stderr.lower()


# ---------------------------------------------------------------- only http(s) is fetched


def _passwd_line() -> str:
    passwd = Path("/etc/passwd")
    if not passwd.exists():
        pytest.skip("no /etc/passwd to protect")
    return passwd.read_text().splitlines()[0]


def test_non_http_urls_in_the_url_file_are_skipped_with_a_warning(tmp_path: Path) -> None:
    secret_line = _passwd_line()
    others = [
        "file:///etc/passwd",
        "FILE:/etc/passwd",
        "ftp://127.0.0.1/etc/passwd",
        "javascript:alert(1)",
        "data:text/html,<h1>x</h1>",
    ]
    with running(tmp_path, pages=1) as setup:
        setup.urls_file.write_text("\n".join([*others, setup.urls[0]]) + "\n")
        result = setup.run(*setup.args())
        only_bad = tmp_path / "bad.txt"
        only_bad.write_text("file:///etc/passwd\n")
        refused = setup.run(str(only_bad), "-o", str(tmp_path / "bad.md"), "--no-progress")
    assert result.code == 0, result
    assert [s.source for s in sections(setup.output.read_text())] == setup.urls[:1]
    assert result.stderr.count("only http and https are crawled") == len(others), result
    assert refused.code == 2, refused
    assert "contains no valid URL" in refused.stderr
    assert not (tmp_path / "bad.md").exists()
    for path in files_under(tmp_path / "out"):
        assert secret_line not in path.read_text()


def _redirecting(request: Request) -> Reply:
    if request.path == "/to-file":
        return Reply(302, b"", (("location", "file:///etc/passwd"),))
    return html_reply(f"<html><body><main><h1>Kept</h1><p>{'word ' * 80}</p></main></body></html>")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        pytest.param("http", "unsupported URL scheme", id="http"),
        pytest.param(
            "browser",
            "ERR_UNSAFE_REDIRECT",
            id="browser",
            marks=[
                pytest.mark.browser,
                pytest.mark.skipif(find_chromium("") is None, reason="no Chromium"),
            ],
        ),
    ],
)
def test_a_redirect_to_a_local_file_is_not_followed(tmp_path: Path, mode: str, reason: str) -> None:
    secret_line = _passwd_line()
    with StubServer(_redirecting).running() as stub, running(tmp_path, pages=1) as setup:
        urls = [f"{stub.url}/to-file", f"{stub.url}/kept"]
        setup.urls_file.write_text("\n".join(urls) + "\n")
        args = [mode if arg == "http" else arg for arg in setup.args()]
        result = setup.run(*args)
    assert result.code == 1, result
    markdown = setup.output.read_text()
    assert [s.source for s in sections(markdown)] == urls[1:]
    assert f"- {urls[0]}: " in failed_section(markdown)
    assert reason in failed_section(markdown)
    assert secret_line not in markdown
    # The docs site never sees the provider's key.
    assert all("authorization" not in r.headers for r in stub.requests)


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("cryptography")
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


INSECURE_WARNING = "--insecure: TLS certificates are not verified"


@pytest.mark.parametrize("insecure", [False, True], ids=["verified", "insecure"])
def test_a_site_with_an_untrusted_certificate(
    tmp_path: Path, cert: tuple[Path, Path], insecure: bool
) -> None:
    with StubServer(_redirecting, cert=cert).running() as site, running(tmp_path) as setup:
        setup.urls_file.write_text(f"{site.url}/kept\n")
        result = setup.run(*setup.args(*(["--insecure"] if insecure else [])))
    markdown = setup.output.read_text()
    if insecure:
        assert result.code == 0, result
        assert INSECURE_WARNING in result.stderr
        assert len(sections(markdown)) == 1
    else:
        assert result.code == 1, result
        assert INSECURE_WARNING not in result.stderr
        assert "TLS certificate verification failed for host 127.0.0.1" in markdown
        assert site.requests == []  # the handshake failed: nothing was sent


@pytest.mark.parametrize("insecure", [False, True], ids=["verified", "insecure"])
def test_a_provider_with_an_untrusted_certificate(
    tmp_path: Path, cert: tuple[Path, Path], insecure: bool
) -> None:
    with (
        StubServer(completion_reply, cert=cert).running() as provider,
        running(tmp_path, pages=2) as setup,
    ):
        flags = ["--base-url", f"{provider.url}/v1", *(["--insecure"] if insecure else [])]
        no_retry = {"CRAWL4AI_LLM_DOCS_LLM__MAX_RETRIES": "0"}
        result = setup.run(*setup.args(*flags, llm=False), env={**setup.env, **no_retry})
    if insecure:
        assert result.code == 0, result
        assert INSECURE_WARNING in result.stderr
        assert len(provider.requests) == 2
    else:
        # Never sent: the key would have gone to whoever holds that certificate.
        assert result.code != 0, result
        assert provider.requests == []


def test_an_untrusted_provider_certificate_stops_the_run_with_a_clear_message(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    with (
        StubServer(completion_reply, cert=cert).running() as provider,
        running(tmp_path, pages=2) as setup,
    ):
        result = setup.run(
            *setup.args("--base-url", f"{provider.url}/v1", llm=False),
            env={**setup.env, **ONE_RETRY},  # keeps today's behaviour to a few seconds
        )
    assert result.code == 3, result
    assert "certificate" in result.stderr.lower(), result


# ---------------------------------------------------------------- file permissions


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)  # inherited by the CLI subprocess
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_holding_provider_answers_are_private(tmp_path: Path) -> None:
    with _umask(0o022), running(tmp_path, pages=2) as setup:
        llms = tmp_path / "llms"
        result = setup.run(*setup.args("--llms-txt", str(llms), *_log_args(setup)))
    assert result.code == 0, result
    private = [
        setup.output,
        setup.report,
        llms / "llms.txt",
        llms / "llms-full.txt",
        tmp_path / "logs" / "run.jsonl",
        *cache_entries(tmp_path),
    ]
    assert len(private) == 7
    assert {str(p): oct(_mode(p)) for p in private} == {str(p): "0o600" for p in private}
    results = cache_root(tmp_path) / "results"
    directories = [results, *(p for p in results.iterdir())]
    assert {str(p): oct(_mode(p)) for p in directories} == {str(p): "0o700" for p in directories}


def test_the_cache_directory_is_private_whatever_the_umask(tmp_path: Path) -> None:
    with _umask(0o000), running(tmp_path, pages=1) as setup:
        result = setup.run(*setup.args())
    assert result.code == 0, result
    assert oct(_mode(cache_root(tmp_path))) == "0o700"
