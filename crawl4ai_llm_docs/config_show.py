"""Settings as they are shown (``config show``, the ``run_started`` event): every value with
its origin, and no secret: the API key only as set or not, credentials redacted."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from crawl4ai_llm_docs.config_schema import DEFAULTS_ORIGIN, LoadedConfig

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
