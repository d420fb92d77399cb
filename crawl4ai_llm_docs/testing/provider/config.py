"""The fake provider's behaviour knobs, as one msgspec Struct shared by the API, CLI and /_control.

Every field is optional; the defaults give a well-behaved provider (no faults, no limits,
any model accepted). Build instances with `make_config` (or `msgspec.convert`) so the
constraints are checked; `ProviderConfig(...)` alone does not validate them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

HeaderDialect = Literal["openai", "anthropic", "ietf", "none"]
HeaderScope = Literal["bucket", "minute"]
LimitWindow = Literal["bucket", "minute", "first_request"]
RetryAfterMode = Literal["auto", "always", "never"]

Rate = Annotated[float, Meta(ge=0.0, le=1.0)]
Seconds = Annotated[float, Meta(ge=0.0)]
PositiveInt = Annotated[int, Meta(ge=1)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
ErrorCode = Annotated[int, Meta(ge=400, le=599)]


class ProviderConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Live configuration; `/_control` and `FakeProvider.update` replace it as a whole."""

    seed: int = 0
    # Latency of a successful answer: mean +/- uniform jitter, plus a per-output-size part.
    latency: Seconds = 0.0
    latency_jitter: Seconds = 0.0
    latency_per_1k_tokens: Seconds = 0.0
    # Token buckets; None disables that limit. Burst defaults to the per-minute limit.
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    burst_requests: PositiveInt | None = None
    burst_tokens: PositiveInt | None = None
    header_dialect: HeaderDialect = "openai"
    # What the headers describe: "bucket" reports the enforcing bucket itself (limit per
    # minute, remaining <= the burst, reset = until full); "minute" reports a per-minute view
    # (remaining of `rpm` / `tpm`, as OpenAI documents it) while the burst-sized bucket still
    # enforces, like OpenAI's "60,000 RPM enforced as 1,000 per second". 429s then also carry
    # `retry-after-ms`. With header_dialect "none" no headers are sent either way.
    header_scope: HeaderScope = "bucket"
    # How `rpm` / `tpm` are enforced: "bucket" = the token buckets above; "minute" = fixed
    # windows, at most `rpm` requests (`tpm` tokens) per minute of the wall clock (as LiteLLM,
    # Kong or Upstash count); "first_request" = a window opens with a request and lasts 60 s
    # (a counter that expires, as Redis INCR + EXPIRE limiters count). `burst_*` do not apply.
    limit_window: LimitWindow = "bucket"
    # The `Retry-After` header of a 429: "auto" sends it unless header_dialect is "none";
    # "always" sends it even then (a silent provider that still says when to come back).
    retry_after: RetryAfterMode = "auto"
    # A 429's message says "Please try again in Ns." (OpenAI's wording); false: a bare
    # "Rate limit reached" with no delay anywhere, as many gateways and proxies answer.
    rate_limit_hint: bool = True
    # Injected faults, each a fraction of admitted requests (checked in this order).
    error_rate: Rate = 0.0
    error_codes: tuple[ErrorCode, ...] = (500, 502, 503, 529)
    hang_rate: Rate = 0.0
    drop_rate: Rate = 0.0
    malformed_rate: Rate = 0.0
    empty_choices_rate: Rate = 0.0
    # After this many successes every request is refused as out of quota (a fatal error).
    quota_after: NonNegativeInt | None = None
    context_limit: PositiveInt | None = None
    max_output_tokens: PositiveInt | None = None
    require_api_key: str | None = None
    # Empty means any model name is accepted.
    models: tuple[str, ...] = ()
    # Batch API (`provider_batch`): false answers 404 on /v1/files and /v1/batches.
    batch_api: bool = True
    # Seconds from a batch's creation to `completed` (validating, in_progress, finalizing).
    batch_latency: Seconds = 1.0
    # Share of the lines sent for the first time that fail (HTTP 500 in the error file).
    batch_error_rate: Rate = 0.0
    # The first N batches created expire, with half their lines answered.
    batch_expire_first: NonNegativeInt = 0
    # Answers to requests asked above this temperature keep only the first quarter of the
    # document (an answer the faithfulness check rejects); None: every answer is faithful.
    # A retry at temperature 0 then gets a faithful answer.
    unfaithful_above_temperature: Annotated[float, Meta(ge=0.0)] | None = None
    # Requests served at once (None: unlimited). Later ones wait server-side, in arrival order,
    # like llama.cpp, Ollama or LM Studio with a fixed number of slots.
    slots: PositiveInt | None = None
    # Answer `"stream": true` with server-sent events; false refuses it (HTTP 400), as some
    # OpenAI-compatible servers do.
    streaming: bool = True
    # A streamed answer arrives in this many pieces, spread evenly over its latency.
    stream_chunks: PositiveInt = 16
    # Send the final usage chunk when `stream_options.include_usage` asks for it.
    stream_usage: bool = True
    # The structured output (response_format) accepted, as OpenAI (json_schema), the
    # llama-cpp-python server (json_object with a schema) or a server with none (none).
    structured_output: Literal["json_schema", "json_object", "none"] = "json_schema"
    # The first N answers to a <document> loop until the token cap, like a small model at
    # temperature 0: one line (or one edit) again and again.
    loop_first: NonNegativeInt = 0

    def __post_init__(self) -> None:
        if not self.error_codes:
            raise ValueError("error_codes must name at least one status code")


def make_config(fields: dict[str, Any] | None = None, *, strict: bool = True) -> ProviderConfig:
    """Validate plain data into a config; `strict=False` also accepts numbers given as strings."""
    return msgspec.convert(fields or {}, ProviderConfig, strict=strict)


def merge_config(config: ProviderConfig, changes: dict[str, Any]) -> ProviderConfig:
    """Return `config` with `changes` applied, validated like a fresh config."""
    return make_config({**msgspec.structs.asdict(config), **changes})
