"""Configuration: typed sections, layered loading with the origin of every value, clear errors.

Layers, lowest first (see design.md "Configuration"): the packaged ``defaults.toml`` < the user
file < the project file (both replaced by ``--config FILE``) < environment variables < flags.
Every leaf value remembers where it came from, so errors and ``config show`` can name it.

A project file may not set what decides where a secret goes (``SECRET_ROUTING_KEYS``) unless
trusted (``trust_project_config``: the user file or ``--trust-project-config``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec
import platformdirs
from msgspec import Meta

from crawl4ai_llm_docs.config_schema import (
    APP_NAME,
    CREDENTIAL_KEYS,
    DEFAULTS_ORIGIN,
    DOCS_SET_RULE,
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
    "redact_settings",
    "render_toml",
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


def _field_type(section: str, key: str) -> Any:
    hints = get_type_hints(SECTIONS[section], include_extras=True)
    annotation = hints[key]
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _is_table(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


def _is_table_list(section: str, key: str) -> bool:
    """Whether ``section.key`` is a list of tables (``[[crawl.auth]]``), not of values."""
    if section not in SECTIONS or key not in get_type_hints(SECTIONS[section]):
        return False
    kind = _field_type(section, key)
    return get_origin(kind) is list and _is_table(get_args(kind)[0])


def _convert_env(raw: str, section: str, key: str, variable: str) -> Any:
    """Environment values are text: turn them into the type the key expects."""
    kind = _field_type(section, key)
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
    if get_origin(kind) is list and _is_table(get_args(kind)[0]):
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
            hint = _suggest(dotted)
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


# ---------------------------------------------------------------- validation


def _all_keys() -> list[str]:
    return [f"{name}.{key}" for name, cls in SECTIONS.items() for key in cls.__struct_fields__]


def _suggest(dotted: str) -> str:
    candidates = _all_keys()
    bare = {key.split(".", 1)[1]: key for key in candidates}
    match = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.6)
    if not match:
        close = difflib.get_close_matches(dotted.rsplit(".", 1)[-1], list(bare), n=1, cutoff=0.6)
        match = [bare[close[0]]] if close else []
    return f" Did you mean {match[0]!r}?" if match else ""


def describe_allowed(section: str, key: str) -> str:
    """Human wording of what a key accepts, derived from its annotation."""
    annotation = get_type_hints(SECTIONS[section], include_extras=True)[key]
    metas = [m for m in get_args(annotation)[1:] if isinstance(m, Meta)]
    kind = _field_type(section, key)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(choice) for choice in get_args(kind))
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        if _is_table(item):
            fields = ", ".join(item.__struct_fields__)
            return f"a list of [[{section}.{key}]] tables with the keys {fields}"
        if get_origin(item) is Literal:
            return "a list of " + ", ".join(repr(choice) for choice in get_args(item))
        return "a list of strings"
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    text = words.get(kind, str(kind))
    for meta in metas:
        bounds = []
        if meta.ge is not None:
            bounds.append(f">= {meta.ge}")
        if meta.gt is not None:
            bounds.append(f"> {meta.gt}")
        if meta.le is not None:
            bounds.append(f"<= {meta.le}")
        if meta.min_length:
            bounds.append("not empty")
        if meta.pattern and key == "base_url":
            bounds.append("starting with http:// or https://")
        elif meta.pattern and key == "docs_set":
            text = f"{DOCS_SET_RULE}, or empty for the site's name"
        elif meta.pattern:
            bounds.append(f"matching {meta.pattern}")
        if bounds:
            text += " " + " and ".join(bounds)
    return text


def _check_unknown(data: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    for section, values in data.items():
        if section == TRUST_KEY:
            continue  # the one top-level key; its type is checked with the rest
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, list(SECTIONS), n=1, cutoff=0.5)
            hint = f" Did you mean [{close[0]}]?" if close else ""
            source = _source_of(origins, section)
            raise ConfigError(
                f"Unknown config section [{section}] in {source}.{hint} "
                f"Valid sections: {', '.join(f'[{name}]' for name in SECTIONS)}."
            )
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"Config key {section!r} in {origins.get(section, 'configuration')} must be a "
                f"[{section}] table, got {values!r}."
            )
        for key in values:
            if key not in SECTIONS[section].__struct_fields__:
                dotted = f"{section}.{key}"
                raise ConfigError(
                    f"Unknown config key {dotted!r} in {origins.get(dotted, 'configuration')}."
                    f"{_suggest(dotted)} Run `crawl4ai-llm-docs config show` to list valid keys."
                )


def _source_of(origins: Mapping[str, str], section: str) -> str:
    for key, origin in origins.items():
        if key.startswith(section + "."):
            return origin.split(":")[0] if origin.count(":") == 1 else origin
    return "configuration"


def _validate(merged: dict[str, Any], origins: Origins) -> AppConfig:
    _check_unknown(merged, origins)
    try:
        return msgspec.convert(merged, AppConfig)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text.endswith(f"at `$.{TRUST_KEY}`"):
            value = merged.get(TRUST_KEY)
            raise ConfigError(
                f"Invalid value for {TRUST_KEY} = {value!r} (from "
                f"{origins.get(TRUST_KEY, DEFAULTS_ORIGIN)}): expected true or false."
            ) from None
        nested = re.search(r"at `\$\.(\w+)\.(\w+)\[(\d+)\]((?:\.\w+)*)", text)
        if nested and _is_table_list(*nested.groups()[:2]):  # a [[section.key]] table
            section, key, position, inner = nested.groups()
            dotted = f"{section}.{key}"
            where = f"[[{dotted}]] table {int(position) + 1}" + (
                f", key {inner.lstrip('.')}" if inner else ""
            )
            raise ConfigError(
                f"Invalid {where} (from {origins.get(dotted, DEFAULTS_ORIGIN)}): "
                f"{text.split(' - at ')[0]}. Expected {describe_allowed(section, key)}."
            ) from None
        found = re.search(r"at `\$\.(\w+)\.(\w+)(?:\[\d+\])?`", text)
        if found:
            section, key = found.groups()
            dotted = f"{section}.{key}"
            value = merged.get(section, {}).get(key)
            raise ConfigError(
                f"Invalid value for {dotted} = {value!r} (from {origins.get(dotted, DEFAULTS_ORIGIN)}): "
                f"expected {describe_allowed(section, key)}. Fix or remove that value."
            ) from None
        cross = re.search(r"(\w+\.\w+)", text)
        dotted = cross.group(1) if cross else ""
        source = origins.get(dotted, "configuration")
        raise ConfigError(
            f"Invalid configuration (from {source}): {text.split(' - at ')[0]}."
        ) from None


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
        _check_unknown(layer, layer_origins)
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
        config=_validate(merged, origins),
        origins=origins,
        files=tuple(files),
        untrusted=tuple(untrusted),
    )


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_AUTH_SCHEMES = frozenset({"", "bearer", "basic", "token"})
REDACTED = "[REDACTED]"


def shown_secret(value: str) -> str:
    """A credential's value as settings may show it: references to environment variables
    (``"Bearer ${DOCS_TOKEN}"``) as written, anything else redacted."""
    rest = _ENV_REFERENCE.sub("", value).strip().lower()
    return value if rest in _AUTH_SCHEMES and rest != value.strip().lower() else REDACTED


def redact_settings(data: dict[str, Any]) -> dict[str, Any]:
    """``msgspec.to_builtins(config)`` with every credential's value redacted (in place)."""
    for entry in data.get("crawl", {}).get("auth", []):
        entry["headers"] = {name: shown_secret(value) for name, value in entry["headers"].items()}
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):  # an inline table
        items = (
            f"{key if _BARE_KEY.match(key) else json.dumps(key)} = {_toml_value(item)}"
            for key, item in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # A JSON string is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def render_toml(loaded: LoadedConfig, *, environ: Mapping[str, str] | None = None) -> str:
    """The effective configuration as TOML, each value followed by its origin.

    The API key is never part of the config; only whether it is set is shown. Credentials
    (``crawl.auth``) show their environment references, never a value.
    """
    environ = os.environ if environ is None else environ
    data = redact_settings(msgspec.to_builtins(loaded.config))
    key_env = loaded.config.llm.api_key_env
    key_state = "set (value redacted)" if environ.get(key_env) else "NOT SET"
    out = [f"# API key: ${key_env} is {key_state}"]
    if loaded.files:
        out.append("# files: " + ", ".join(str(p) for p in loaded.files))
    refused = " (refused unless the project file is trusted)"
    for section, values in data.items():
        items = values.items() if isinstance(values, dict) else [("", values)]
        out.append(f"\n[{section}]" if isinstance(values, dict) else "")  # the top-level key first
        for key, value in items:
            dotted = f"{section}.{key}" if key else section
            note = refused if dotted in loaded.untrusted else ""
            origin = loaded.origins.get(dotted, DEFAULTS_ORIGIN)
            out.append(f"{key or section} = {_toml_value(value)}  # {origin}{note}")
    return "\n".join(out) + "\n"


def template_text() -> str:
    """A commented template for ``config init``: the packaged defaults, every key commented."""
    return defaults_text()
