"""A chat completion's JSON: the parts this tool reads, and the one ``Completion`` it keeps.

``decode_completion`` turns a plain (non-streamed) answer's body into a ``Completion`` or a
retry/split ``Decision``; ``streaming.StreamReader`` does the same for a streamed one. An
``AnswerGuard`` (the caller's, one per attempt) may stop a streamed answer that can no longer
be used, and says whether an answer cut off at ``max_tokens`` was (then it is a ``Completion``
marked ``stopped``, an unfaithful answer) or is only too long (a split).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from crawl4ai_llm_docs.llm.provider.classify import Action, Decision


class Message(msgspec.Struct):
    content: str | None = None


class Choice(msgspec.Struct):
    message: Message | None = None
    finish_reason: str | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResponse(msgspec.Struct):
    choices: list[Choice] = []
    usage: Usage | None = None
    model: str = ""


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    # Why the answer was stopped or cut off unusable ("": it is whole): an unfaithful answer.
    stopped: str = ""


class AnswerGuard(Protocol):
    """Watches one answer: ``feed`` each piece as it streams in, ``cut_off`` at the end."""

    def feed(self, text: str) -> str | None:
        """Why to stop reading the answer now, or None."""
        ...

    def cut_off(self, content: str) -> str | None:
        """Why an answer cut off at max_tokens is unusable, or None (too large: split)."""
        ...


_response_decoder = msgspec.json.Decoder(ChatResponse)


def decode_completion(body: bytes, guard: AnswerGuard | None = None) -> Completion | Decision:
    """A 200's body as a Completion, or a retry decision when it is unusable."""
    try:
        response = _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Decision(Action.RETRY, f"malformed response body ({str(exc)[:120]})")
    if not response.choices or response.choices[0].message is None:
        return Decision(Action.RETRY, "response has no choices")
    choice = response.choices[0]
    content = (choice.message.content if choice.message else None) or ""
    usage = response.usage or Usage()
    return finished_answer(content, choice.finish_reason, usage, response.model, guard)


def finished_answer(
    content: str,
    finish_reason: str | None,
    usage: Usage,
    model: str,
    guard: AnswerGuard | None = None,
) -> Completion | Decision:
    """A whole answer (plain or streamed): a Completion, or a split when it was cut off
    (unless the guard finds the cut-off answer unusable: a loop is no reason to split)."""
    finish = finish_reason or "stop"
    stopped = guard.cut_off(content) if guard is not None and finish == "length" else None
    if finish == "length" and not stopped:
        return Decision(
            Action.SPLIT,
            "answer cut off at max_tokens (finish_reason=length)",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
    return Completion(
        content=content,
        finish_reason=finish,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        model=model,
        stopped=stopped or "",
    )
