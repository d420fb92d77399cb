"""AdaptiveRateLimiter against a simulated provider, in exact virtual time (autojump_clock)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from crawl4ai_llm_docs.llm.limits.headers import format_duration
from crawl4ai_llm_docs.llm.limits.ratelimit import AdaptiveRateLimiter, Verdict, WaitEvent

_EPS = 1e-6


class Bucket:
    """The provider's side: capacity `burst`, refilling `per_minute / 60` units a second."""

    def __init__(self, per_minute: int, burst: int, now: float) -> None:
        self.limit, self.capacity, self.rate = per_minute, burst, per_minute / 60
        self.level, self.at = float(burst), now

    def refill(self, now: float) -> float:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        return self.level

    def headers(self, kind: str) -> dict[str, str]:
        return {
            f"x-ratelimit-limit-{kind}": str(self.limit),
            f"x-ratelimit-remaining-{kind}": str(max(0, math.floor(self.level + _EPS))),
            f"x-ratelimit-reset-{kind}": format_duration((self.capacity - self.level) / self.rate),
        }


@dataclass
class Provider:
    """A tiny OpenAI-like provider: token buckets, 429 with Retry-After when one is empty."""

    requests: Bucket | None = None
    tokens: Bucket | None = None
    send_headers: bool = True
    arrivals: list[float] = field(default_factory=list)
    tokens_log: list[tuple[float, int]] = field(default_factory=list)
    rejected: int = 0

    def handle(self, now: float, cost: int) -> tuple[int, dict[str, str]]:
        self.arrivals.append(now)
        waits = [0.0]
        for bucket, amount in ((self.requests, 1), (self.tokens, cost)):
            if bucket is not None and bucket.refill(now) < amount - _EPS:
                waits.append((amount - bucket.level) / bucket.rate)
        headers: dict[str, str] = {}
        if max(waits) > 0:
            self.rejected += 1
            headers["retry-after"] = str(math.ceil(max(waits)))
            return 429, headers | self._headers()
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= cost
        self.tokens_log.append((now, cost))
        return 200, self._headers()

    def _headers(self) -> dict[str, str]:
        if not self.send_headers:
            return {}
        out: dict[str, str] = {}
        if self.requests is not None:
            out |= self.requests.headers("requests")
        if self.tokens is not None:
            out |= self.tokens.headers("tokens")
        return out


@dataclass
class Run:
    elapsed: float
    sends: list[float]  # when each admitted request was sent (relative to the start)
    verdicts: list[Verdict]
    over_limit: int  # dispatches that found more requests in flight than the effective limit


async def run_jobs(
    limiter: AdaptiveRateLimiter,
    provider: Provider,
    jobs: int,
    *,
    workers: int = 8,
    latency: float = 1.0,
    tokens: int = 0,
    usage: int | None = None,
) -> Run:
    start = trio.current_time()
    todo = list(range(jobs))
    sends: list[float] = []
    verdicts: list[Verdict] = []
    over = 0

    async def worker() -> None:
        nonlocal over
        while todo:
            todo.pop()
            while True:
                async with limiter.slot(tokens) as permit:
                    now = trio.current_time()
                    sends.append(now - start)
                    over += limiter.in_flight > limiter.effective_limit
                    status, headers = provider.handle(now, tokens)
                    await trio.sleep(latency)
                    verdict = permit.observe(status, headers)
                verdicts.append(verdict)
                if verdict.ok:
                    if usage is not None:
                        permit.observe_usage(usage)
                    break

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    return Run(trio.current_time() - start, sends, verdicts, over)


def openai_provider(rpm: int = 60, burst: int = 10) -> Provider:
    return Provider(requests=Bucket(rpm, burst, trio.current_time()))


def limiter(**kwargs: object) -> AdaptiveRateLimiter:
    options: dict[str, object] = {"max_concurrent": 8, "adaptive": True, "buffer_percent": 10.0}
    options |= kwargs
    return AdaptiveRateLimiter(rng=random.Random(7), **options)  # type: ignore[arg-type]


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - window:
            left += 1
        best = max(best, right - left + 1)
    return best


# --- the benchmark targets -------------------------------------------------------------------


