"""A project file cannot send a secret elsewhere unless trusted (issue 25).

``./crawl4ai-llm-docs.toml`` in the working directory may not change the settings that decide
where the API key goes (``SECRET_ROUTING_KEYS``) unless the user trusts it: the flag
``--trust-project-config`` or ``trust_project_config = true`` in the user file. The user file
and ``--config FILE`` set them freely. Unit tests on ``load_config``, then the real CLI with a
loopback server standing in for the foreign host (it must receive nothing).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from e2e_support import API_KEY, cli_env, run_cli, running
from faults_support import StubServer, completion_reply

from crawl4ai_llm_docs.config import load_config
from crawl4ai_llm_docs.config_schema import SECRET_ROUTING_KEYS, TRUST_KEY
from crawl4ai_llm_docs.config_show import render_toml
from crawl4ai_llm_docs.errors import ConfigError

FOREIGN = "http://127.0.0.1:9/v1"
TRUST_FLAG = {TRUST_KEY: (True, "flag --trust-project-config")}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_file(home: Path, text: str) -> Path:
    return write(home / "xdg-config" / "crawl4ai-llm-docs" / "config.toml", text)


def project_file(home: Path, text: str) -> Path:
    return write(home / "crawl4ai-llm-docs.toml", text)


@pytest.mark.parametrize(
    "text",
    [
        f'[llm]\nbase_url = "{FOREIGN}"\n',
        '[llm]\napi_key_env = "GITHUB_TOKEN"\n',
        f'[llm]\nmodel = "m"\nbase_url = "{FOREIGN}"\napi_key_env = "GITHUB_TOKEN"\n',
    ],
)
def test_a_project_file_that_routes_the_secret_is_refused(home: Path, text: str) -> None:
    path = project_file(home, text)
    with pytest.raises(ConfigError) as raised:
        load_config(environ={})
    message = raised.value.message
    data = tomllib.loads(text)["llm"]
    for key in ("base_url", "api_key_env"):
        if key in data:
            assert f"llm.{key} = {data[key]!r} ({path}:" in message  # key, value and line
    assert "--trust-project-config" in message
    assert "trust_project_config = true" in message
    assert str(home / "xdg-config" / "crawl4ai-llm-docs" / "config.toml") in message
    # Trusted by the flag or by the user file, the same file is taken.
    assert load_config(environ={}, overrides=TRUST_FLAG).config.llm.model in ("m", "gpt-4o-mini")
    user_file(home, "trust_project_config = true\n")
    trusted = load_config(environ={})
    assert trusted.config.trust_project_config is True
    assert trusted.untrusted == ()


def test_other_keys_and_unchanged_values_need_no_trust(home: Path) -> None:
    # `config init` writes the defaults: a project file of them changes nothing secret.
    project_file(
        home,
        "trust_project_config = false\n"
        '[llm]\nbase_url = "https://api.openai.com/v1"\napi_key_env = "OPENAI_API_KEY"\n'
        "[parallel]\nmax_concurrent_requests = 9\n",
    )
    assert load_config(environ={}).config.parallel.max_concurrent_requests == 9


def test_the_user_file_and_config_file_set_them_freely(home: Path) -> None:
    user_file(home, f'[llm]\nbase_url = "{FOREIGN}"\napi_key_env = "MY_KEY"\n')
    assert load_config(environ={}).config.llm.base_url == FOREIGN
    explicit = write(home / "elsewhere.toml", '[llm]\napi_key_env = "OTHER"\n')
    # --config replaces both files, so even one in the working directory is trusted as given.
    project_file(home, '[llm]\napi_key_env = "EVIL"\n')
    assert load_config(config_file=explicit, environ={}).config.llm.api_key_env == "OTHER"


def test_a_project_file_undoing_the_users_choice_is_refused_too(home: Path) -> None:
    # The user sends the key to a local server; the project file points it back elsewhere.
    user_file(home, '[llm]\nbase_url = "http://127.0.0.1:8001/v1"\n')
    project_file(home, '[llm]\nbase_url = "https://api.openai.com/v1"\n')
    with pytest.raises(ConfigError, match=r"llm\.base_url = 'https://api\.openai\.com/v1'"):
        load_config(environ={})


def test_a_later_layer_that_sets_the_key_makes_the_project_value_moot(home: Path) -> None:
    project_file(home, f'[llm]\nbase_url = "{FOREIGN}"\n')
    flagged = load_config(environ={}, overrides={"llm.base_url": ("http://127.0.0.1:1/v1", "f")})
    assert flagged.config.llm.base_url == "http://127.0.0.1:1/v1"
    env = load_config(environ={"OPENAI_BASE_URL": "http://127.0.0.1:2/v1"})
    assert env.config.llm.base_url == "http://127.0.0.1:2/v1"


def test_a_project_file_cannot_trust_itself(home: Path) -> None:
    project_file(home, "trust_project_config = true\n[llm]\nmodel = 'm'\n")
    with pytest.raises(ConfigError, match="cannot trust itself"):
        load_config(environ={})


def test_commands_that_send_no_secret_load_it_and_show_it_marked(home: Path) -> None:
    project_file(home, f'[llm]\nbase_url = "{FOREIGN}"\n')
    loaded = load_config(environ={}, sends_secrets=False)
    assert loaded.untrusted == ("llm.base_url",)
    text = render_toml(loaded, environ={})
    assert f'base_url = "{FOREIGN}"  # {home / "crawl4ai-llm-docs.toml"}:2 (refused unless' in text
    lines = text.splitlines()
    # The top-level key comes before the first table, as TOML requires.
    assert lines.index("trust_project_config = false  # default") < lines.index("[llm]")


def test_credentials_in_a_url_are_not_repeated(home: Path) -> None:
    project_file(home, '[llm]\nbase_url = "https://me:hunter2@evil.example/v1"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(environ={})
    assert "hunter2" not in raised.value.message
    assert "https://evil.example/v1" in raised.value.message


def test_a_bad_trust_value_names_the_key_and_file(home: Path) -> None:
    path = user_file(home, 'trust_project_config = "yes"\n')
    with pytest.raises(ConfigError, match=rf"trust_project_config = 'yes' \(from {path}:1\)"):
        load_config(environ={})


def test_the_declared_list_is_the_one_place() -> None:
    assert SECRET_ROUTING_KEYS == ("llm.base_url", "llm.api_key_env", "crawl.auth")


# ---------------------------------------------------------------- through the CLI


@pytest.mark.slow
def test_the_cli_refuses_before_sending_anything_and_works_when_trusted(tmp_path: Path) -> None:
    foreign = StubServer(lambda request: completion_reply(request))
    with running(tmp_path, pages=2) as setup, foreign.running():
        project = project_file(
            tmp_path,
            f'[llm]\nbase_url = "{foreign.url}/v1"\napi_key_env = "GITHUB_TOKEN"\n',
        )
        env = setup.env | {"GITHUB_TOKEN": "ghp-NOT-FOR-THEM"}
        args = [str(setup.urls_file), "-o", str(setup.output), "--crawler", "http", "--no-progress"]
        refused = run_cli(args, cwd=tmp_path, env=env)
        assert refused.code == 2, refused
        message = " ".join(refused.stderr.split())
        assert f"The project file {project} in the working directory sets llm.base_url" in message
        assert "llm.api_key_env = 'GITHUB_TOKEN'" in message
        assert foreign.requests == []  # nothing was sent anywhere
        assert not setup.output.exists()
        # check and batch refuse too; map and config show, which send nothing, do not.
        assert run_cli(["check"], cwd=tmp_path, env=env).code == 2
        assert run_cli(["batch", "status"], cwd=tmp_path, env=env).code == 2
        shown = run_cli(["config", "show"], cwd=tmp_path, env=env)
        assert shown.code == 0, shown
        assert "(refused unless the project file is trusted)" in shown.stdout
        assert foreign.requests == []

        trusted = run_cli([*args, "--trust-project-config"], cwd=tmp_path, env=env)
        assert trusted.code == 0, trusted
        # Trusted, the project's choice holds: its variable's token goes to its host.
        assert foreign.requests
        assert {r.headers["authorization"] for r in foreign.requests if r.method == "POST"} == {
            "Bearer ghp-NOT-FOR-THEM"
        }
        assert API_KEY not in str([r.headers for r in foreign.requests])


@pytest.mark.slow
def test_the_user_file_may_trust_project_files(tmp_path: Path) -> None:
    with running(tmp_path, pages=1) as setup:
        project_file(tmp_path, f'[llm]\nbase_url = "{setup.provider.base_url}"\n')
        user_file(tmp_path, "trust_project_config = true\n")
        args = [str(setup.urls_file), "-o", str(setup.output), "--crawler", "http", "--no-progress"]
        result = run_cli(args, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 0, result
