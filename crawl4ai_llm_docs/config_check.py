"""The merged settings checked against the schema: unknown keys (with the closest valid one),
wrong types and out-of-range values, each error naming the key, where it came from, the value
and what is allowed (``describe_allowed``, derived from the schema's annotations)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec
from msgspec import Meta

from crawl4ai_llm_docs.config_schema import (
    DEFAULTS_ORIGIN,
    DOCS_SET_RULE,
    SECTIONS,
    TRUST_KEY,
    AppConfig,
    Origins,
)
from crawl4ai_llm_docs.errors import ConfigError


def field_type(section: str, key: str) -> Any:
    hints = get_type_hints(SECTIONS[section], include_extras=True)
    annotation = hints[key]
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def is_table(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


def _is_table_list(section: str, key: str) -> bool:
    """Whether ``section.key`` is a list of tables (``[[crawl.auth]]``), not of values."""
    if section not in SECTIONS or key not in get_type_hints(SECTIONS[section]):
        return False
    kind = field_type(section, key)
    return get_origin(kind) is list and is_table(get_args(kind)[0])


def _all_keys() -> list[str]:
    return [f"{name}.{key}" for name, cls in SECTIONS.items() for key in cls.__struct_fields__]


def suggest(dotted: str) -> str:
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
    kind = field_type(section, key)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(choice) for choice in get_args(kind))
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        if is_table(item):
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


def check_unknown(data: Mapping[str, Any], origins: Mapping[str, str]) -> None:
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
                    f"{suggest(dotted)} Run `crawl4ai-llm-docs config show` to list valid keys."
                )


def _source_of(origins: Mapping[str, str], section: str) -> str:
    for key, origin in origins.items():
        if key.startswith(section + "."):
            return origin.split(":")[0] if origin.count(":") == 1 else origin
    return "configuration"


def validate(merged: dict[str, Any], origins: Origins) -> AppConfig:
    check_unknown(merged, origins)
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
