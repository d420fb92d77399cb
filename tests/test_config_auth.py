"""``[[crawl.auth]]`` and the other keys of issue 26 in the configuration: validated with
messages that name the table, key and file (never a credential's value), refused from the
environment, and shown by ``config show`` as valid TOML with every value redacted."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.config_schema import CREDENTIAL_KEYS
from crawl4ai_llm_docs.config_show import REDACTED, render_toml
from crawl4ai_llm_docs.errors import ConfigError

secrets = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=8)


def _load(tmp_path: Path, toml: str, **kwargs):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return load_config(config_file=path, environ=kwargs.get("environ", {}))


def test_auth_tables_load_and_the_new_keys_have_their_defaults(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        '[crawl]\nprefer_markdown = "always"\n\n[[crawl.auth]]\norigin = "https://a.example"\n'
        'headers = { Authorization = "Bearer ${T}" }\n\n[[crawl.auth]]\n'
        'origin = "http://b.example:8080"\ncookies_file = "c.txt"\n',
    )
    config = loaded.config
    assert config.crawl.prefer_markdown == "always"
    assert [entry.origin for entry in config.crawl.auth] == [
        "https://a.example",
        "http://b.example:8080",
    ]
    assert config.output.pages_naming == "page.md"
    assert loaded.origins["crawl.auth"].endswith("config.toml:4")  # the first table's line
    assert CREDENTIAL_KEYS == ("crawl.auth",)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('origin = "https://a.example/docs/"\nheaders = { A = "x" }', "must be scheme://host"),
        ('origin = "ftp://a.example"\nheaders = { A = "x" }', "must be scheme://host"),
        ('origin = "https://a.example"\nheaders = { "Bad Name" = "x" }', "'Bad Name'"),
        ('origin = "https://a.example"\nheaders = { Host = "x" }', "'Host'"),
        ('origin = "https://a.example"\nheaders = { A = "x\\r\\nInjected: 1" }', "line break"),
        ('origin = "https://a.example"', "sends nothing"),
        ('origin = "https://a.example"\ntoken = "x"', "unknown field `token`"),
    ],
)
def test_a_bad_table_names_itself_and_the_file(tmp_path: Path, table: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, f"[[crawl.auth]]\n{table}\n")
    message = str(raised.value)
    assert says in message
    assert "[[crawl.auth]] table 1" in message
    assert "config.toml" in message


def test_two_tables_for_one_origin_are_refused(tmp_path: Path) -> None:
    toml = (
        '[[crawl.auth]]\norigin = "https://a.example"\nheaders = { A = "1" }\n'
        '[[crawl.auth]]\norigin = "HTTPS://A.example:443"\nheaders = { B = "2" }\n'
    )
    with pytest.raises(ConfigError, match=r"two entries for HTTPS://A\.example:443"):
        _load(tmp_path, toml)


def test_the_environment_cannot_hold_tables() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"CRAWL4AI_LLM_DOCS_CRAWL__AUTH": "https://a.example"})
    assert "only a config file can hold" in str(raised.value)


@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=secrets)
def test_no_message_and_no_rendering_shows_a_header_value(tmp_path: Path, secret: str) -> None:
    good = f'[[crawl.auth]]\norigin = "https://a.example"\nheaders = {{ X-Key = "{secret}" }}\n'
    shown = render_toml(_load(tmp_path, good), environ={})
    assert secret not in shown
    assert tomllib.loads(shown.split("\n", 2)[2])["crawl"]["auth"] == [
        {
            "origin": "https://a.example",
            "headers": {"X-Key": REDACTED},
            "cookies_file": "",
            "storage_state": "",
        }
    ]
    for bad in (
        good.replace('origin = "https://a.example"', 'origin = "https://a.example/x"'),
        good + "cookies_file = 7\n",
        good.replace("X-Key", "X Key"),
    ):
        with pytest.raises(ConfigError) as raised:
            _load(tmp_path, bad)
        assert secret not in str(raised.value)


def test_references_to_variables_are_shown_as_written(tmp_path: Path) -> None:
    toml = (
        '[[crawl.auth]]\norigin = "https://a.example"\n'
        'headers = { Authorization = "Bearer ${DOCS_TOKEN}", X-Mixed = "k-${PART}-suffix" }\n'
    )
    shown = render_toml(_load(tmp_path, toml), environ={})
    assert 'Authorization = "Bearer ${DOCS_TOKEN}"' in shown
    assert f'X-Mixed = "{REDACTED}"' in shown  # a literal part could be a secret
