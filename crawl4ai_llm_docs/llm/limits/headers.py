"""Rate-limit information from response headers and error bodies, in one shape.

`parse_rate_limit(headers, now=time.time())` reads every dialect providers use and returns a
`RateLimitInfo` with one `BucketInfo` per dimension (requests, tokens):

- OpenAI (and Groq, DeepSeek, most OpenAI-compatible servers):
  ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, reset as a Go duration
  (``12ms``, ``1s``, ``6m0s``, ``2m59.56s``, ``1h2m3s``): time until the bucket is full again.
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``, reset as an RFC 3339 instant.
- IETF draft structured fields: ``RateLimit-Policy: "default";q=100;w=60`` with
  ``RateLimit: "default";r=50;t=30`` (an item named like ``tokens`` is the token quota), and
  draft 7's ``RateLimit: limit=100, remaining=50, reset=30``.
- ``RateLimit-Limit/-Remaining/-Reset`` and ``X-RateLimit-Limit/-Remaining/-Reset``; reset in
  delta seconds, or epoch seconds/milliseconds when large, or an HTTP date.
- ``Retry-After`` (delta seconds or HTTP date) and ``retry-after-ms``.

`retry_delay_from_body(body)` finds the delay a 429 body asks for: Gemini's
``google.rpc.RetryInfo`` ``retryDelay`` and OpenAI's "Please try again in 1.5s".

Malformed values are ignored, never raised; every number returned is finite and >= 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import msgspec

Refill = Literal["continuous", "window"]
"""How a bucket refills: steadily up to its limit by `reset_s` (a token bucket, as OpenAI and
Anthropic document), or all at once when the window resets (the conservative reading of the
generic X-RateLimit headers)."""

_PER_MINUTE = 60.0
_MAX_SECONDS = 10.0 * 365 * 86400  # anything later than this is garbage, not a schedule
_EPOCH_S = 1e9  # a reset this large is an epoch timestamp, not a delta (2001-09-09)
_EPOCH_MS = 1e12
_MAX_BODY = 65536


class BucketInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One dimension of a provider's limit as one response reported it."""

    limit: int | None = None
    remaining: int | None = None
    reset_s: float | None = None  # seconds from `now` until full again / the window resets
    window_s: float | None = None  # the period `limit` applies to, when known
    refill: Refill = "window"

    @property
    def known(self) -> bool:
        return self.limit is not None or self.remaining is not None or self.reset_s is not None


class RateLimitInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one response said about rate limits."""

    requests: BucketInfo = msgspec.field(default_factory=BucketInfo)
    tokens: BucketInfo = msgspec.field(default_factory=BucketInfo)  # the tightest token quota
    input_tokens: BucketInfo = msgspec.field(default_factory=BucketInfo)
    output_tokens: BucketInfo = msgspec.field(default_factory=BucketInfo)
    retry_after_s: float | None = None


# --- scalar values -----------------------------------------------------------------------------

_NUMBER = re.compile(r"\+?(?:\d+(?:\.\d*)?|\.\d+)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_UNIT_ALT = "ms|us|µs|μs|ns|h|m|s"  # longest first, so "ms" is not read as "m"
_PART = re.compile(rf"(\d+(?:\.\d*)?|\.\d+)({_UNIT_ALT})")
_DURATION = re.compile(rf"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:{_UNIT_ALT}))+")


def _seconds(value: float) -> float | None:
    return value if math.isfinite(value) and 0.0 <= value <= _MAX_SECONDS else None


def parse_number(text: str) -> float | None:
    """A plain non-negative decimal ("12", "1.5"); no signs, exponents, nan or inf."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    value = parse_number(text.split(",")[0].split(";")[0])
    return math.floor(value) if value is not None and value < 2**63 else None


def parse_duration(text: str) -> float | None:
    """Seconds from a Go duration (``1h2m3.5s``, ``20ms``) or a bare number of seconds."""
    text = text.strip().lower().replace("μ", "µ")
    plain = parse_number(text)
    if plain is not None:
        return _seconds(plain)
    if not _DURATION.fullmatch(text):
        return None
    total = sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(text))
    return _seconds(total)


def format_duration(seconds: float) -> str:
    """The inverse of `parse_duration`, in OpenAI's style, to the millisecond: ``6m0s``."""
    millis = max(0, round(seconds * 1000))
    if millis < 1000:
        return f"{millis}ms" if millis else "0s"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + secs + "s"


