"""What is sent for a chunk, how the answer is read back, and whether it kept its code.

The page is data, placed between ``<document>`` and ``</document>`` by the user prompt
template; a ``</document>`` inside the page is escaped so the page cannot end the data early
and smuggle text into the instruction part of the prompt. Answers are un-escaped.
"""

from __future__ import annotations

import re

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts
from crawl4ai_llm_docs.llm.faithfulness.judge import (
    FaithfulSettings,
    code_blocks_problem,
    length_problem,
)
from crawl4ai_llm_docs.models import Chunk

# {{ and }} stay literal braces as in str.format; other braces are left alone so a template
# may contain JSON or code examples without escaping them.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(url|title|part|content)\}")
_CLOSING_TAG = re.compile(r"</(\s*document\b)", re.IGNORECASE)
_ESCAPED_TAG = re.compile(r"<\\/(\s*document\b)", re.IGNORECASE)
_DESCRIPTION = re.compile(
    r"\A<!--\s*description\s*:?(.*?)-->[ \t]*(?:\n|\Z)", re.IGNORECASE | re.DOTALL
)
_WRAPPER_OPEN = re.compile(r"\A(`{3,}|~{3,})[ \t]*(?:markdown|md)[ \t]*\n", re.IGNORECASE)
_DOCUMENT_WRAPPER = re.compile(
    r"\A<document>\s*\n(.*)\n\s*</document>\Z", re.DOTALL | re.IGNORECASE
)


def escape_content(text: str) -> str:
    """Make ``</document>`` (any case or spacing) inside page text unable to close the data."""
    return _CLOSING_TAG.sub(r"<\\/\1", text)


def unescape_content(text: str) -> str:
    return _ESCAPED_TAG.sub(r"</\1", text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def part_label(chunk: Chunk) -> str:
    return f"{chunk.chunk_index + 1} of {chunk.chunk_count}"


def render_user_prompt(template: str, *, url: str, title: str, part: str, content: str) -> str:
    values = {"url": url, "title": title, "part": part, "content": content}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        return values[name]

    # One pass: text put in (the page) is never scanned for placeholders again.
    return _PLACEHOLDER.sub(fill, template)


def build_messages(
    chunk: Chunk, llm: LLMConfig, *, system_prompt: str | None = None, content: str | None = None
) -> list[dict[str, str]]:
    """The chat messages for one chunk: the system prompt, then the filled user prompt.

    Edit mode gives its own system prompt and the chunk's numbered lines as ``content``.
    """
    user = render_user_prompt(
        llm.user_prompt,
        url=_one_line(chunk.url),
        title=escape_content(_one_line(chunk.title)),
        part=part_label(chunk),
        content=escape_content(chunk.text if content is None else content),
    )
    return [
        {
            "role": "system",
            "content": llm.system_prompt if system_prompt is None else system_prompt,
        },
        {"role": "user", "content": user},
    ]


def _unwrap_fence(text: str) -> str:
    """The inside of a ```` ```markdown ```` fence wrapping the whole answer, else the text."""
    opening = _WRAPPER_OPEN.match(text)
    if not opening:
        return text
    marker = opening.group(1)
    lines = text[opening.end() :].rstrip().split("\n")
    last = lines[-1].strip()
    if last and set(last) == {marker[0]} and len(last) >= len(marker):
        return "\n".join(lines[:-1]).strip()
    return text


def parse_answer(text: str) -> tuple[str, str]:
    """``(description, markdown)`` from a model answer.

    The ``<!-- description: ... -->`` line is optional; a ```` ```markdown ```` fence or a
    ``<document>`` element around the whole answer (before or after the description) is removed.
    """
    body = _unwrap_fence(text.lstrip("\ufeff").strip())
    description = ""
    if match := _DESCRIPTION.match(body):
        description = _one_line(match.group(1))
        body = body[match.end() :].strip()
    body = _unwrap_fence(body)
    if wrapped := _DOCUMENT_WRAPPER.match(body):
        body = wrapped.group(1).strip()
    return unescape_content(description), unescape_content(body)


def _non_space(text: str) -> int:
    # str.split() drops exactly the white space; far faster than a per-character loop.
    return len("".join(text.split()))


def check_faithful(source: str, answer: str, *, min_ratio: float) -> str | None:
    """Why ``answer`` cannot stand in for ``source``, or None when it keeps the content, by
    the code-block and length rules only (the stage uses all of ``faithful.judge``).

    An answer is rejected when it has fewer code blocks than the source, when a non-blank line
    of a source code block is in none of its code blocks (whitespace aside), when it has an
    empty or unclosed fence the source has not, or when it has fewer than ``min_ratio`` of the
    source's non-space characters.
    """
    problem = code_blocks_problem(MarkdownFacts.of(source), MarkdownFacts.of(answer))
    if problem is not None:
        return problem
    return length_problem(source, answer, FaithfulSettings(min_output_ratio=min_ratio))
