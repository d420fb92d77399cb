"""A fake OpenAI-compatible provider (``python -m crawl4ai_llm_docs.testing.provider``).

server.py  start it (thread, process, task) and its CLI; app.py: routing and decisions
answers.py, stream.py, limits.py, errors.py   answers, streams, buckets and headers, errors
batch.py, batch_io.py   the Batch API; config.py, state.py: its knobs and running state
"""
