"""The two cleaning modes (``llm.cleaning``): what is asked for a chunk, and how the answer
becomes its Markdown.

    rewrite  the model writes the cleaned chunk back (``prompts``). Never paying for an
             answer that cannot be used: ``max_tokens`` is what ``max_output_ratio`` allows
             for this chunk (a longer answer is rejected anyway), and ``faithfulness.guard``
             stops a streamed answer once it loops or passes that length.
    edit     the model sees the chunk's numbered lines and answers with an edit script
             (``edits``, ``edit_script``), asked for as structured output, in at most
             ``edit_max_tokens``; a script that repeats itself is stopped. The tool applies
             it to the crawled Markdown: code and prose cannot be changed or invented.

Either way the result is judged by ``faithfulness.judge`` (in edit mode that mainly guards
against over-deletion), and an answer that was stopped, cut off by a loop, or is no valid
script has a ``problem``: it is unfaithful (asked again, then the crawled text is kept).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NamedTuple

import msgspec

from crawl4ai_llm_docs.config import LLMConfig
from crawl4ai_llm_docs.llm.edit_script import (
    SCHEMA_NAME,
    EditLoopGuard,
    ScriptError,
    edit_schema,
    read_script,
)
from crawl4ai_llm_docs.llm.edits import NumberedChunk
from crawl4ai_llm_docs.llm.faithfulness.facts import MarkdownFacts
from crawl4ai_llm_docs.llm.faithfulness.guard import AnswerGuard as RewriteGuard
from crawl4ai_llm_docs.llm.faithfulness.judge import FaithfulSettings, invented_code
from crawl4ai_llm_docs.llm.prompts import (
    build_messages,
    parse_answer,
    part_label,
    render_user_prompt,
)
from crawl4ai_llm_docs.llm.provider.accepted import StructuredOutput
from crawl4ai_llm_docs.llm.provider.completion import AnswerGuard, Completion
from crawl4ai_llm_docs.models import Chunk

# Tokens the system prompt and template add around the chunk, for the limiter's estimate.
PROMPT_OVERHEAD_TOKENS = 400
# Edit mode: the edit prompt is longer, and each numbered line adds its "N| " (~3 tokens).
EDIT_PROMPT_OVERHEAD_TOKENS = 500
NUMBER_TOKENS_PER_LINE = 3
# Rewrite mode's max_tokens: the ratio's share of the chunk's tokens (counted with tiktoken;
# a provider's tokenizer may count up to a quarter more), plus the description line.
TOKENIZER_SLACK = 1.25
ANSWER_MARGIN_TOKENS = 64

_WORD = re.compile(r"\w+")
_STRUCTURED = StructuredOutput(
    name=SCHEMA_NAME, schema=edit_schema(grammar=False), grammar_schema=edit_schema(grammar=True)
)


class Request(NamedTuple):
    """Everything ``ChatClient.complete`` is given for one chunk."""

    messages: list[dict[str, str]]
    prompt_tokens: int  # the estimate the rate limiter reserves, with max_tokens
    max_tokens: int
    structured: StructuredOutput | None
    guard: Callable[[], AnswerGuard]


class Reading(NamedTuple):
    """An answer read: its description and Markdown, or why it cannot be used."""

    description: str
    markdown: str
    problem: str | None = None


def rewrite_max_tokens(chunk: Chunk, llm: LLMConfig) -> int:
    """The most a faithful rewrite of ``chunk`` can need: the ratio's share, with slack."""
    allowed = math.ceil(llm.max_output_ratio * chunk.tokens * TOKENIZER_SLACK)
    return min(llm.max_tokens, allowed + ANSWER_MARGIN_TOKENS)


class Cleaning:
    """One run's cleaning mode, with the faithfulness settings its guards apply."""

    def __init__(self, llm: LLMConfig, settings: FaithfulSettings) -> None:
        self._llm = llm
        self._settings = settings
        self.edit = llm.cleaning == "edit"

    def request(self, chunk: Chunk, facts: MarkdownFacts) -> Request:
        llm = self._llm
        if self.edit:
            numbered = NumberedChunk(chunk.text)
            messages = build_messages(
                chunk, llm, system_prompt=llm.edit_system_prompt, content=numbered.render()
            )
            overhead = EDIT_PROMPT_OVERHEAD_TOKENS + NUMBER_TOKENS_PER_LINE * len(numbered.units)
            repeats = self._settings.max_repeats
            return Request(
                messages=messages,
                prompt_tokens=chunk.tokens + overhead,
                max_tokens=llm.edit_max_tokens,
                structured=_STRUCTURED,
                guard=lambda: EditLoopGuard(max_repeats=repeats),
            )
        settings = self._settings
        return Request(
            messages=build_messages(chunk, llm),
            prompt_tokens=chunk.tokens + PROMPT_OVERHEAD_TOKENS,
            max_tokens=rewrite_max_tokens(chunk, llm),
            structured=None,
            guard=lambda: RewriteGuard(facts, settings),
        )

    def prompt_text(self, chunk: Chunk) -> str:
        """What the model was told besides the chunk: its identifiers are not invented."""
        template = render_user_prompt(
            self._llm.user_prompt,
            url=chunk.url,
            title=chunk.title,
            part=part_label(chunk),
            content="",
        )
        system = self._llm.edit_system_prompt if self.edit else self._llm.system_prompt
        return f"{system}\n{template}"

    def read(self, chunk: Chunk, completion: Completion, facts: MarkdownFacts) -> Reading:
        """The answer as Markdown (not judged yet), or why it is unusable."""
        if completion.stopped:
            how = "cut off at max_tokens" if completion.finish_reason == "length" else "stopped"
            return Reading(
                "",
                "",
                f"the answer was {how} after ~{completion.completion_tokens} tokens: {completion.stopped}",
            )
        if not self.edit:
            description, markdown = parse_answer(completion.content)
            return Reading(description, markdown)
        try:
            script = read_script(completion.content)
            if script.title and invented_code(
                facts, MarkdownFacts.of(script.title), prompt=self.prompt_text(chunk)
            ):
                script = msgspec.structs.replace(script, title="")  # an invented title: none
            markdown = NumberedChunk(chunk.text).apply(script, first_chunk=chunk.chunk_index == 0)
        except ScriptError as exc:
            return Reading("", "", f"invalid edit script: {exc}")
        return Reading(self._own_words(script.description), markdown)

    def _own_words(self, description: str) -> str:
        """The description, unless it is copied from the prompt (small models copy the
        example): a page described as "ONE SENTENCE saying what the page covers" has none."""
        words = " ".join(_WORD.findall(description.casefold()))
        prompt = " ".join(_WORD.findall(self._llm.edit_system_prompt.casefold()))
        return "" if not words or f" {words} " in f" {prompt} " else description
