"""`crawl4ai-llm-docs check`: one tiny request that tells whether the LLM settings work.

``check_provider`` sends "Reply with OK" (``max_tokens`` 5) with the configured URL, model, key
and TLS setting, then 2 and 4 of them at once (``probe``: does the server queue?), and reports
the latency, the model that answered, the rate limits the provider advertises, whether the
server queues and a suggested ``parallel.max_concurrent_requests``. A setting that
cannot work raises an error whose message names the problem and its fix:

    InputError          llm.base_url is wrong: refused, unknown host, TLS, 404/405 on the path
    ProviderFatalError  the key (401/403), the model (404 model_not_found), the quota, a timeout,
                        or a request the provider rejects (other 4xx)

A provider that is only busy (429 rate limited, 5xx) gives a result with ``ok`` False, since
its headers still show the limits. The API key is sent, never shown: provider messages quoted
in errors have it removed.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import msgspec
import trio

from crawl4ai_llm_docs import __version__
from crawl4ai_llm_docs.config import AppConfig
from crawl4ai_llm_docs.errors import InputError, ProviderFatalError
from crawl4ai_llm_docs.llm.limits.headers import BucketInfo, format_duration, parse_rate_limit
from crawl4ai_llm_docs.llm.provider.classify import Action, classify, parse_error
from crawl4ai_llm_docs.llm.provider.client import ChatResponse
from crawl4ai_llm_docs.llm.provider.probe import QueueProbe, probe_queueing

PROMPT = "Reply with OK"
MAX_TOKENS = 5
DEFAULT_CONCURRENCY = 4  # the shipped default, when nothing is advertised to size it by
MAX_CONCURRENCY = 20  # parallel.max_concurrent_requests allows 1-20
TARGET_SHARE = 0.9  # of the request limit: leave the limiter some headroom


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool  # a usable answer came back
    url: str  # the chat-completions endpoint asked
    requested_model: str
    model: str  # what the provider says answered ("" if it did not say)
    status: int
    latency_s: float
    reply: str  # the model's answer, shortened
    problem: str | None  # why ok is False
    requests: BucketInfo  # advertised request limit (all None when not advertised)
    tokens: BucketInfo
    retry_after_s: float | None
    configured_concurrency: int
    suggested_concurrency: int
    suggestion_basis: str
    queueing: QueueProbe | None = None  # 2 and 4 requests at once (None: not probed)

    @property
    def limits_advertised(self) -> bool:
        return self.requests.known or self.tokens.known


def suggest_concurrency(requests: BucketInfo, latency_s: float) -> tuple[int, str]:
    """Requests in flight that keep ~90 % of the request limit busy at this latency.

    Little's law: in flight = rate x latency. Real chunks take longer than this 5-token
    request, so the number is a floor for reaching the limit; the limiter keeps any value
    under the advertised budgets anyway.
    """
    if requests.limit is None:
        return DEFAULT_CONCURRENCY, "no request limit advertised, so the default"
    per_second = requests.limit / (requests.window_s or 60.0)
    wanted = per_second * latency_s * TARGET_SHARE
    suggested = max(1, min(MAX_CONCURRENCY, round(wanted)))
    basis = (
        f"{requests.limit:,} requests per {_window(requests.window_s)} "
        f"x {_seconds(latency_s)} a request x {TARGET_SHARE:.0%}"
    )
    if wanted > MAX_CONCURRENCY:
        basis += f" = {wanted:.0f}, capped at {MAX_CONCURRENCY}"
    return suggested, basis


async def check_provider(
    config: AppConfig,
    *,
    api_key: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckResult:
    """Send one tiny chat request with ``config``; see the module docstring.

    ``transport`` replaces the network, for tests.
    """
    llm, parallel = config.llm, config.parallel
    url = llm.base_url.rstrip("/") + "/chat/completions"
    headers = {"User-Agent": f"crawl4ai-llm-docs/{__version__}", "Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body = msgspec.json.encode(
        {
            "model": llm.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
        }
    )
    timeout = parallel.request_timeout
    async with httpx.AsyncClient(
        verify=llm.verify_tls,
        timeout=httpx.Timeout(None, connect=min(30.0, timeout)),  # fail_after bounds the rest
        transport=transport,
    ) as client:
        start = trio.current_time()
        try:
            with trio.fail_after(timeout):
                response = await client.post(url, content=body, headers=headers)
        except trio.TooSlowError:
            raise ProviderFatalError(
                f"No answer from {url} within parallel.request_timeout ({timeout:g} s). The "
                "provider may be overloaded, or llm.base_url may point at a server that never "
                "answers; try again later, check the URL, or raise parallel.request_timeout."
            ) from None
        except httpx.TransportError as exc:
            raise _network_error(exc, config) from None
        latency = trio.current_time() - start
        result = _result(response, latency, config, api_key, url)
        if not result.ok:
            return result  # busy or rate limited: more requests would only add to it

        async def send_one() -> bool:
            try:
                answer = await client.post(url, content=body, headers=headers)
            except httpx.TransportError:
                return False
            return answer.status_code == 200

        probe = await probe_queueing(send_one, single_s=latency, timeout_s=timeout)
    return with_probe(result, probe)


def with_probe(result: CheckResult, probe: QueueProbe) -> CheckResult:
    """The result with what the waves showed; a queueing server caps the suggestion."""
    if not probe.queues:
        return msgspec.structs.replace(result, queueing=probe)
    size, ratio = probe.ratios()[-1]
    basis = (
        f"the server ran about {probe.slots} at once: {size} requests at once took "
        f"{ratio:.1f}x as long as one"
    )
    suggested = probe.slots
    if result.requests.limit is not None and result.suggested_concurrency < suggested:
        suggested, basis = result.suggested_concurrency, result.suggestion_basis
    return msgspec.structs.replace(
        result, queueing=probe, suggested_concurrency=suggested, suggestion_basis=basis
    )


def _result(
    response: httpx.Response, latency: float, config: AppConfig, api_key: str | None, url: str
) -> CheckResult:
    status, content = response.status_code, response.content
    info = parse_rate_limit(response.headers, now=time.time())
    suggested, basis = suggest_concurrency(info.requests, latency)
    model, reply, problem = "", "", None
    if status == 200:
        try:
            answer = msgspec.json.decode(content, type=ChatResponse)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise InputError(
                f"The server at {url} answered HTTP 200, but not with a chat completion "
                f"(body starts {_scrub(content[:80].decode('utf-8', 'replace'), api_key)!r}). "
                "Check that llm.base_url is the root of an OpenAI-compatible API (usually "
                "ending in /v1)."
            ) from None
        model = answer.model
        choice = answer.choices[0] if answer.choices else None
        if choice is None or choice.message is None:
            problem = "the answer had no choices; the provider may be unstable, try again"
        else:
            reply = " ".join((choice.message.content or "").split())[:60]
    else:
        problem = _refusal(response, config, api_key, url)
    return CheckResult(
        ok=problem is None,
        url=url,
        requested_model=config.llm.model,
        model=model,
        status=status,
        latency_s=latency,
        reply=reply,
        problem=problem,
        requests=info.requests,
        tokens=info.tokens,
        retry_after_s=info.retry_after_s,
        configured_concurrency=config.parallel.max_concurrent_requests,
        suggested_concurrency=suggested,
        suggestion_basis=basis,
    )


def _refusal(response: httpx.Response, config: AppConfig, api_key: str | None, url: str) -> str:
    """Raise for an answer that says a setting is wrong; return the problem of a busy one."""
    status, content = response.status_code, response.content
    error = parse_error(content)
    code = str(error.code or error.type or "").lower()
    said = _shorten(_scrub(" ".join(error.message.split()), api_key), 160)
    what = f"HTTP {status}" + (f" {code}" if code else "") + (f": {said}" if said else "")
    llm = config.llm
    decision = classify(status, content, response.headers)
    if status == 401 or code == "invalid_api_key":
        if not api_key:
            raise ProviderFatalError(
                f"The provider at {llm.base_url} needs an API key ({what}), and "
                f"${llm.api_key_env} is not set. Export your key in {llm.api_key_env}, or set "
                "llm.api_key_env to the variable that holds it."
            )
        raise ProviderFatalError(
            f"The provider at {llm.base_url} rejected the API key ({what}). Check that "
            f"${llm.api_key_env} holds a valid key for this provider, and that llm.base_url "
            "is the provider the key belongs to."
        )
    if status == 403:
        raise ProviderFatalError(
            f"The API key may not use this model or endpoint ({what}). Check the key's "
            "permissions with the provider, or choose another llm.model."
        )
    if code == "model_not_found" or (status == 404 and "model" in error.message.lower()):
        raise ProviderFatalError(
            f"The provider does not offer the model {llm.model!r} ({what}). Set llm.model to "
            f"a model it lists at {llm.base_url.rstrip('/')}/models."
        )
    if status in (404, 405):
        raise InputError(
            f"No chat-completions API answers at {url} ({what}). llm.base_url must be the API "
            "root the path /chat/completions is added to, e.g. https://api.openai.com/v1: "
            "check for a missing or extra /v1."
        )
    if decision.action is Action.FATAL:  # insufficient_quota, billing and the like
        raise ProviderFatalError(
            f"The account behind the API key cannot be charged ({what}). Add credit or raise "
            "the spending limit in the provider's billing settings, or use another key."
        )
    if decision.action is Action.RETRY:
        if status == 429:
            return f"rate limited right now ({what}); the limits below still apply"
        return f"the provider is failing or busy ({what}); try again in a moment"
    raise ProviderFatalError(
        f"The provider rejected the check request ({what}). Check llm.model and the other "
        "[llm] settings against the provider's documentation."
    )


def _network_error(exc: httpx.TransportError, config: AppConfig) -> InputError | ProviderFatalError:
    base = config.llm.base_url
    parts = urlsplit(base)
    host = parts.hostname or base
    port = parts.port or (443 if parts.scheme == "https" else 80)
    causes = list(_causes(exc))
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        detail = getattr(tls, "reason", None) or type(tls).__name__
        return InputError(
            f"The TLS handshake with {host}:{port} failed ({detail}). If the server uses a "
            "self-signed or private certificate, set llm.verify_tls = false (or pass "
            "--insecure); if it speaks plain HTTP, use an http:// URL in llm.base_url."
        )
    if any(isinstance(c, socket.gaierror) for c in causes):
        return InputError(
            f"The host {host!r} in llm.base_url ({base}) cannot be resolved. Check the "
            "spelling of the URL, and your network or DNS settings."
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return InputError(
            f"Nothing accepts connections at {host}:{port} (connection refused). Check the "
            "host and port in llm.base_url, and that the server is running."
        )
    return InputError(
        f"The connection to {base} failed ({type(exc).__name__}: {exc}). Check llm.base_url "
        "and your network; a plain-HTTP server needs an http:// URL."
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what caused it, and the members of any exception group on the way."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _scrub(text: str, api_key: str | None) -> str:
    return text.replace(api_key, "[REDACTED]") if api_key else text


def _window(seconds: float | None) -> str:
    return "minute" if seconds in (None, 60.0) else format_duration(seconds or 0.0)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _bucket_line(info: BucketInfo, unit: str) -> str:
    if not info.known:
        return "not advertised"
    parts = []
    if info.limit is not None:
        parts.append(f"{info.limit:,} {unit} per {_window(info.window_s)}")
    if info.remaining is not None:
        parts.append(f"{info.remaining:,} left")
    if info.reset_s is not None:
        parts.append(f"full again in {format_duration(info.reset_s)}")
    return ", ".join(parts)


def render(result: CheckResult) -> str:
    """The check's outcome for the terminal, one fact per line."""
    head = "Provider check: OK" if result.ok else f"Provider check: NOT OK: {result.problem}"
    model = result.model or "(not reported)"
    if result.model and result.model != result.requested_model:
        model += f" (asked for {result.requested_model})"
    lines = [
        head,
        f"  endpoint     {result.url}",
        f"  model        {model}",
        f"  latency      {_seconds(result.latency_s)} for a {MAX_TOKENS}-token answer"
        + (f": {result.reply!r}" if result.reply else ""),
    ]
    if result.limits_advertised:
        lines.append(f"  requests     {_bucket_line(result.requests, 'requests')}")
        lines.append(f"  tokens       {_bucket_line(result.tokens, 'tokens')}")
    else:
        lines.append(
            "  rate limits  none advertised: the limiter learns the pace from 429s; set "
            "parallel.requests_per_minute / tokens_per_minute if you know the limits"
        )
    if result.retry_after_s is not None:
        lines.append(f"  retry after  {format_duration(result.retry_after_s)}")
    if result.queueing is not None:
        lines.append(f"  queueing     {result.queueing.describe()}")
    same = result.suggested_concurrency == result.configured_concurrency
    lines.append(
        f"  suggestion   max_concurrent_requests = {result.suggested_concurrency}"
        + (" (as configured)" if same else f" (configured: {result.configured_concurrency})")
        + f"; {result.suggestion_basis}"
    )
    if result.requests.limit is not None:
        # The latency is a 5-token answer's: the number is a floor, not a ceiling.
        lines.append(
            "               chunks take longer than this answer, so more in flight can still "
            "help; the limiter keeps any value within the advertised limits"
        )
    return "\n".join(lines)
