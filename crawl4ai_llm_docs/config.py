"""Configuration: typed sections, layered loading with the origin of every value, clear errors.

Layers, lowest first (see design.md "Configuration"): the packaged ``defaults.toml`` < the user
file < the project file (both replaced by ``--config FILE``) < environment variables < flags.
Every leaf value remembers where it came from, so errors and ``config show`` can name it.

A project file may not set what decides where a secret goes (``SECRET_ROUTING_KEYS``) unless
trusted (``trust_project_config``: the user file or ``--trust-project-config``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin

import platformdirs

from crawl4ai_llm_docs.config_check import (
    check_unknown,
    describe_allowed,
    field_type,
    is_table,
    suggest,
    validate,
)
from crawl4ai_llm_docs.config_schema import (
    APP_NAME,
    CREDENTIAL_KEYS,
    DEFAULTS_ORIGIN,
    ENV_PREFIX,
    PROJECT_FILE_NAME,
    SECRET_ROUTING_KEYS,
    SECTIONS,
    SERVE_TOKEN_ENV,
    TRUST_KEY,
    AppConfig,
    AuthEntry,
    Base,
    CrawlConfig,
    LLMConfig,
    LoadedConfig,
    LoggingConfig,
    Origins,
    OutputConfig,
    ParallelConfig,
    origin_key,
)
from crawl4ai_llm_docs.errors import ConfigError

# The schema is part of this module's interface: callers import the sections from here.
__all__ = [
    "APP_NAME",
    "CREDENTIAL_KEYS",
    "DEFAULTS_ORIGIN",
    "ENV_PREFIX",
    "PROJECT_FILE_NAME",
    "SECTIONS",
    "AppConfig",
    "AuthEntry",
    "Base",
    "CrawlConfig",
    "LLMConfig",
    "LoadedConfig",
    "LoggingConfig",
    "Origins",
    "OutputConfig",
    "ParallelConfig",
    "defaults_text",
    "describe_allowed",
    "load_config",
    "origin_key",
    "project_config_path",
    "template_text",
    "user_config_path",
]

# ---------------------------------------------------------------- file locations


def defaults_text() -> str:
    """The packaged defaults: inside the wheel, or at the repository top in a source checkout."""
    packaged = resources.files("crawl4ai_llm_docs").joinpath("defaults.toml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "defaults.toml").read_text(encoding="utf-8")


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def project_config_path(cwd: Path | None = None) -> Path:
    return (cwd or Path.cwd()) / PROJECT_FILE_NAME


# ---------------------------------------------------------------- layers


def _line_numbers(text: str) -> dict[str, int]:
    """Map ``section.key`` to its line in a TOML file, for file:line origins."""
    lines: dict[str, int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if header := re.match(r"^\[(\[?)\s*([A-Za-z0-9_.-]+)\s*\]", stripped):
            section = header.group(2)  # [[crawl.auth]]: the array's first table counts
            lines.setdefault(section, number)
        elif key := re.match(r"^([A-Za-z0-9_-]+)\s*=", stripped):
            lines.setdefault(f"{section}.{key.group(1)}" if section else key.group(1), number)
    return lines


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"Config file {origin} is not valid TOML: {exc}. "
            "Fix the syntax (see `crawl4ai-llm-docs config init` for a valid template)."
        ) from None


def _file_layer(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist. Check the path given to --config, "
            "or create one with `crawl4ai-llm-docs config init PATH`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read ({exc}). Check the file.") from None
    data = _parse_toml(text, str(path))
    numbers = _line_numbers(text)
    origins = {
        key: f"{path}:{numbers[key]}" if key in numbers else str(path) for key in _leaf_keys(data)
    }
    return data, origins


def _leaf_keys(data: Mapping[str, Any]) -> list[str]:
    keys: list[str] = []
    for section, values in data.items():
        if isinstance(values, Mapping):
            keys.extend(f"{section}.{key}" for key in values)
        else:
            keys.append(section)
    return keys


def _convert_env(raw: str, section: str, key: str, variable: str) -> Any:
    """Environment values are text: turn them into the type the key expects."""
    kind = field_type(section, key)
    value = raw.strip()
    if kind is bool:
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(
            f"Environment variable {variable}={raw!r} is not a boolean for {section}.{key}. "
            "Use true or false (also 1/0, yes/no, on/off)."
        )
    if kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            allowed = "a whole number" if kind is int else "a number"
            raise ConfigError(
                f"Environment variable {variable}={raw!r} is not {allowed} for {section}.{key}. "
                f"Set it to {describe_allowed(section, key)}."
            ) from None
    if get_origin(kind) is list and is_table(get_args(kind)[0]):
        raise ConfigError(
            f"Environment variable {variable} cannot set {section}.{key}: it is a list of "
            f"[[{section}.{key}]] tables, which only a config file can hold. Move it to one "
            '(values there may name environment variables, e.g. "${DOCS_TOKEN}").'
        )
    if get_origin(kind) is list:  # a comma-separated list, e.g. sitemap,links
        return [part.strip() for part in value.split(",") if part.strip()]
    return raw


def _env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for variable, raw in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX) or variable == SERVE_TOKEN_ENV:
            continue  # the serve token is a credential, read by `serve` only
        section, sep, key = variable[len(ENV_PREFIX) :].lower().partition("__")
        dotted = f"{section}.{key}"
        if not sep or section not in SECTIONS or key not in SECTIONS[section].__struct_fields__:
            hint = suggest(dotted)
            raise ConfigError(
                f"Environment variable {variable} does not name a setting ({dotted!r} is not a "
                f"configuration key).{hint} Variables look like "
                f"{ENV_PREFIX}<SECTION>__<KEY>, e.g. {ENV_PREFIX}PARALLEL__MAX_CONCURRENT_REQUESTS=8."
            )
        data.setdefault(section, {})[key] = _convert_env(raw, section, key, variable)
        origins[dotted] = f"env {variable}"
    if (base_url := environ.get("OPENAI_BASE_URL")) and "llm.base_url" not in origins:
        data.setdefault("llm", {})["base_url"] = base_url
        origins["llm.base_url"] = "env OPENAI_BASE_URL"
    return data, origins


def _merge(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for section, values in layer.items():
        if isinstance(values, Mapping) and isinstance(target.get(section), dict):
            target[section].update(values)
        else:
            target[section] = values


# ---------------------------------------------------------------- public API


def _untrusted_keys(
    project: tuple[Path, dict[str, Any]], before: Any, merged: Any, origins: Origins, refuse: bool
) -> list[str]:
    """The SECRET_ROUTING_KEYS an untrusted project file changes and no later layer overrides;
    with ``refuse``, any of them is an error (one paragraph: which keys, file, how to trust)."""
    path, layer = project
    keys: list[str] = []
    shown: list[str] = []
    for dotted in SECRET_ROUTING_KEYS:
        section, key = dotted.split(".", 1)
        value = layer.get(section, {}).get(key, before.get(section, {}).get(key))
        if value != before.get(section, {}).get(key) and merged[section][key] is value:
            keys.append(dotted)  # shown as set, but never a credential or a URL's user:password
            text = (
                f"{dotted} ({len(value)} table(s), values not shown)"
                if dotted in CREDENTIAL_KEYS
                else f"{dotted} = {re.sub(r'//[^/@]*@', '//', repr(value))}"
            )
            shown.append(f"{text} ({origins[dotted]})")
    if keys and refuse and merged.get(TRUST_KEY) is not True:
        raise ConfigError(
            f"The project file {path} in the working directory sets {', '.join(shown)}, which "
            f"decides where a secret (the API key, a site's credentials) is sent; "
            f"{', '.join(SECRET_ROUTING_KEYS)} are "
            "not taken from a project file unless you trust it. If you wrote it or trust whoever "
            f"did, run with --trust-project-config, or put `{TRUST_KEY} = true` at the top of "
            f"your user config {user_config_path()}. Otherwise remove the setting from "
            f"{path.name} and set it in your user config, --config FILE, the environment or a flag."
        )
    return keys if merged.get(TRUST_KEY) is not True else []


def load_config(
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    sends_secrets: bool = True,
) -> LoadedConfig:
    """Build the effective configuration.

    ``overrides`` maps dotted keys to ``(value, origin)`` pairs from command-line flags, e.g.
    ``{"parallel.max_concurrent_requests": (8, "flag --max-concurrent")}``. A command that
    sends no secret (``sends_secrets=False``) lists an untrusted project file's secret-routing
    keys in ``untrusted`` instead of refusing them.
    """
    environ = os.environ if environ is None else environ
    merged = _parse_toml(defaults_text(), "defaults.toml (packaged)")
    origins: Origins = dict.fromkeys(_leaf_keys(merged), DEFAULTS_ORIGIN)

    project_path = project_config_path(cwd)
    files = (
        [config_file]
        if config_file is not None
        else [p for p in (user_config_path(), project_path) if p.is_file()]
    )
    before: dict[str, Any] = {}
    project: tuple[Path, dict[str, Any]] | None = None
    for path in files:
        layer, layer_origins = _file_layer(path)
        check_unknown(layer, layer_origins)
        if config_file is None and path == project_path:
            if layer.pop(TRUST_KEY, False) is True:
                raise ConfigError(
                    f"{TRUST_KEY} = true in the project file {layer_origins[TRUST_KEY]} has no "
                    f"effect: a project file cannot trust itself. Put it in your user config "
                    f"{user_config_path()}, or run with --trust-project-config."
                )
            layer_origins.pop(TRUST_KEY, None)
            before = {k: dict(v) if isinstance(v, dict) else v for k, v in merged.items()}
            project = (path, layer)
        _merge(merged, layer)
        origins.update(layer_origins)

    env_data, env_origins = _env_layer(environ)
    _merge(merged, env_data)
    origins.update(env_origins)

    for dotted, (value, origin) in (overrides or {}).items():
        section, dot, key = dotted.partition(".")
        if dot:
            merged.setdefault(section, {})[key] = value
        else:  # a top-level key (--trust-project-config)
            merged[section] = value
        origins[dotted] = origin

    untrusted = _untrusted_keys(project, before, merged, origins, sends_secrets) if project else []
    return LoadedConfig(
        config=validate(merged, origins),
        origins=origins,
        files=tuple(files),
        untrusted=tuple(untrusted),
    )


def template_text() -> str:
    """A commented template for ``config init``: the packaged defaults, every key commented."""
    return defaults_text()
