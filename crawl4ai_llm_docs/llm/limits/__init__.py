"""In front of every request: how many and how fast.

ratelimit.py    ``AdaptiveRateLimiter``: one per run, shared by every worker (AIMD, budgets)
headers.py      rate-limit headers and error bodies of every provider dialect, in one shape
buckets.py, pacing.py   budget models, and the pace learned beyond what headers say
silent.py       the burst and rate (or fixed window) of a provider that sends no headers
permits.py      what the limiter hands out and reports
concurrency.py  a concurrency limit that notices server-side queueing
breaker.py      ``CircuitBreaker``: stop while the provider keeps failing, probe, give up
"""
