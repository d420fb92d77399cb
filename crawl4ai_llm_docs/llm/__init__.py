"""The LLM stage's building blocks.

- `headers`: rate-limit headers and error bodies of every provider dialect, in one shape.
- `ratelimit`: `AdaptiveRateLimiter`, shared by all LLM workers: concurrency (AIMD), header
  budgets with a reserve, static RPM/TPM caps and Retry-After pauses that hold every worker.
- `breaker`: `CircuitBreaker`, stops sending while the provider keeps failing, probes, and
  stops the run for good after repeated failed probes or a fatal error.
- `connect`: builds the limiter, breaker, pooled `ChatClient` and result cache of one run.
- `stage`: the live LLM stage, workers sending chunks as fast as the limiter admits.
- `tokens`, `markdown_blocks`, `chunking`, `reassemble`: token counting, Markdown block
  structure, splitting pages and chunks to a token budget, and putting results back together.
"""
