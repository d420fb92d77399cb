"""What the fake model answers to an edit-mode request: a plausible, deterministic edit script.

A request is an edit request when its `<document>` holds numbered lines (`12| text`: the
tool's edit mode numbers every non-blank line, a fenced code block once). The script is
derived from the lines alone, as a careful model would write it:

- `drop`: lines made only of links (navigation, breadcrumbs, "Next: [Usage](...)"), merged
  into ranges;
- `join`: runs of two or more consecutive plain prose lines (one paragraph wrapped over
  several lines);
- `headings`: when the page's highest heading is below level 1, every heading moved up so
  that it is;
- `description`: `Fake summary of "TITLE".` as for a rewrite; `title` empty.

`response_format` decides the form: answered as structured output (`json_schema` or
`json_object`), the answer is the JSON alone; without one, the JSON comes inside a
```` ```json ```` fence after a sentence, as a chatty model writes it, so the tool's tolerant
reader is exercised. Which forms the server accepts is `ProviderConfig.structured_output`:
a form it does not take is refused (`format_refusal`) as OpenAI (400) or llama-cpp-python
0.3 (500, its validation error as the message) refuse it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from crawl4ai_llm_docs.testing.provider import errors

_NUMBERED = re.compile(r"^ *(\d+)\| (.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(\S.*)$")
_LINK = r"!?\[[^\]\n]*\]\([^)\n]*\)"
_LINK_ONLY = re.compile(rf"^\s*(?:[-*+]\s+)?(?:{_LINK}[\s|>»·,/:-]*)+$")
_NOT_PROSE = re.compile(r"^(?:\s{4}|\t|\s*(?:[-*+]\s|\d+[.)]\s|[|>#<]|`{3}|~{3}|[-=*_]{3}))")


class ResponseFormat(msgspec.Struct):
    type: str = "text"
    json_schema: dict[str, Any] | None = None
    schema: dict[str, Any] | None = None


class Unit(msgspec.Struct, frozen=True):
    number: int
    line: str  # the unit's first line, without its number
    follows: bool  # right after the previous unit's last line (no blank line between)
    lines: int  # how many lines it has (a code block has several)


def numbered_units(document: str) -> list[Unit] | None:
    """The units of a numbered document, or None when it is not numbered."""
    units: list[Unit] = []
    blank_before = True
    for raw in document.split("\n"):
        match = _NUMBERED.match(raw)
        if match:
            units.append(Unit(int(match.group(1)), match.group(2), not blank_before, 1))
            blank_before = False
        elif not raw.strip():
            blank_before = True
        elif units:  # a line of the code block the last number opened
            last = units[-1]
            units[-1] = msgspec.structs.replace(last, lines=last.lines + 1)
            blank_before = False
        else:
            return None
    return units or None


def plain_text(document: str) -> str:
    """The document without its line numbers: the chunk the tool numbered."""
    return "\n".join(
        match.group(2) if (match := _NUMBERED.match(line)) else line
        for line in document.split("\n")
    )


def _ranges(numbers: list[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ranges


def edit_script(units: list[Unit], description: str) -> dict[str, Any]:
    drop = [u.number for u in units if u.lines == 1 and _LINK_ONLY.match(u.line)]
    dropped = set(drop)
    join: list[list[int]] = []
    run: list[int] = []
    for unit in units:
        prose = unit.lines == 1 and unit.number not in dropped and not _NOT_PROSE.match(unit.line)
        if prose and run and unit.follows and unit.number == run[-1] + 1:
            run.append(unit.number)
            continue
        if len(run) > 1:
            join.append([run[0], run[-1]])
        run = [unit.number] if prose else []
    if len(run) > 1:
        join.append([run[0], run[-1]])
    levels = {u.number: len(m.group(1)) for u in units if (m := _HEADING.match(u.line))}
    shift = min(levels.values(), default=1) - 1
    headings = [{"line": n, "level": level - shift} for n, level in levels.items()] if shift else []
    return {
        "description": description,
        "drop": _ranges(drop),
        "headings": headings,
        "join": join,
        "title": "",
    }


def render(script: dict[str, Any], response_format: ResponseFormat | None) -> str:
    """The answer text: the JSON alone as structured output, else wrapped as a chatty model
    writes it."""
    if response_format is not None and response_format.type in ("json_schema", "json_object"):
        return json.dumps(script)
    return "Here is the edit script:\n\n```json\n" + json.dumps(script, indent=1) + "\n```\n"


def format_refusal(
    response_format: ResponseFormat | None, accepted: str
) -> errors.ErrorResponse | None:
    """The error a server taking only ``accepted`` structured output gives this request."""
    if response_format is None or response_format.type == "text":
        return None
    kind = response_format.type
    if accepted == "none":
        return errors.invalid_request(
            "response_format is not supported by this model", "response_format"
        )
    if accepted == "json_object" and kind != "json_object":
        # llama-cpp-python 0.3: pydantic's validation error, sent as an internal error.
        message = (
            "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
            f"'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
            f"'input': '{kind}'}}\n"
        )
        return 500, {
            "error": {
                "message": message,
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        }
    if accepted == "json_schema" and kind == "json_object" and response_format.schema is not None:
        return errors.invalid_request(
            "Unknown parameter: 'response_format.schema'.", "response_format.schema"
        )
    return None
