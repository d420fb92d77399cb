"""Stage 3: crawled pages to chunks of at most the LLM's budget (``stage.py``; the splitting
itself is ``markdown/chunking.py``, which the LLM stage also uses to re-split)."""
