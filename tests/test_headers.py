"""Rate-limit header and error-body parsing: every dialect, and garbage never raises."""

from __future__ import annotations

import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.llm.limits.headers import (
    BucketInfo,
    RateLimitInfo,
    format_duration,
    parse_duration,
    parse_rate_limit,
    retry_delay_from_body,
)

NOW = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def parse(headers: dict[str, str], now: float = NOW) -> RateLimitInfo:
    return parse_rate_limit(httpx.Headers(headers), now=now)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("2m59.56s", 179.56),
        ("1h2m3s", 3723.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("100ns", 1e-7),
        ("17", 17.0),
        ("0.5", 0.5),
        (" 3s ", 3.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "-1s", "1s2", "nan", "inf", "1e3", "m1", "1..2s"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_headers() -> None:
    info = parse(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "59",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert info.requests == BucketInfo(
        limit=60, remaining=59, reset_s=1.0, window_s=60.0, refill="continuous"
    )
    assert info.tokens == BucketInfo(
        limit=150000, remaining=149984, reset_s=360.0, window_s=60.0, refill="continuous"
    )
    assert info.retry_after_s is None


def test_anthropic_headers() -> None:
    info = parse(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2024-01-01T00:00:05Z",
            "anthropic-ratelimit-tokens-limit": "80000",
            "anthropic-ratelimit-tokens-remaining": "79000",
            "anthropic-ratelimit-tokens-reset": "2024-01-01T00:00:00.750+00:00",
            "retry-after": "4",
        }
    )
    assert info.requests == BucketInfo(
        limit=50, remaining=49, reset_s=5.0, window_s=60.0, refill="continuous"
    )
    assert info.tokens.remaining == 79000
    assert info.tokens.reset_s == pytest.approx(0.75)
    assert info.retry_after_s == 4.0


def test_anthropic_input_output_tokens_use_the_tighter_one() -> None:
    info = parse(
        {
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "30000",
            "anthropic-ratelimit-output-tokens-limit": "8000",
            "anthropic-ratelimit-output-tokens-remaining": "800",
            "anthropic-ratelimit-output-tokens-reset": "2023-12-31T23:59:00Z",  # past: 0
        }
    )
    assert info.input_tokens.remaining == 30000
    assert info.tokens.limit == 8000
    assert info.tokens.remaining == 800
    assert info.tokens.reset_s == 0.0


def test_ietf_structured_fields() -> None:
    info = parse(
        {
            "RateLimit-Policy": '"default";q=100;w=60, "tokens";q=50000;w=60',
            "RateLimit": '"default";r=50;t=30, "tokens";r=40000;t=12',
        }
    )
    assert info.requests == BucketInfo(
        limit=100, remaining=50, reset_s=30.0, window_s=60.0, refill="continuous"
    )
    assert info.tokens == BucketInfo(
        limit=50000, remaining=40000, reset_s=12.0, window_s=60.0, refill="continuous"
    )


def test_ietf_picks_the_tightest_request_policy() -> None:
    info = parse(
        {
            "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
            "RateLimit": '"burst";r=90;t=5, "daily";r=10;t=3600',
        }
    )
    assert info.requests.limit == 1000
    assert info.requests.remaining == 10
    assert info.requests.window_s == 86400.0


def test_ietf_single_policy_without_names_matching() -> None:
    info = parse({"RateLimit-Policy": "p;q=10;w=1", "RateLimit": "x;r=3;t=1"})
    assert info.requests.limit == 10
    assert info.requests.remaining == 3


def test_ietf_draft7_dictionary() -> None:
    info = parse({"RateLimit": "limit=100, remaining=50, reset=30", "RateLimit-Policy": "100;w=60"})
    assert info.requests == BucketInfo(
        limit=100, remaining=50, reset_s=30.0, window_s=60.0, refill="continuous"
    )
    info = parse({"RateLimit": "limit=100, remaining=50, reset=30"})
    assert info.requests == BucketInfo(limit=100, remaining=50, reset_s=30.0, refill="window")


@pytest.mark.parametrize("prefix", ["RateLimit-", "X-RateLimit-", "x-ratelimit-"])
@pytest.mark.parametrize(
    ("reset", "seconds"),
    [
        ("30", 30.0),
        (str(int(NOW) + 42), 42.0),  # epoch seconds
        (str(int(NOW * 1000) + 1500), 1.5),  # epoch milliseconds
        ("Mon, 01 Jan 2024 00:01:00 GMT", 60.0),
        (str(int(NOW) - 100), 0.0),  # already past
    ],
)
def test_legacy_headers(prefix: str, reset: str, seconds: float) -> None:
    info = parse({f"{prefix}Limit": "100", f"{prefix}Remaining": "7", f"{prefix}Reset": reset})
    assert info.requests.limit == 100
    assert info.requests.remaining == 7
    assert info.requests.reset_s == pytest.approx(seconds)
    assert info.requests.refill == "window"


def test_legacy_limit_with_window_policy() -> None:
    info = parse({"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "1"})
    assert info.requests.limit == 100
    assert info.requests.window_s == 60.0
    assert info.requests.refill == "continuous"


def test_dialect_precedence_openai_first() -> None:
    info = parse({"x-ratelimit-remaining-requests": "5", "x-ratelimit-remaining": "99"})
    assert info.requests.remaining == 5


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "5"}, 5.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": "Mon, 01 Jan 2024 00:00:20 GMT"}, 20.0),
        ({"Retry-After": "Sun, 31 Dec 2023 00:00:20 GMT"}, 0.0),
        ({"retry-after-ms": "1500", "Retry-After": "2"}, 1.5),
        ({"retry-after-ms": "junk", "Retry-After": "2"}, 2.0),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse(headers).retry_after_s == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining-requests": "-5", "x-ratelimit-reset-requests": "-1s"},
        {"x-ratelimit-limit-requests": "lots", "x-ratelimit-reset-requests": "soon"},
        {"anthropic-ratelimit-requests-reset": "yesterday"},
        {"RateLimit": '"a";r=;t=x', "RateLimit-Policy": ";;;,,,"},
        {"X-RateLimit-Reset": "nan", "X-RateLimit-Remaining": "1e9"},
    ],
)
def test_malformed_values_are_ignored(headers: dict[str, str]) -> None:
    info = parse(headers)
    assert info.requests.remaining is None
    assert info.requests.reset_s is None
    assert info.retry_after_s is None


def test_no_headers() -> None:
    assert parse({}) == RateLimitInfo()
    assert not parse({}).requests.known


def test_plain_dict_is_case_insensitive() -> None:
    info = parse_rate_limit({"X-RateLimit-Remaining-Requests": "3"}, now=NOW)
    assert info.requests.remaining == 3


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        (
            b'[{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": ['
            b'{"@type": "type.googleapis.com/google.rpc.QuotaFailure"},'
            b'{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}}]',
            13.0,
        ),
        (
            b'{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",'
            b' "retryDelay": "0.250s"}]}}',
            0.25,
        ),
        (
            b'{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",'
            b' "retryDelay": {"seconds": 2, "nanos": 500000000}}]}}',
            2.5,
        ),
        (
            b'{"error": {"message": "Rate limit reached for gpt-4o on requests per min (RPM):'
            b' Limit 3, Used 3, Requested 1. Please try again in 1.5s. Visit https://x",'
            b' "type": "requests", "code": "rate_limit_exceeded"}}',
            1.5,
        ),
        (b'{"error": {"message": "Please try again in 20ms."}}', 0.02),
        (b'{"error": {"message": "Please try again in 6m0s."}}', 360.0),
        (b"<html>Please try again in 2 seconds</html>", 2.0),
        (b"try again in 500 milliseconds", 0.5),
        (b'{"error": {"message": "Overloaded"}}', None),
        (b"", None),
        (b"\xff\xfe\x00garbage", None),
        (b'{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "-1s"}', None),
    ],
)
def test_retry_delay_from_body(body: bytes, seconds: float | None) -> None:
    assert retry_delay_from_body(body) == (None if seconds is None else pytest.approx(seconds))