def _instant(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp or an HTTP date."""
    text = text.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _until(instant: float | None, now: float) -> float | None:
    return None if instant is None else _seconds(max(0.0, instant - now))


def _delta(text: str | None) -> float | None:
    value = None if text is None else parse_number(text)
    return None if value is None else _seconds(value)


def _reset(text: str | None, now: float) -> float | None:
    """A reset given as delta seconds, epoch seconds/ms, a Go duration or a date."""
    if text is None:
        return None
    number = parse_number(text)
    if number is not None:
        if number >= _EPOCH_MS:
            return _until(number / 1000.0, now)
        if number >= _EPOCH_S:
            return _until(number, now)
        return _seconds(number)
    duration = parse_duration(text)
    return duration if duration is not None else _until(_instant(text), now)


def _retry_after(h: Mapping[str, str], now: float) -> float | None:
    millis = h.get("retry-after-ms")
    if millis is not None and (value := parse_number(millis)) is not None:
        return _seconds(value / 1000.0)
    text = h.get("retry-after")
    if text is None:
        return None
    value = parse_number(text)
    return _seconds(value) if value is not None else _until(_instant(text), now)


# --- dialects ----------------------------------------------------------------------------------


def _known(info: BucketInfo) -> BucketInfo:
    return info if info.known else BucketInfo()


def _openai(h: Mapping[str, str], dim: str) -> BucketInfo:
    reset = h.get(f"x-ratelimit-reset-{dim}")
    return _known(
        BucketInfo(
            limit=_count(h.get(f"x-ratelimit-limit-{dim}")),
            remaining=_count(h.get(f"x-ratelimit-remaining-{dim}")),
            reset_s=None if reset is None else parse_duration(reset),
            window_s=_PER_MINUTE,
            refill="continuous",
        )
    )


def _anthropic(h: Mapping[str, str], dim: str, now: float) -> BucketInfo:
    reset = h.get(f"anthropic-ratelimit-{dim}-reset")
    return _known(
        BucketInfo(
            limit=_count(h.get(f"anthropic-ratelimit-{dim}-limit")),
            remaining=_count(h.get(f"anthropic-ratelimit-{dim}-remaining")),
            reset_s=None if reset is None else _until(_instant(reset), now),
            window_s=_PER_MINUTE,
            refill="continuous",
        )
    )


def _legacy(h: Mapping[str, str], prefix: str, now: float) -> BucketInfo:
    limit_text = h.get(f"{prefix}limit")
    window = None
    if limit_text is not None:  # early drafts: "100, 100;w=60"
        match = re.search(r";\s*w=(\d+(?:\.\d+)?)", limit_text)
        window = _seconds(float(match.group(1))) if match else None
    return BucketInfo(
        limit=_count(limit_text),
        remaining=_count(h.get(f"{prefix}remaining")),
        reset_s=_reset(h.get(f"{prefix}reset"), now),
        window_s=window,
        refill="continuous" if window else "window",
    )


_Member = tuple[str, dict[str, str]]


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _members(text: str) -> list[_Member]:
    """A lenient reading of an RFC 8941 list or dictionary: (item, {param: value})."""
    members: list[_Member] = []
    for raw in _split(text, ","):
        pieces = _split(raw, ";")
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        members.append((pieces[0].strip(), params))
    return members


def _ietf(h: Mapping[str, str]) -> tuple[BucketInfo, BucketInfo]:
    """(requests, tokens) from RateLimit / RateLimit-Policy (drafts 7 and 8+)."""
    state = h.get("ratelimit")
    if state is None:
        return BucketInfo(), BucketInfo()
    policies: dict[str, tuple[int | None, float | None]] = {}
    for item, params in _members(h.get("ratelimit-policy", "")):
        window = parse_number(params.get("w", ""))
        quota = _count(params["q"]) if "q" in params else _count(item)  # draft 7: "100;w=60"
        policies[item.strip('"').lower()] = (quota, None if window is None else _seconds(window))
    members = _members(state)
    if any(item.partition("=")[0].strip().lower() == "remaining" for item, _ in members):
        fields = {i.partition("=")[0].strip().lower(): i.partition("=")[2] for i, _ in members}
        window = next((w for _, w in policies.values() if w), None)
        return BucketInfo(
            limit=_count(fields.get("limit")),
            remaining=_count(fields.get("remaining")),
            reset_s=_delta(fields.get("reset")),
            window_s=window,
            refill="continuous" if window else "window",
        ), BucketInfo()
    found: dict[str, BucketInfo] = {}
    for item, params in members:
        name = item.strip('"').lower()
        quota, window = policies.get(name) or (
            next(iter(policies.values())) if len(policies) == 1 else (None, None)
        )
        unit = params.get("qu", "")
        dim = "tokens" if "token" in name or "token" in unit else "requests"
        info = BucketInfo(
            limit=quota,
            remaining=_count(params.get("r")),
            reset_s=_delta(params.get("t")),
            window_s=window,
            refill="continuous" if window else "window",
        )
        if info.remaining is not None and _tighter(info, found.get(dim)):
            found[dim] = info
    return found.get("requests", BucketInfo()), found.get("tokens", BucketInfo())


def _tighter(candidate: BucketInfo, current: BucketInfo | None) -> bool:
    """Is `candidate` closer to exhaustion (smaller share left) than `current`?"""
    if current is None or not current.known:
        return True

    def share(info: BucketInfo) -> float:
        remaining = info.remaining if info.remaining is not None else math.inf
        return remaining / info.limit if info.limit else remaining

    return share(candidate) < share(current)


def _first(*candidates: BucketInfo) -> BucketInfo:
    return next((c for c in candidates if c.known), BucketInfo())


def parse_rate_limit(headers: Mapping[str, str], *, now: float) -> RateLimitInfo:
    """Read the rate-limit state from response headers (case-insensitive names).

    `now` is the wall-clock time (epoch seconds) used to turn absolute dates into delays.
    """
    h = {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}
    ietf_requests, ietf_tokens = _ietf(h)
    inputs = _anthropic(h, "input-tokens", now)
    outputs = _anthropic(h, "output-tokens", now)
    split = inputs if _tighter(inputs, outputs if outputs.known else None) else outputs
    return RateLimitInfo(
        requests=_first(
            _openai(h, "requests"),
            _anthropic(h, "requests", now),
            ietf_requests,
            _legacy(h, "ratelimit-", now),
            _legacy(h, "x-ratelimit-", now),
        ),
        tokens=_first(_openai(h, "tokens"), _anthropic(h, "tokens", now), ietf_tokens, split),
        input_tokens=inputs,
        output_tokens=outputs,
        retry_after_s=_retry_after(h, now),
    )


# --- error bodies ------------------------------------------------------------------------------

_TRY_AGAIN = re.compile(
    rf"try again in\s+((?:(?:\d+(?:\.\d+)?|\.\d+)(?:{_UNIT_ALT}))+)"
    r"|try again in\s+(\d+(?:\.\d+)?)\s*(seconds?|secs?|milliseconds?|minutes?)\b",
    re.IGNORECASE,
)


def _retry_info(data: Any, depth: int = 0) -> float | None:
    """Gemini: {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}."""
    if depth > 8:
        return None
    if isinstance(data, dict):
        kind = data.get("@type")
        delay = data.get("retryDelay")
        if isinstance(kind, str) and kind.endswith("google.rpc.RetryInfo"):
            if isinstance(delay, str):
                return parse_duration(delay)
            if isinstance(delay, dict):  # protobuf Duration as an object
                secs, nanos = delay.get("seconds", 0), delay.get("nanos", 0)
                if isinstance(secs, int | float) and isinstance(nanos, int | float):
                    return _seconds(float(secs) + float(nanos) / 1e9)
        children: list[Any] = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        return None
    for child in children:
        found = _retry_info(child, depth + 1)
        if found is not None:
            return found
    return None


def retry_delay_from_body(body: bytes) -> float | None:
    """The delay an error body asks for (Gemini RetryInfo, "Please try again in 1.5s")."""
    body = body[:_MAX_BODY]
    try:
        data: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        data = None
    try:
        found = _retry_info(data)
    except RecursionError:
        found = None
    if found is not None:
        return found
    match = _TRY_AGAIN.search(body.decode("utf-8", errors="replace"))
    if match is None:
        return None
    if match.group(1):
        return parse_duration(match.group(1))
    value = float(match.group(2))
    unit = match.group(3).lower()
    scale = 1e-3 if unit.startswith("milli") else 60.0 if unit.startswith("min") else 1.0
    return _seconds(value * scale)
