"""The command line surface: help, flags reaching the config, config subcommands, exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from crawl4ai_llm_docs import __version__, pipeline
from crawl4ai_llm_docs.cli.app import run_cli
from crawl4ai_llm_docs.config import LoadedConfig
from crawl4ai_llm_docs.lifecycle.options import RunOptions

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in list(os.environ):
        if name.startswith("CRAWL4AI_LLM_DOCS_") or name in {"OPENAI_BASE_URL", "OPENAI_API_KEY"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def urls_file(tmp_path: Path) -> Path:
    path = tmp_path / "urls.txt"
    path.write_text("https://docs.test/a\nhttps://docs.test/b\n")
    return path


def capture_errors() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, highlight=False), buffer


class Captured:
    options: RunOptions | None = None
    loaded: LoadedConfig | None = None


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Captured:
    seen = Captured()

    async def fake_run_command(options: RunOptions, loaded: LoadedConfig) -> int:
        seen.options, seen.loaded = options, loaded
        return 0

    monkeypatch.setattr(pipeline, "run_command", fake_run_command)
    return seen


def test_help_lists_every_option_in_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--help"]) == 0
    text = capsys.readouterr().out
    for option in [
        "--output",
        "-o",
        "--llms-txt",
        "--config",
        "--max-concurrent",
        "--crawl-concurrency",
        "--crawler",
        "--model",
        "--base-url",
        "--disable-adaptive-rate-limi",
        "--disable-session-pooling",
        "--disable-circuit-breaker",
        "--progress-interval",
        "--no-progress",
        "--log-json",
        "--log-level",
        "--no-cache",
        "--sequential",
        "--dry-run",
        "--no-llm",
        "--version",
    ]:
        assert option in text, option
    for group in [
        "Output",
        "LLM provider",
        "Parallel processing",
        "Crawling",
        "Progress and logging",
        "Run mode",
    ]:
        assert group in text
    assert "130 interrupted" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_every_flag_reaches_the_config(urls_file: Path, tmp_path: Path, captured: Captured) -> None:
    code = run_cli(
        [
            str(urls_file),
            "-o",
            str(tmp_path / "out.md"),
            "--llms-txt",
            str(tmp_path / "llms"),
            "--max-concurrent",
            "9",
            "--crawl-concurrency",
            "3",
            "--crawler",
            "http",
            "--model",
            "m-x",
            "--base-url",
            "http://127.0.0.1:1/v1",
            "--disable-adaptive-rate-limiting",
            "--disable-session-pooling",
            "--disable-circuit-breaker",
            "--progress-interval",
            "2",
            "--no-progress",
            "--log-json",
            str(tmp_path / "log.jsonl"),
            "--log-level",
            "debug",
            "--no-cache",
            "--sequential",
        ]
    )
    assert code == 0
    assert captured.loaded is not None
    cfg, origins = captured.loaded.config, captured.loaded.origins
    assert cfg.output.path == str(tmp_path / "out.md")
    assert cfg.output.llms_txt_dir == str(tmp_path / "llms")
    assert cfg.parallel.max_concurrent_requests == 9
    assert cfg.crawl.max_concurrent == 3
    assert cfg.crawl.mode == "http"
    assert cfg.llm.model == "m-x"
    assert cfg.llm.base_url == "http://127.0.0.1:1/v1"
    assert cfg.parallel.enable_adaptive_rate_limiting is False
    assert cfg.parallel.enable_session_pooling is False
    assert cfg.parallel.enable_circuit_breaker is False
    assert cfg.parallel.progress_update_interval == 2
    assert cfg.logging.progress is False
    assert cfg.logging.json_file == str(tmp_path / "log.jsonl")
    assert cfg.logging.level == "debug"
    assert cfg.output.cache is False
    assert cfg.parallel.enable_parallel_processing is False
    assert origins["parallel.max_concurrent_requests"] == "flag --max-concurrent"
    assert origins["crawl.mode"] == "flag --crawler"


def test_run_mode_flags(urls_file: Path, captured: Captured) -> None:
    assert run_cli([str(urls_file), "--dry-run"]) == 0
    assert captured.options is not None
    assert captured.options.dry_run
    assert run_cli([str(urls_file), "--no-llm"]) == 0
    assert captured.options.no_llm


def test_dry_run_and_no_llm_conflict(urls_file: Path, captured: Captured) -> None:
    console, buffer = capture_errors()
    assert run_cli([str(urls_file), "--dry-run", "--no-llm"], stderr=console) == 2
    assert "cannot be combined" in buffer.getvalue()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["--max-concurrent", "25"],
            "parallel.max_concurrent_requests = 25 (from flag --max-concurrent)",
        ),
        (["--crawl-concurrency", "0"], "crawl.max_concurrent = 0 (from flag --crawl-concurrency)"),
        (["--progress-interval", "0"], "progress_update_interval"),
        (["--base-url", "not-a-url"], "http:// or https://"),
        (["--crawler", "fast"], "fast"),
        (["--max-concurent", "2"], "--max-concurrent"),
        (["--max-concurrent", "many"], "many"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_message(
    urls_file: Path, captured: Captured, argv: list[str], fragment: str
) -> None:
    console, buffer = capture_errors()
    assert run_cli([str(urls_file), *argv], stderr=console) == 2
    text = buffer.getvalue()
    assert fragment in text
    assert "Traceback" not in text
    assert captured.loaded is None


def test_env_variable_reaches_run(
    urls_file: Path, captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONCURRENT_REQUESTS", "8")
    assert run_cli([str(urls_file)]) == 0
    assert captured.loaded is not None
    assert captured.loaded.config.parallel.max_concurrent_requests == 8


def test_config_show_origins_and_redaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-cli-999")
    monkeypatch.setenv("CRAWL4AI_LLM_DOCS_CRAWL__RETRIES", "3")
    config = tmp_path / "c.toml"
    config.write_text("[parallel]\nmax_concurrent_requests = 6\n")
    assert run_cli(["config", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "sk-test-SECRET-cli-999" not in out
    assert "max_concurrent_requests = 6  # " + f"{config}:2" in out
    assert "retries = 3  # env CRAWL4AI_LLM_DOCS_CRAWL__RETRIES" in out
    assert 'mode = "auto"  # default' in out


def test_config_init_writes_template_and_refuses_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["config", "init"]) == 0
    written = tmp_path / "crawl4ai-llm-docs.toml"
    assert "[parallel]" in written.read_text()
    written.write_text("# mine\n")
    console, buffer = capture_errors()
    assert run_cli(["config", "init"], stderr=console) == 2
    assert "already exists" in buffer.getvalue()
    assert written.read_text() == "# mine\n"
    assert run_cli(["config", "init", "--force"]) == 0
    assert "[parallel]" in written.read_text()
    other = tmp_path / "sub" / "x.toml"
    assert run_cli(["config", "init", str(other)]) == 0
    # The template is itself a valid config.
    assert run_cli(["config", "show", "--config", str(other)]) == 0


def test_config_init_into_directory_is_refused(tmp_path: Path) -> None:
    console, buffer = capture_errors()
    assert run_cli(["config", "init", str(tmp_path)], stderr=console) == 2
    assert "is a directory" in buffer.getvalue()


def test_config_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "crawl4ai-llm-docs.toml").write_text("")
    assert run_cli(["config", "path"]) == 0
    out = capsys.readouterr().out
    assert f"project: {tmp_path / 'crawl4ai-llm-docs.toml'} (found)" in out
    assert "user: " in out
    assert "(not present)" in out


def test_missing_urls_file_exit_2(tmp_path: Path) -> None:
    console, buffer = capture_errors()
    assert run_cli([str(tmp_path / "nope.txt")], stderr=console) == 2
    assert "does not exist" in buffer.getvalue()


def test_module_entry_point_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crawl4ai_llm_docs",
            "--max-concurrent",
            "99",
            str(tmp_path / "u.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "max_concurrent_requests = 99" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_wheel_ships_defaults_and_config_show_works(tmp_path: Path) -> None:
    uv = "uv"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(REPO)],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
    )
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("COV")}
    result = subprocess.run(
        [str(venv / "bin" / "crawl4ai-llm-docs"), "config", "show"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "max_concurrent_requests = 4  # default" in result.stdout


def test_insecure_turns_off_tls_verification_with_a_warning(
    urls_file: Path, captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli([str(urls_file), "--insecure"]) == 0
    assert captured.loaded is not None
    assert captured.loaded.config.llm.verify_tls is False
    assert captured.loaded.config.crawl.verify_tls is False
    assert "TLS certificates are not verified" in capsys.readouterr().err
    assert run_cli([str(urls_file)]) == 0
    assert captured.loaded.config.llm.verify_tls is True


def test_stage_errors_inside_the_run_nursery_become_one_message(
    urls_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crawl4ai_llm_docs.errors import BrowserNotFoundError

    async def failing_run_command(options: RunOptions, loaded: LoadedConfig) -> int:
        raise ExceptionGroup(
            "stages", [ExceptionGroup("crawl", [BrowserNotFoundError("No Chromium found.")])]
        )

    monkeypatch.setattr(pipeline, "run_command", failing_run_command)
    console, buffer = capture_errors()
    assert run_cli([str(urls_file)], stderr=console) == 2
    assert "No Chromium found." in buffer.getvalue()