async def test_28_requests_at_60_rpm_burst_10(autojump_clock: trio.testing.MockClock) -> None:
    provider = openai_provider()
    events: list[WaitEvent] = []
    run = await run_jobs(limiter(on_wait=events.append), provider, 28)
    print(f"28 requests: {run.elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert 19.0 <= run.elapsed <= 21.0
    budget = [e for e in events if e.reason == "requests"]
    assert budget
    assert all(e.remaining is not None and e.reset_s is not None for e in budget)
    assert all(e.wait_s > 0 and e.effective_concurrency == 8 for e in budget)


async def test_120_requests_at_60_rpm(autojump_clock: trio.testing.MockClock) -> None:
    provider = openai_provider()
    run = await run_jobs(limiter(), provider, 120)
    print(f"120 requests: {run.elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert 110.0 <= run.elapsed <= 135.0
    # Steady state (after the burst): at least 90 % of the provider's 1 request/s.
    steady = [t for t in run.sends if 20.0 <= t < 100.0]
    assert len(steady) >= 0.9 * 80
    assert run.over_limit == 0


@pytest.mark.parametrize("dialect", ["openai", "ietf", "anthropic"])
async def test_every_header_dialect_avoids_429s(
    autojump_clock: trio.testing.MockClock, dialect: str
) -> None:
    """The project's fake provider's dialects (reset rounded up to seconds for IETF/Anthropic)."""
    from crawl4ai_llm_docs.testing.provider.config import make_config
    from crawl4ai_llm_docs.testing.provider.limits import RateLimits

    wall = 1_704_067_200.0
    limits = RateLimits(make_config({"rpm": 60, "burst_requests": 10}), trio.current_time())

    class Fake(Provider):
        def handle(self, now: float, cost: int) -> tuple[int, dict[str, str]]:
            self.arrivals.append(now)
            refused = limits.admit(cost, now)
            self.rejected += refused is not None
            raw = limits.headers(dialect, now, wall + now)  # type: ignore[arg-type]
            return 429 if refused else 200, {k.decode(): v.decode() for k, v in raw}

    provider = Fake()
    run = await run_jobs(limiter(wall_clock=lambda: wall + trio.current_time()), provider, 28)
    print(f"{dialect}: 28 requests in {run.elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert 19.0 <= run.elapsed <= 22.0


# --- reactive: 429s, AIMD, pauses -----------------------------------------------------------


# Budgets far from binding: a provider that advertises them, so a 429 is not read as a silent
# provider's rate (that is `silent.SilentRate`'s, tested in test_silent_rate.py).
ROOMY = {"x-ratelimit-limit-requests": "100000", "x-ratelimit-remaining-requests": "99999"}


class Scripted(Provider):
    """Roomy budgets: the n-th request (1-based) in `reject` gets a 429 with that Retry-After."""

    def __init__(self, reject: dict[int, int | None], status: int = 429) -> None:
        super().__init__()
        self.reject = reject
        self.status = status

    def handle(self, now: float, cost: int) -> tuple[int, dict[str, str]]:
        self.arrivals.append(now)
        n = len(self.arrivals)
        if n not in self.reject:
            return 200, ROOMY
        self.rejected += 1
        retry_after = self.reject[n]
        extra = {} if retry_after is None else {"retry-after": str(retry_after)}
        return self.status, ROOMY | extra


async def test_429_halves_concurrency_and_it_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    changes: list[int] = []
    lim = limiter(on_change=changes.append)
    run = await run_jobs(lim, Scripted({10: 2}), 60)
    assert changes == [4, 5, 6, 7, 8]  # halved once, then +1 per `limit` successes in a row
    assert lim.effective_limit == 8
    assert run.over_limit == 0
    assert [v.kind for v in run.verdicts].count("rate_limited") == 1


async def test_a_burst_of_429s_halves_once(autojump_clock: trio.testing.MockClock) -> None:
    changes: list[int] = []
    lim = limiter(on_change=changes.append)
    await run_jobs(lim, Scripted(dict.fromkeys(range(1, 9), 3)), 8)
    assert changes[0] == 4  # eight answers to one wave are one congestion signal
    assert run_over(changes)


def run_over(changes: list[int]) -> bool:
    return all(1 <= c <= 8 for c in changes)


async def test_429_pauses_every_worker_until_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[WaitEvent] = []
    provider = Scripted({10: 5})
    lim = limiter(on_wait=events.append)
    run = await run_jobs(lim, provider, 40, latency=0.5)
    rejected_at = run.sends[9]
    told_at = rejected_at + 0.5  # the 429 arrives after the request's latency
    assert provider.rejected == 1
    assert not [t for t in run.sends if told_at <= t < told_at + 5.0]
    assert min(t for t in run.sends if t > told_at) >= told_at + 5.0
    assert any(e.reason == "retry_after" and e.wait_s > 4.0 for e in events)
    assert run.over_limit == 0


async def test_a_429_without_retry_after_backs_off_exponentially(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lim = limiter(max_concurrent=1)
    pauses = []
    for _ in range(3):
        async with lim.slot() as permit:
            verdict = permit.observe(429, ROOMY)
        pauses.append(verdict.pause_s)
        async with lim.slot() as permit:
            pass
    assert pauses == pytest.approx([1.0, 2.0, 4.0])
    async with lim.slot() as permit:
        assert permit.observe(200, ROOMY).ok
    async with lim.slot() as permit:
        assert permit.observe(429, ROOMY).pause_s == 1.0  # a success ends the streak


@pytest.mark.parametrize(
    ("status", "body", "kind", "retryable", "pause"),
    [
        (200, b"", "ok", False, 0.0),
        (429, b'{"error": {"message": "Please try again in 1.5s."}}', "rate_limited", True, 1.5),
        (429, b'{"error": {"code": "insufficient_quota"}}', "quota_exhausted", False, 0.0),
        (503, b"", "overloaded", True, 1.0),
        (529, b'{"type": "error", "error": {"type": "overloaded_error"}}', "overloaded", True, 1.0),
        (500, b"", "server_error", True, 0.0),
        (408, b"", "server_error", True, 0.0),
        (400, b"", "client_error", False, 0.0),
        (401, b"", "client_error", False, 0.0),
    ],
)
async def test_verdicts(
    autojump_clock: trio.testing.MockClock,
    status: int,
    body: bytes,
    kind: str,
    retryable: bool,
    pause: float,
) -> None:
    lim = limiter()
    async with lim.slot() as permit:
        verdict = permit.observe(status, {}, body)
    assert (verdict.kind, verdict.retryable, verdict.pause_s) == (kind, retryable, pause)
    assert verdict.ok == (kind == "ok")
    with pytest.raises(RuntimeError):
        permit.observe(status, {})


async def test_gemini_retry_delay_pauses_everyone(autojump_clock: trio.testing.MockClock) -> None:
    body = (
        b'[{"error": {"code": 429, "details": [{"@type": '
        b'"type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}}]'
    )
    lim = limiter()
    async with lim.slot() as permit:
        verdict = permit.observe(429, {}, body)
    assert verdict.retry_after_s == 13.0
    start = trio.current_time()
    async with lim.slot():
        assert trio.current_time() - start >= 13.0


async def test_timeouts_shrink_concurrency_connection_errors_do_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lim = limiter()
    async with lim.slot() as permit:
        permit.observe_failure("connection")
    assert lim.effective_limit == 8
    async with lim.slot() as permit:
        permit.observe_failure("timeout")
    assert lim.effective_limit == 4
    async with lim.slot() as permit:
        permit.observe_failure("overload")
    assert lim.effective_limit == 2
    assert lim.snapshot().paused_for_s == pytest.approx(1.0)  # timeouts do not pause


# --- proactive: tokens, static caps, adaptive=False --------------------------------------------


async def test_token_budget_is_respected(autojump_clock: trio.testing.MockClock) -> None:
    # 6000 TPM with a 1000-token burst: 500-token requests fit one per 5 s after the burst.
    # A first wave of 8 x 500 tokens would overshoot that burst before any header is seen:
    # slow start sends one request alone until the budgets are known.
    now = trio.current_time()
    provider = Provider(requests=Bucket(1000, 1000, now), tokens=Bucket(6000, 1000, now))
    run = await run_jobs(limiter(slow_start=True), provider, 20, tokens=500)
    print(f"20 x 500 tokens at 6000 TPM: {run.elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert 90.0 <= run.elapsed <= 110.0  # ideal: 2 at once, then 18 x 5 s, + 1 s latency


async def test_without_slow_start_the_first_wave_overshoots_then_budgets_hold(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The default trades a few first-wave 429s on a tiny budget for not losing a round trip
    # on every run; once an answer shows the budgets, nothing more is refused.
    now = trio.current_time()
    provider = Provider(requests=Bucket(1000, 1000, now), tokens=Bucket(6000, 1000, now))
    run = await run_jobs(limiter(), provider, 20, tokens=500)
    assert 0 < provider.rejected <= 8 - 2  # only the first wave, beyond the 1000-token burst
    assert 90.0 <= run.elapsed <= 120.0


async def test_first_wave_goes_out_at_once_without_slow_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lim = limiter()
    started: list[float] = []

    async def one() -> None:
        async with lim.slot(100) as permit:
            started.append(trio.current_time())
            await trio.sleep(3)
            permit.observe(200, {})

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(one)
    assert max(started) - min(started) < 0.5  # no round trip lost before the first wave


async def test_static_rpm_cap_without_headers(autojump_clock: trio.testing.MockClock) -> None:
    provider = Provider(send_headers=False)
    run = await run_jobs(limiter(requests_per_minute=30), provider, 60)
    print(f"60 requests at a static 30 RPM: {run.elapsed:.2f} s virtual")
    assert 110.0 <= run.elapsed <= 125.0
    assert max_in_window(run.sends, 60.0) <= 30
    assert max_in_window(run.sends, 10.0) <= 3 + 5  # smooth: a 3-request burst, then 1 per 2 s


async def test_static_tpm_cap_and_usage_refund(autojump_clock: trio.testing.MockClock) -> None:
    provider = Provider(send_headers=False)
    run = await run_jobs(limiter(tokens_per_minute=6000), provider, 12, tokens=1000)
    assert max(sum(c for t, c in provider.tokens_log if s <= t < s + 60) for s in run.sends) <= 6000
    slow = run.elapsed
    provider = Provider(send_headers=False)
    start = trio.current_time()
    run = await run_jobs(limiter(tokens_per_minute=6000), provider, 12, tokens=1000, usage=500)
    print(f"12 x 1000 tokens at 6000 TPM: {slow:.2f} s, with half used: {run.elapsed:.2f} s")
    assert run.elapsed < slow * 0.75
    assert trio.current_time() > start


async def test_adaptive_false_ignores_header_budgets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Pessimist(Provider):
        def handle(self, now: float, cost: int) -> tuple[int, dict[str, str]]:
            self.arrivals.append(now)
            return 200, {
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "60s",
            }

    fixed = await run_jobs(limiter(adaptive=False), Pessimist(), 16)
    assert fixed.elapsed == pytest.approx(2.0)
    learning = await run_jobs(limiter(adaptive=True), Pessimist(), 16)
    assert learning.elapsed > 10.0


async def test_adaptive_false_keeps_concurrency_and_pauses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    changes: list[int] = []
    lim = limiter(adaptive=False, on_change=changes.append)
    run = await run_jobs(lim, Scripted({3: 4}), 20, latency=0.5)
    assert changes == []
    assert lim.effective_limit == 8
    told_at = run.sends[2] + 0.5
    assert not [t for t in run.sends if told_at <= t < told_at + 4.0]


# --- bookkeeping ---------------------------------------------------------------------------------


async def test_cancelled_waits_leak_nothing(autojump_clock: trio.testing.MockClock) -> None:
    lim = limiter(max_concurrent=1, requests_per_minute=6)  # burst 1, then one per 10 s
    async with lim.slot() as first:
        with trio.move_on_after(1) as scope:  # waiting for the only concurrency slot
            async with lim.slot():
                pytest.fail("admitted past a full limiter")
        assert scope.cancelled_caught
        first.observe(200, {})
    with trio.move_on_after(5) as scope:  # waiting for the static cap
        async with lim.slot():
            pytest.fail("admitted past the static cap")
    assert scope.cancelled_caught
    snap = lim.snapshot()
    assert (snap.in_flight, snap.effective_limit) == (0, 1)
    start = trio.current_time()
    async with lim.slot() as permit:
        assert trio.current_time() == pytest.approx(10.0, abs=0.05)  # cancelled: took no budget
        permit.observe(200, {})
    assert trio.current_time() > start
    assert lim.snapshot().in_flight == 0


async def test_snapshot(autojump_clock: trio.testing.MockClock) -> None:
    lim = limiter()
    async with lim.slot(100) as permit:
        assert lim.snapshot().in_flight == 1
        permit.observe(
            429,
            {
                "retry-after": "3",
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "5",
                "x-ratelimit-reset-requests": "55s",
                "x-ratelimit-limit-tokens": "1000",
                "x-ratelimit-remaining-tokens": "900",
                "x-ratelimit-reset-tokens": "6s",
            },
        )
    snap = lim.snapshot()
    assert snap.in_flight == 0
    assert snap.effective_limit == 4
    assert snap.max_concurrent == 8
    assert snap.paused_for_s == pytest.approx(3.0)
    assert snap.paused_until is not None
    assert (snap.requests_remaining, snap.requests_limit) == (5, 60)
    assert (snap.tokens_remaining, snap.tokens_limit) == (900, 1000)
    assert snap.rate_limited == 1
    assert snap.waits == 0


async def test_usage_above_the_estimate_is_charged(autojump_clock: trio.testing.MockClock) -> None:
    lim = limiter()
    headers = {
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-reset-tokens": "10s",
    }
    async with lim.slot(1000) as permit:
        permit.observe(200, headers)
    permit.observe_usage(3000)  # 2000 more than reserved
    assert lim.snapshot().tokens_remaining == 3000
    async with lim.slot(1000) as permit:
        permit.observe(200, headers | {"x-ratelimit-remaining-tokens": "2900"})
    permit.observe_usage(10)  # less than reserved: left to the provider's next headers
    assert lim.snapshot().tokens_remaining == 2900


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        AdaptiveRateLimiter(max_concurrent=0)
    with pytest.raises(ValueError, match="buffer_percent"):
        AdaptiveRateLimiter(buffer_percent=120)
    AdaptiveRateLimiter()  # the spec's smoke test: defaults are enough


# --- robustness ----------------------------------------------------------------------------------


async def test_out_of_order_answers_still_avoid_429s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = openai_provider()
    rng = random.Random(3)
    # 16 workers against a burst of 10: only slow start keeps the unguarded first wave in it.
    lim = limiter(max_concurrent=16, slow_start=True)
    start = trio.current_time()

    async def one() -> None:
        while True:
            async with lim.slot() as permit:
                status, headers = provider.handle(trio.current_time(), 0)
                await trio.sleep(rng.uniform(0.2, 4.0))
                if permit.observe(status, headers).ok:
                    return

    async with trio.open_nursery() as nursery:
        for _ in range(80):
            nursery.start_soon(one)
    elapsed = trio.current_time() - start
    print(f"80 requests, 0.2-4 s latency: {elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert elapsed <= 80 - 10 + 10  # the burst, then about one a second


async def test_long_latency_does_not_starve_a_small_bucket(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 30 s answers, 20 workers, 1 request/s with a burst of 10: the bucket refills during an
    # answer by more than it holds, so subtracting every later send would stall the workers.
    provider = openai_provider()
    run = await run_jobs(
        limiter(max_concurrent=20, slow_start=True), provider, 100, workers=20, latency=30.0
    )
    print(f"100 requests, 30 s latency, 20 workers: {run.elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert run.elapsed <= 200.0  # concurrency-bound: 100 x 30 s / 20 = 150 s, + the first probe


class FixedWindow(Provider):
    """X-RateLimit headers of a fixed window: 20 requests per 10 s, reset as epoch seconds."""

    def __init__(self, wall: float) -> None:
        super().__init__()
        self.wall = wall
        self.used: dict[int, int] = {}

    def handle(self, now: float, cost: int) -> tuple[int, dict[str, str]]:
        self.arrivals.append(now)
        window = math.floor(now / 10)
        used = self.used.get(window, 0)
        headers = {
            "X-RateLimit-Limit": "20",
            "X-RateLimit-Remaining": str(max(0, 20 - used - 1)),
            "X-RateLimit-Reset": str(math.ceil(self.wall + (window + 1) * 10)),
        }
        if used >= 20:
            self.rejected += 1
            return 429, headers | {"Retry-After": str(math.ceil((window + 1) * 10 - now))}
        self.used[window] = used + 1
        return 200, headers


async def test_fixed_window_headers(autojump_clock: trio.testing.MockClock) -> None:
    wall = 1_704_067_200.0
    provider = FixedWindow(wall)
    lim = limiter(wall_clock=lambda: wall + trio.current_time())
    run = await run_jobs(lim, provider, 60, latency=0.5)
    print(f"60 requests, fixed window 20 / 10 s: {run.elapsed:.2f} s virtual")
    assert provider.rejected == 0
    assert run.elapsed <= 40.0  # three windows' worth, maybe a fourth for the reserve
