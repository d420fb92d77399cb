"""What the provider accepts, learnt from its refusals: streaming, and the form of structured
output (asking for JSON of a given schema).

Providers disagree on ``response_format``:

    json_schema  {"type": "json_schema", "json_schema": {"name", "strict", "schema"}}
                 OpenAI, vLLM, Ollama, LM Studio, llama.cpp's own server
    json_object  {"type": "json_object", "schema": {...}}: llama-cpp-python's server, which
                 compiles the schema into a grammar (and answers json_schema with an HTTP 500
                 whose body is the validation error naming response_format)
    none         no response_format: the prompt describes the JSON, the answer is read
                 tolerantly (``llm.edit_script.read_script``)

The client starts with the first and moves down the list when a request is refused with a
4xx that names ``response_format`` (``refuses_format``), for the rest of the run; likewise it
streams until a request is refused with a 4xx naming ``stream``. Each refusal is a warning,
once, and the request is sent again in the accepted form (it is not the provider's failure).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import structlog

from crawl4ai_llm_docs.llm.provider.classify import Action, Decision
from crawl4ai_llm_docs.llm.provider.streaming import STREAM_REFUSED, refuses_streaming

log = structlog.get_logger()

FormatStyle = Literal["json_schema", "json_object", "none"]
STYLES: tuple[FormatStyle, ...] = ("json_schema", "json_object", "none")
# 500: llama-cpp-python 0.3 reports a request it cannot validate as an internal error.
REFUSAL_STATUSES = frozenset({400, 415, 422, 500, 501})


class StructuredOutput(msgspec.Struct, frozen=True, kw_only=True):
    """What to ask for: a schema name, the schema OpenAI's strict mode accepts, and the same
    schema with the bounds a grammar-compiling server can use (string and array lengths)."""

    name: str
    schema: dict[str, Any]
    grammar_schema: dict[str, Any]


def response_format(style: FormatStyle, output: StructuredOutput) -> dict[str, Any] | None:
    """The ``response_format`` field for ``style`` (None: send none)."""
    if style == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": output.name, "strict": True, "schema": output.schema},
        }
    if style == "json_object":
        return {"type": "json_object", "schema": output.grammar_schema}
    return None


def refuses_format(status: int, body: bytes) -> bool:
    """Whether a refused request was refused for its response_format (a 4xx, or
    llama-cpp-python's 500, whose body names it)."""
    lowered = body.lower()
    return status in REFUSAL_STATUSES and (
        b"response_format" in lowered or b"json_schema" in lowered
    )


# The provider refused the request's response_format: not an outcome, a reason to resend it.
FORMAT_REFUSED = Decision(Action.RETRY, "the provider refused the response_format")


class Accepted:
    """What one provider has shown it accepts (one per client, so per run)."""

    def __init__(self, *, stream: bool) -> None:
        self.stream = stream  # False for good once the provider refuses streaming
        self.format: FormatStyle = STYLES[0]  # moves down STYLES as the provider refuses
        self._usage_warned = False

    def refusal(
        self, status: int, body: bytes, *, streamed: bool, formatted: bool
    ) -> Decision | None:
        """``FORMAT_REFUSED`` or ``STREAM_REFUSED`` when that is why the request was refused."""
        if formatted and refuses_format(status, body):
            return FORMAT_REFUSED
        if streamed and refuses_streaming(status, body):
            return STREAM_REFUSED
        return None

    def learn(self, outcome: object, sent: FormatStyle) -> bool:
        """Whether ``outcome`` was a refusal of a form (then the next request uses another);
        ``sent`` is the response_format form the refused request had."""
        if outcome is FORMAT_REFUSED:
            refused = sent
            if self.format != refused:
                return True  # a request sent at the same time was refused first: moved on
            self.format = STYLES[min(STYLES.index(refused) + 1, len(STYLES) - 1)]
            then = (
                f"sending {self.format} from now on."
                if self.format != "none"
                else "sending no response_format from now on (the prompt describes the JSON)."
            )
            log.warning(
                "warning", message=f"The provider refused response_format {refused}; {then}"
            )
            return True
        if outcome is STREAM_REFUSED:
            if self.stream:
                self.stream = False
                log.warning(
                    "warning",
                    message="The provider refused a streamed request; sending plain requests "
                    "from now on (set llm.stream = false to skip the first try). Without "
                    "streaming a request is bounded by request_timeout as a whole.",
                )
            return True
        return False

    def warn_estimated_usage(self) -> None:
        if not self._usage_warned:
            self._usage_warned = True
            log.warning(
                "warning",
                message="The provider's streams carry no usage: token counts are estimated "
                "(prompt from the tokenizer, answer from its length).",
            )