def test_fake_provider_dialects_parse() -> None:
    """The project's fake provider's headers read back as the bucket it modelled."""
    from crawl4ai_llm_docs.testing.provider.config import make_config
    from crawl4ai_llm_docs.testing.provider.limits import RateLimits

    limits = RateLimits(make_config({"rpm": 60, "tpm": 6000, "burst_requests": 10}), 0.0)
    assert limits.admit(100, 0.0) is None
    for dialect in ("openai", "anthropic", "ietf"):
        raw = limits.headers(dialect, 0.0, NOW)
        info = parse_rate_limit(httpx.Headers(raw), now=NOW)
        assert info.requests.limit == 60, dialect
        assert info.requests.remaining == 9, dialect
        assert info.requests.reset_s == pytest.approx(1.0), dialect
        assert info.tokens.limit == 6000, dialect
        assert info.tokens.remaining == 5900, dialect


# --- properties (no deadline: a loaded, shared machine must not make them flaky) ---

millis = st.integers(min_value=0, max_value=10 * 86400 * 1000)


@settings(deadline=None)
@given(millis)
def test_duration_round_trip(ms: int) -> None:
    seconds = ms / 1000
    text = format_duration(seconds)
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)


@settings(deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_duration_round_trip_to_the_millisecond(seconds: float) -> None:
    parsed = parse_duration(format_duration(seconds))
    assert parsed is not None
    assert abs(parsed - seconds) <= 0.0005 + 1e-9


header_names = st.sampled_from(
    [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
        "retry-after-ms",
    ]
)
header_values = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9.]{1,20}(ms|s|m|h|us)?", fullmatch=True),
    st.from_regex(r'"?[a-z]{0,5}"?(;[qrtw]=-?[0-9.]{0,8}){0,3}(, ?.*)?', fullmatch=True),
)


def _all_numbers(info: RateLimitInfo) -> list[float]:
    values: list[float] = []
    for bucket in (info.requests, info.tokens, info.input_tokens, info.output_tokens):
        for value in (bucket.limit, bucket.remaining, bucket.reset_s, bucket.window_s):
            if value is not None:
                values.append(float(value))
    if info.retry_after_s is not None:
        values.append(info.retry_after_s)
    return values


@settings(deadline=None)
@given(st.dictionaries(header_names, header_values, max_size=8), st.floats(0, 4e9))
def test_garbage_headers_never_raise_and_never_go_negative(
    headers: dict[str, str], now: float
) -> None:
    info = parse_rate_limit(headers, now=now)
    for value in _all_numbers(info):
        assert math.isfinite(value)
        assert value >= 0


@settings(deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_garbage_bodies_never_raise(body: bytes) -> None:
    delay = retry_delay_from_body(body)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@settings(deadline=None)
@given(
    st.recursive(st.none() | st.text(max_size=10), lambda c: st.lists(c, max_size=3), max_leaves=20)
)
def test_deep_json_bodies_never_raise(data: object) -> None:
    import json

    assert retry_delay_from_body(json.dumps(data).encode()) is None
