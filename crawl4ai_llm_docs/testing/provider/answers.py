"""What the fake model answers: deterministic text derived from the request, and token counts.

Tokens are estimated as `ceil(characters / 4)` (OpenAI's rule of thumb for English), never
with a real tokenizer, so tests can compute the same numbers by hand:
- prompt tokens: the estimate over all message contents concatenated;
- completion tokens: the estimate over the answer.

The answer to a last user message holding `<document>TEXT</document>` is
`<!-- description: Fake summary of "TITLE". -->`, a blank line, then TEXT stripped, where TITLE
is the first Markdown heading of TEXT or else its first 60 characters (whitespace collapsed).
A `<document>` of numbered lines (edit mode) is answered with an edit script instead
(`edit_answers`). Any other message is echoed back unchanged. With ``unfaithful_above`` set, a request asked
above that temperature gets only the first quarter of TEXT (an unfaithful answer). With `looping=True` (the
provider's `loop_first`) the answer is what a small model at temperature 0 writes when it
loops: its start, then one line (or one edit) again and again until the token cap (4096
when neither the request nor the server sets one).
"""

from __future__ import annotations

import hashlib
import math
import re

import msgspec

from crawl4ai_llm_docs.testing.provider.edit_answers import (
    ResponseFormat,
    edit_script,
    numbered_units,
    plain_text,
    render,
)

_OPEN, _CLOSE = "<document>", "</document>"
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None


class Message(msgspec.Struct):
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct):
    """The part of an OpenAI chat-completions request the fake provider reads."""

    model: str
    messages: list[Message]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None

    def output_cap(self) -> int | None:
        # max_completion_tokens is the newer name; either limits the answer.
        return self.max_completion_tokens if self.max_tokens is None else self.max_tokens


class Answer(msgspec.Struct, frozen=True):
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    document: str | None  # the `<document>` text answered, if any


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def document_digest(text: str) -> str:
    """The id the stats use for an answered document: sha256 hex of the stripped text, 16 chars."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def extract_document(text: str) -> str | None:
    start = text.find(_OPEN)
    end = text.rfind(_CLOSE)
    if start < 0 or end < start + len(_OPEN):
        return None
    return text[start + len(_OPEN) : end].strip()


def summary(document: str) -> str:
    heading = _HEADING.search(document)
    title = heading.group(1).strip() if heading else " ".join(document.split())[:60]
    return f'Fake summary of "{title}".'


def describe(document: str) -> str:
    return f"<!-- description: {summary(document)} -->"


def prompt_tokens(request: ChatRequest) -> int:
    return estimate_tokens("".join(message.text() for message in request.messages))


LOOP_CAP_TOKENS = 4096
LOOP_LINE = "This sentence is what the model writes again and again.\n"
LOOP_EDIT = "[1, 1], "


def answer(
    request: ChatRequest,
    max_output_tokens: int | None,
    unfaithful_above: float | None = None,
    *,
    looping: bool = False,
) -> Answer:
    """The deterministic answer, cut to the smaller of the request's and the server's cap."""
    user = [m for m in request.messages if m.role == "user"] or request.messages
    last = user[-1].text() if user else ""
    document = extract_document(last)
    units = numbered_units(document) if document is not None else None
    if document is None:
        content = last
    elif units is not None:  # edit mode: a script over the numbered lines
        document = plain_text(document)
        content = render(edit_script(units, summary(document)), request.response_format)
    else:
        content = f"{describe(document)}\n\n{document}"
    temperature = 1.0 if request.temperature is None else request.temperature
    if (
        document is not None
        and units is None
        and unfaithful_above is not None
        and temperature > unfaithful_above
    ):
        content = f"{describe(document)}\n\n{document[: len(document) // 4]}"
    caps = [cap for cap in (request.output_cap(), max_output_tokens) if cap is not None]
    if looping and document is not None:
        cap = min(caps or [LOOP_CAP_TOKENS])
        start, again = (
            ('{"description": "x", "drop": [', LOOP_EDIT)
            if units
            else (content[:200] + "\n", LOOP_LINE)
        )
        content = start + again * (cap * 4 // len(again) + 1)
    finish_reason = "stop"
    if caps and estimate_tokens(content) > min(caps):
        content = content[: min(caps) * 4]
        finish_reason = "length"
    return Answer(
        content=content,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens(request),
        completion_tokens=estimate_tokens(content),
        document=document,
    )
