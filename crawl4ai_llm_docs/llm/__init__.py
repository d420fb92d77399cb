"""The LLM stage's building blocks.

- `headers`: rate-limit headers and error bodies of every provider dialect, in one shape.
- `ratelimit`: `AdaptiveRateLimiter`, shared by all LLM workers: concurrency (AIMD), header
  budgets with a reserve, static RPM/TPM caps and Retry-After pauses that hold every worker.
- `breaker`: `CircuitBreaker`, stops sending while the provider keeps failing, probes, and
  stops the run for good after repeated failed probes or a fatal error.
"""
