"""A chat completion's JSON: the parts this tool reads, and the one ``Completion`` it keeps.

``decode_completion`` turns a plain (non-streamed) answer's body into a ``Completion`` or a
retry/split ``Decision``; ``streaming.StreamReader`` does the same for a streamed one.
"""

from __future__ import annotations

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


_response_decoder = msgspec.json.Decoder(ChatResponse)


def decode_completion(body: bytes) -> Completion | Decision:
    """A 200's body as a Completion, or a retry decision when it is unusable."""
    try:
        response = _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Decision(Action.RETRY, f"malformed response body ({str(exc)[:120]})")
    if not response.choices or response.choices[0].message is None:
        return Decision(Action.RETRY, "response has no choices")
    choice = response.choices[0]
    content = (choice.message.content if choice.message else None) or ""
    return finished_answer(content, choice.finish_reason, response.usage or Usage(), response.model)


def finished_answer(
    content: str, finish_reason: str | None, usage: Usage, model: str
) -> Completion | Decision:
    """A whole answer (plain or streamed): a Completion, or a split when it was cut off."""
    finish = finish_reason or "stop"
    if finish == "length":
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
    )
