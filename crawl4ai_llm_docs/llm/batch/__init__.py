"""The other LLM stage: chunks through the provider's Batch API (``--batch``).

stage.py     ``run``: batch rounds, resumed batches, fallbacks
api.py       the Files and Batches endpoints
files.py     chunk spool and the JSONL files on disk
pending.py   chunks waiting for answers: retries and halves into the next round, splits merged
results.py   answers back to chunks, line by line
store.py     batch ids kept in the cache directory, so no batch is paid twice
"""
