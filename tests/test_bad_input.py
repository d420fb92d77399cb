"""Issue 8, bad input: every case is one clear paragraph (exit 2), no traceback, nothing written."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from crawl4ai_llm_docs.cli.app import run_cli


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in list(os.environ):
        if name.startswith("CRAWL4AI_LLM_DOCS_") or name in {"OPENAI_BASE_URL", "OPENAI_API_KEY"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def run(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    code = run_cli(argv, stderr=Console(file=buffer, width=300, highlight=False))
    return code, buffer.getvalue()


def assert_refused(code: int, text: str, *fragments: str) -> None:
    assert code == 2, text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, text


def outputs(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*.md")] + [p for p in tmp_path.rglob("*.report.json")]


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"", ["contains no valid URL", "one http(s) URL per line"]),
        (b"\n\n# nothing here\n", ["contains no valid URL"]),
        (b"\x7fELF\x00\x00\x00binary", ["looks binary", "NUL bytes"]),
        (
            b"file:///etc/passwd\njavascript:alert(1)\n",
            ["Line 1 ('file:///etc/passwd'): unsupported scheme 'file'"],
        ),
        (b"https://user:secret@docs.test/x\n", ["credentials"]),
        (b"docs/relative.html\n", ["relative URL"]),
    ],
)
def test_unusable_url_files(tmp_path: Path, content: bytes, fragments: list[str]) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_bytes(content)
    code, text = run([str(urls), "--no-llm"])
    assert_refused(code, text, str(urls), *fragments)
    assert outputs(tmp_path) == []


def test_credentials_never_echoed(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("https://user:hunter2-SECRET@docs.test/x\n")
    code, text = run([str(urls), "--no-llm"])
    assert code == 2
    assert "hunter2-SECRET" not in text
    assert "https://***@docs.test/x" in text
    assert "remove them" in text


def test_missing_url_file(tmp_path: Path) -> None:
    code, text = run([str(tmp_path / "nope.txt")])
    assert_refused(code, text, "does not exist")


def test_url_file_is_a_directory(tmp_path: Path) -> None:
    code, text = run([str(tmp_path)])
    assert_refused(code, text, "is a directory")


def test_output_is_a_directory(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    (tmp_path / "out").mkdir()
    code, text = run([str(urls), "--no-llm", "-o", str(tmp_path / "out")])
    assert_refused(code, text, "is a directory", "-o")


def test_output_under_a_file(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    (tmp_path / "file").write_text("x")
    code, text = run([str(urls), "--no-llm", "-o", str(tmp_path / "file" / "docs.md")])
    assert_refused(code, text, "is a file")


def test_llms_txt_dir_is_a_file(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    (tmp_path / "llms").write_text("x")
    code, text = run([str(urls), "--no-llm", "--llms-txt", str(tmp_path / "llms")])
    assert_refused(code, text, "--llms-txt", "not a directory")


def test_output_same_as_url_file(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    code, text = run([str(urls), "--no-llm", "-o", str(urls)])
    assert_refused(code, text, "URL file itself")
    assert urls.read_text() == "http://127.0.0.1:9/x\n"


def test_no_api_key_for_openai_is_explained(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    code, text = run([str(urls)])
    assert_refused(code, text, "OPENAI_API_KEY", "--no-llm")
    assert outputs(tmp_path) == []


@pytest.mark.parametrize(
    ("config_text", "fragments"),
    [
        (
            '[parallel]\nmax_concurrent_requests = "lots"\n',
            ["parallel.max_concurrent_requests", "'lots'", "cfg.toml:2"],
        ),
        (
            "[parallel]\nmax_concurent_requests = 4\n",
            ["Did you mean 'parallel.max_concurrent_requests'", "cfg.toml:2"],
        ),
        ("[crawl]\nmax_concurrent = 64\n", ["crawl.max_concurrent = 64", "<= 16"]),
        ("not toml at all [", ["not valid TOML"]),
    ],
)
def test_bad_config_files(tmp_path: Path, config_text: str, fragments: list[str]) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    config = tmp_path / "cfg.toml"
    config.write_text(config_text)
    code, text = run([str(urls), "--no-llm", "--config", str(config)])
    assert_refused(code, text, *fragments)
    assert outputs(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CRAWL4AI_LLM_DOCS_PARALLEL__REQUEST_TIMEOUT", "soon", "is not a number"),
        ("CRAWL4AI_LLM_DOCS_PARALLEL__ENABLE_CIRCUIT_BREAKER", "perhaps", "true or false"),
        ("CRAWL4AI_LLM_DOCS_CRAWL__MODE", "turbo", "one of 'auto', 'http', 'browser'"),
        ("CRAWL4AI_LLM_DOCS_NOPE__X", "1", "does not name a setting"),
    ],
)
def test_garbage_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    monkeypatch.setenv(name, value)
    code, text = run([str(urls), "--no-llm"])
    assert_refused(code, text, name, fragment)


def test_pages_dir_is_a_file(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    (tmp_path / "pages").write_text("x")
    code, text = run([str(urls), "--no-llm", "--pages-dir", str(tmp_path / "pages")])
    assert_refused(code, text, "--pages-dir", "not a directory")


def test_max_file_tokens_below_zero(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/x\n")
    code, text = run([str(urls), "--no-llm", "--max-file-tokens", "-5"])
    assert_refused(code, text, "max_file_tokens", "--max-file-tokens")
