"""Configuration layering, origins, validation messages and rendering."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from crawl4ai_llm_docs.config import AppConfig, load_config
from crawl4ai_llm_docs.config_check import describe_allowed
from crawl4ai_llm_docs.config_show import render_toml
from crawl4ai_llm_docs.errors import ConfigError

NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never read the developer's real user config.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_struct_defaults() -> None:
    loaded = load_config(environ=NO_ENV)
    cfg = loaded.config
    assert cfg.parallel.max_concurrent_requests == 4
    assert cfg.parallel.progress_update_interval == 5
    assert cfg.crawl.mode == "auto"
    assert cfg.crawl.max_concurrent == 4
    assert cfg.llm.api_key_env == "OPENAI_API_KEY"
    assert cfg.llm.base_url == "https://api.openai.com/v1"
    assert set(loaded.origins.values()) == {"default"}
    # The spec's name for the section still works.
    assert AppConfig().parallel_processing.max_concurrent_requests == 4


def test_every_key_is_documented_in_defaults_toml() -> None:
    text = (Path(__file__).parent.parent / "defaults.toml").read_text()
    data = tomllib.loads(text)
    lines = text.splitlines()
    for section, cls in (
        ("llm", "LLMConfig"),
        ("crawl", "CrawlConfig"),
        ("parallel", "ParallelConfig"),
        ("output", "OutputConfig"),
        ("logging", "LoggingConfig"),
    ):
        import crawl4ai_llm_docs.config as config_module

        fields = getattr(config_module, cls).__struct_fields__
        assert set(data[section]) == set(fields), section
        for key in fields:
            index = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
            # The key itself or the key just before it (a shared comment) has a comment above.
            assert any(lines[j].startswith("#") for j in range(max(0, index - 2), index)), key


def test_precedence_each_layer_over_the_one_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = write(
        tmp_path / "xdg-config" / "crawl4ai-llm-docs" / "config.toml",
        "[parallel]\nmax_concurrent_requests = 5\nerror_threshold_percent = 40\nrequests_per_minute = 100\n[crawl]\nretries = 5\n",
    )
    write(
        tmp_path / "crawl4ai-llm-docs.toml",
        "[parallel]\nmax_concurrent_requests = 6\nerror_threshold_percent = 30\n",
    )
    env = {
        "CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONCURRENT_REQUESTS": "7",
    }
    loaded = load_config(environ=env)
    assert loaded.config.crawl.retries == 5  # user file over default
    assert loaded.origins["crawl.retries"] == f"{user}:6"
    assert loaded.config.parallel.requests_per_minute == 100
    assert loaded.config.parallel.error_threshold_percent == 30  # project over user
    assert loaded.origins["parallel.error_threshold_percent"].endswith("crawl4ai-llm-docs.toml:3")
    assert loaded.config.parallel.max_concurrent_requests == 7  # env over project
    assert loaded.origins["parallel.max_concurrent_requests"] == (
        "env CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONCURRENT_REQUESTS"
    )
    flagged = load_config(
        environ=env,
        overrides={"parallel.max_concurrent_requests": (8, "flag --max-concurrent")},
    )
    assert flagged.config.parallel.max_concurrent_requests == 8  # flag over env
    assert flagged.origins["parallel.max_concurrent_requests"] == "flag --max-concurrent"


def test_config_file_replaces_user_and_project_files(tmp_path: Path) -> None:
    write(tmp_path / "xdg-config" / "crawl4ai-llm-docs" / "config.toml", "[crawl]\nretries = 5\n")
    write(tmp_path / "crawl4ai-llm-docs.toml", "[crawl]\nretries = 6\n")
    explicit = write(tmp_path / "explicit.toml", "[parallel]\nmax_concurrent_requests = 12\n")
    loaded = load_config(config_file=explicit, environ=NO_ENV)
    assert loaded.config.crawl.retries == 2
    assert loaded.config.parallel.max_concurrent_requests == 12
    assert loaded.files == (explicit,)


def test_openai_base_url_env_and_explicit_variable_wins() -> None:
    loaded = load_config(environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert loaded.config.llm.base_url == "http://127.0.0.1:9/v1"
    assert loaded.origins["llm.base_url"] == "env OPENAI_BASE_URL"
    both = load_config(
        environ={
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "CRAWL4AI_LLM_DOCS_LLM__BASE_URL": "http://127.0.0.1:10/v1",
        }
    )
    assert both.config.llm.base_url == "http://127.0.0.1:10/v1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("false", False),
        ("0", False),
        ("off", False),
    ],
)
def test_env_booleans(raw: str, expected: bool) -> None:
    loaded = load_config(environ={"CRAWL4AI_LLM_DOCS_PARALLEL__ENABLE_SESSION_POOLING": raw})
    assert loaded.config.parallel.enable_session_pooling is expected


def test_env_numbers_and_strings() -> None:
    loaded = load_config(
        environ={
            "CRAWL4AI_LLM_DOCS_PARALLEL__RATE_LIMIT_BUFFER_PERCENT": "12.5",
            "CRAWL4AI_LLM_DOCS_CRAWL__PAGE_TIMEOUT": "7",
            "CRAWL4AI_LLM_DOCS_LLM__MODEL": "llama3",
        }
    )
    assert loaded.config.parallel.rate_limit_buffer_percent == 12.5
    assert loaded.config.crawl.page_timeout == 7.0
    assert loaded.config.llm.model == "llama3"


@pytest.mark.parametrize(
    ("environ", "fragments"),
    [
        (
            {"CRAWL4AI_LLM_DOCS_PARALLEL__ENABLE_SESSION_POOLING": "maybe"},
            ["CRAWL4AI_LLM_DOCS_PARALLEL__ENABLE_SESSION_POOLING", "'maybe'", "true or false"],
        ),
        (
            {"CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONCURRENT_REQUESTS": "eight"},
            ["'eight'", "whole number", ">= 1 and <= 20"],
        ),
        (
            {"CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONCURRENT_REQUESTS": "21"},
            [
                "parallel.max_concurrent_requests = 21",
                "env CRAWL4AI_LLM_DOCS_PARALLEL__MAX_CONCURRENT_REQUESTS",
                "<= 20",
            ],
        ),
        (
            {"CRAWL4AI_LLM_DOCS_PARALEL__MAX_CONCURRENT_REQUESTS": "4"},
            ["does not name a setting", "Did you mean 'parallel.max_concurrent_requests'"],
        ),
        ({"CRAWL4AI_LLM_DOCS_NOSEPARATOR": "4"}, ["does not name a setting", "<SECTION>__<KEY>"]),
        (
            {"CRAWL4AI_LLM_DOCS_CRAWL__PAGE_TIMEOUT": "-1"},
            ["crawl.page_timeout = -1.0", "> 0"],
        ),
    ],
)
def test_env_errors_name_variable_value_and_allowed(
    environ: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ)
    for fragment in fragments:
        assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "[parallel]\nmax_concurrent_requests = 0\n",
            ["parallel.max_concurrent_requests = 0", ".toml:2", ">= 1 and <= 20"],
        ),
        ('[parallel]\nmax_concurrent_requests = "four"\n', ["'four'", ".toml:2", "whole number"]),
        ("[parallel]\nrate_limit_buffer_percent = 150\n", ["150", "<= 100"]),
        ("[parallel]\nerror_threshold_percent = -5\n", ["-5", ">= 0"]),
        ("[parallel]\nprogress_update_interval = 61\n", ["<= 60"]),
        ("[crawl]\nmax_concurrent = 17\n", ["crawl.max_concurrent", "<= 16"]),
        ('[crawl]\nmode = "fast"\n', ["'fast'", "one of 'auto', 'http', 'browser'"]),
        ('[llm]\nbase_url = "ftp://x"\n', ["llm.base_url", "http:// or https://"]),
        (
            "[parallel]\nmax_concurent_requests = 3\n",
            [
                "Unknown config key 'parallel.max_concurent_requests'",
                ".toml:2",
                "Did you mean 'parallel.max_concurrent_requests'",
            ],
        ),
        (
            "[paralel]\nmax_concurrent_requests = 3\n",
            ["Unknown config section [paralel]", "Did you mean [parallel]"],
        ),
        ("[parallel\nx=1\n", ["not valid TOML"]),
        ("[llm]\nchunk_min_tokens = 9000\n", ["chunk_min_tokens", "must not exceed"]),
        ('[llm]\nuser_prompt = "no placeholder"\n', ["{content}"]),
        ("parallel = 3\n", ["must be a [parallel] table"]),
    ],
)
def test_file_errors(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(config_file=path, environ=NO_ENV)
    for fragment in fragments:
        assert fragment in caught.value.message, caught.value.message


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "nope.toml", environ=NO_ENV)


def test_flag_error_names_the_flag() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            environ=NO_ENV, overrides={"crawl.max_concurrent": (0, "flag --crawl-concurrency")}
        )
    assert "flag --crawl-concurrency" in caught.value.message


def test_describe_allowed() -> None:
    assert (
        describe_allowed("parallel", "max_concurrent_requests") == "a whole number >= 1 and <= 20"
    )
    assert describe_allowed("parallel", "enable_circuit_breaker") == "true or false"
    assert describe_allowed("crawl", "mode") == "one of 'auto', 'http', 'browser'"


def test_render_toml_round_trips_with_origins_and_redacts_key(tmp_path: Path) -> None:
    secret = "sk-test-SECRET-render-123"
    path = write(tmp_path / "c.toml", "[crawl]\nretries = 4\n")
    env = {"OPENAI_API_KEY": secret, "CRAWL4AI_LLM_DOCS_LLM__MODEL": "m1"}
    loaded = load_config(config_file=path, environ=env)
    text = render_toml(loaded, environ=env)
    assert secret not in text
    assert "$OPENAI_API_KEY is set (value redacted)" in text
    assert f"retries = 4  # {path}:2" in text
    assert 'model = "m1"  # env CRAWL4AI_LLM_DOCS_LLM__MODEL' in text
    assert "max_concurrent_requests = 4  # default" in text
    # The output is valid TOML that loads back into the same configuration.
    again = write(tmp_path / "again.toml", text)
    assert load_config(config_file=again, environ=NO_ENV).config == loaded.config


def test_render_says_when_key_is_missing() -> None:
    loaded = load_config(environ=NO_ENV)
    assert "$OPENAI_API_KEY is NOT SET" in render_toml(loaded, environ=NO_ENV)


def test_sequential_means_limit_one() -> None:
    loaded = load_config(
        environ=NO_ENV,
        overrides={
            "parallel.enable_parallel_processing": (False, "flag --sequential"),
            "parallel.max_concurrent_requests": (8, "flag --max-concurrent"),
        },
    )
    assert loaded.config.parallel.effective_max_concurrent_requests == 1


def test_cache_directory_default_and_override(tmp_path: Path) -> None:
    default = load_config(environ=NO_ENV).config.cache_directory()
    assert "crawl4ai-llm-docs" in str(default)
    custom = load_config(environ={"CRAWL4AI_LLM_DOCS_OUTPUT__CACHE_DIR": str(tmp_path / "c")})
    assert custom.config.cache_directory() == tmp_path / "c"
