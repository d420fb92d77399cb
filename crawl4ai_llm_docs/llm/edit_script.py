"""An edit script, the answer of edit mode: what it holds, its JSON schema, a tolerant reader.

    {"description": "One sentence.", "drop": [[3, 5], [40, 40]],
     "headings": [{"line": 1, "level": 1}], "join": [[8, 11]], "title": ""}

Line numbers are those the prompt showed (``edits.NumberedChunk``). The schema goes to the
provider as structured output where it takes one; where it does not (or ignores it), the
answer is read by ``read_script``, which takes what models write instead: the object inside
a ```` ```json ```` fence or after a sentence, line breaks inside strings, trailing commas, ranges as ``7``, ``"3-5"``,
``[7]`` or ``{"from": 3, "to": 5}``, headings as ``[12, 2]`` or ``{"12": "##"}``, and the
keys' obvious synonyms. What it cannot read raises ``ScriptError`` with a one-line reason:
such an answer is unfaithful (asked again, then the chunk keeps its crawled text).

``EditLoopGuard`` stops a streamed script that repeats itself (the same range or heading
over and over, a description that never ends), as ``faithfulness.guard`` does for rewrites.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import msgspec

# The name providers see in response_format (and the fake provider recognises).
SCHEMA_NAME = "edit_script"
DESCRIPTION_MAX_CHARS = 300
TITLE_MAX_CHARS = 200

_FENCED = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_]\w*)(\s*:)")
_RANGE_TEXT = re.compile(r"^\s*(\d+)\s*(?:(?:-|\u2013|\.\.|to|:)\s*(\d+))?\s*$")
_LEVEL_TEXT = re.compile(r"^\s*(?:h|level\s*)?(\d)\s*$", re.IGNORECASE)
# Synonyms models use for the keys (compared in lower case).
_KEYS = {
    "description": ("description", "summary", "desc"),
    "title": ("title", "page_title"),
    "drop": ("drop", "remove", "delete", "drops", "boilerplate"),
    "headings": ("headings", "heading", "levels", "relevel"),
    "join": ("join", "joins", "merge", "reflow"),
}
_RANGE_START = ("from", "start", "first", "line", "begin")
_RANGE_END = ("to", "end", "last", "through")
_HEADING_LINE = ("line", "number", "n", "at")
_HEADING_LEVEL = ("level", "depth", "heading")

Range = tuple[int, int]


class ScriptError(ValueError):
    """The answer is no edit script this reader can use; the message is one line."""


class EditScript(msgspec.Struct, frozen=True, kw_only=True):
    description: str = ""
    title: str = ""
    drop: tuple[Range, ...] = ()
    headings: tuple[Range, ...] = ()  # (line, level)
    join: tuple[Range, ...] = ()


def edit_schema(*, grammar: bool) -> dict[str, Any]:
    """The JSON schema of a script. ``grammar``: for servers that compile it into a grammar
    (llama.cpp), with lengths bounded so a small model cannot run on inside one string;
    without it, only what OpenAI's strict structured outputs accept."""
    pair: dict[str, Any] = {"type": "array", "items": {"type": "integer"}}
    description: dict[str, Any] = {"type": "string"}
    title: dict[str, Any] = {"type": "string"}
    if grammar:
        pair |= {"minItems": 2, "maxItems": 2}
        description["maxLength"] = DESCRIPTION_MAX_CHARS
        title["maxLength"] = TITLE_MAX_CHARS
    heading = {
        "type": "object",
        "properties": {"line": {"type": "integer"}, "level": {"type": "integer"}},
        "required": ["line", "level"],
        "additionalProperties": False,
    }
    properties = {
        "description": description,
        "drop": {"type": "array", "items": pair},
        "headings": {"type": "array", "items": heading},
        "join": {"type": "array", "items": pair},
        "title": title,
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# ---------------------------------------------------------------- reading


def read_script(text: str) -> EditScript:
    """The script in a model's answer; raises ScriptError when there is none."""
    data = _json_object(text)
    fields = _known_fields(data)
    if not fields:
        keys = ", ".join(sorted(map(str, data)))[:80] or "none"
        raise ScriptError(f"the JSON answer has none of the edit script's keys (it has: {keys})")
    return EditScript(
        description=_text(fields.get("description"), DESCRIPTION_MAX_CHARS),
        title=_text(fields.get("title"), TITLE_MAX_CHARS),
        drop=_ranges("drop", fields.get("drop")),
        headings=_headings(fields.get("headings")),
        join=_ranges("join", fields.get("join")),
    )


def _json_object(text: str) -> dict[str, Any]:
    body = text.lstrip("\ufeff").strip()
    if not body:
        raise ScriptError("the answer is empty, not an edit script")
    candidates = [match.group(1) for match in _FENCED.finditer(body)] + [body]
    fallback: dict[str, Any] | None = None
    for candidate in candidates:
        for variant in _repairs(candidate):
            found = _first_object(variant)
            if found is not None and _known_fields(found):
                return found
            fallback = fallback or found
    if fallback is not None:
        return fallback
    flat = " ".join(body.split())
    shown = f"{flat!r}" if len(flat) <= 100 else f"{flat[:60]!r} ... {flat[-30:]!r}"
    raise ScriptError(f"the answer is not a JSON edit script: {shown}")


def _repairs(text: str) -> list[str]:
    """The text, then with trailing commas removed, then with bare keys quoted too."""
    without_commas = _TRAILING_COMMA.sub(r"\1", text)
    return [text, without_commas, _BARE_KEY.sub(r'\1"\2"\3', without_commas)]


def _first_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (text around it ignored), unwrapped when it holds
    the script under one key (``{"edits": {...}}``)."""
    # strict=False: a line break inside a string is taken (llama.cpp's grammar lets SmolLM2
    # copy "Title: ...\nPart: 1 of 3" from the prompt into one).
    decoder = json.JSONDecoder(strict=False)
    at = text.find("{")
    tries = 0
    while at >= 0 and tries < 20:
        tries += 1
        try:
            value, _ = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            if _known_fields(value):
                return value
            inner = next(iter(value.values()), None) if len(value) == 1 else None
            if isinstance(inner, dict) and _known_fields(inner):
                return inner
            return value
        at = text.find("{", at + 1)
    return None


def _known_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).strip().lower().replace("-", "_").replace(" ", "_")
        for field, synonyms in _KEYS.items():
            if name in synonyms and field not in fields:
                fields[field] = value
    return fields


def _text(value: Any, limit: int) -> str:
    if isinstance(value, list):
        value = " ".join(str(item) for item in value if isinstance(item, str))
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:limit]


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ScriptError(f"{what}: {value!r} is not a line number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ScriptError(f"{what}: {value!r} is not a line number")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        # [3, 5] alone is one range, not the lines 3 and 5: a list of two numbers in a list
        # of ranges is read by _range, so only a flat pair needs wrapping here.
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [value]
        return value
    return [value]


def _range(item: Any, what: str) -> Range:
    if isinstance(item, str):
        match = _RANGE_TEXT.match(item)
        if not match:
            raise ScriptError(f"{what}: {item!r} is not a line range")
        first = int(match.group(1))
        return first, int(match.group(2) or first)
    if isinstance(item, list | tuple):
        if len(item) not in (1, 2):
            raise ScriptError(f"{what}: {list(item)!r} is not a range [first, last]")
        first = _integer(item[0], what)
        return first, _integer(item[-1], what)
    if isinstance(item, dict):
        lowered = {str(k).lower(): v for k, v in item.items()}
        start = next((lowered[k] for k in _RANGE_START if k in lowered), None)
        end = next((lowered[k] for k in _RANGE_END if k in lowered), start)
        if start is None:
            raise ScriptError(f"{what}: {item!r} names no first line")
        return _integer(start, what), _integer(end, what)
    number = _integer(item, what)
    return number, number


def _ranges(name: str, value: Any) -> tuple[Range, ...]:
    return tuple(_range(item, f"{name} range") for item in _listed(value))


def _level(value: Any) -> int:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped and set(stripped) == {"#"}:
            return len(stripped)
        match = _LEVEL_TEXT.match(stripped)
        if match:
            return int(match.group(1))
    return _integer(value, "heading level")


def _headings(value: Any) -> tuple[Range, ...]:
    if isinstance(value, dict) and value and all(str(k).strip().isdigit() for k in value):
        return tuple((int(str(k).strip()), _level(v)) for k, v in value.items())
    found: list[Range] = []
    for item in _listed(value):
        if isinstance(item, dict):
            lowered = {str(k).lower(): v for k, v in item.items()}
            line = next((lowered[k] for k in _HEADING_LINE if k in lowered), None)
            level = next((lowered[k] for k in _HEADING_LEVEL if k in lowered), None)
            if line is None or level is None:
                raise ScriptError(f"heading {item!r} needs a line and a level")
            found.append((_integer(line, "heading line"), _level(level)))
        elif isinstance(item, list | tuple) and len(item) == 2:
            found.append((_integer(item[0], "heading line"), _level(item[1])))
        else:
            raise ScriptError(f"heading {item!r} is not {{'line': N, 'level': L}}")
    return tuple(found)


# ---------------------------------------------------------------- a script that loops

# Elements of a script that name lines: a range or a pair ([3, 5]), or a small object
# ({"line": 3, ...}). Empty lists ("drop": []) are no elements: a script has several.
_ELEMENT = re.compile(r"\[[^\[\]{}]*\d[^\[\]{}]*\]|\{[^{}\[\]]*\d[^{}\[\]]*\}")
# Longer than any one-sentence description, or any script of a sane chunk: a loop.
_MAX_STRING_CHARS = 2_000


class EditLoopGuard:
    """Stops a streamed script that repeats an element more than ``max_repeats`` times or
    writes one string without end; a script cut off at max_tokens is never split (the chunk
    is the prompt, and a smaller one would not help a model that loops)."""

    def __init__(self, *, max_repeats: int) -> None:
        self._limit = max_repeats
        self._parts: list[str] = []
        self._size = 0
        self._scanned = 0  # characters already scanned for whole elements
        self._counts: Counter[str] = Counter()
        self._open_string = 0  # characters since the last quote

    def feed(self, text: str) -> str | None:
        """Why to stop the answer now that ``text`` arrived, or None."""
        self._parts.append(text)
        self._size += len(text)
        quote = text.rfind('"')
        self._open_string = len(text) - quote - 1 if quote >= 0 else self._open_string + len(text)
        if self._open_string > _MAX_STRING_CHARS:
            return f"a string of the edit script ran past {_MAX_STRING_CHARS} characters"
        if "]" not in text and "}" not in text:
            return None
        whole = "".join(self._parts)
        self._parts = [whole]
        # Elements that end after the last scan (a few characters back, for one cut in two).
        start = max(0, self._scanned - 64)
        for match in _ELEMENT.finditer(whole, start):
            if match.end() <= self._scanned:
                continue
            element = "".join(match.group(0).split())
            self._counts[element] += 1
            if self._counts[element] > self._limit:
                return (
                    f"the edit script repeats {element} {self._counts[element]} times "
                    f"(at most {self._limit} allowed)"
                )
        self._scanned = len(whole)
        return None

    def cut_off(self, content: str) -> str:
        """Why a script cut off at max_tokens is unusable: always (a half script is none)."""
        return f"the edit script was cut off at max_tokens ({len(content)} characters)"
