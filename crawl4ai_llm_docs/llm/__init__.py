"""Stage 4: chunks to cleaned Markdown, live or through the Batch API.

stage.py      the live stage: workers send chunks as fast as the limits admit
processor.py  one chunk: cache, request, faithfulness check, retries, splits (both stages)
connect.py    the run's limiter, breaker, pooled client and result cache
cleaning.py   the two cleaning modes: what is asked for a chunk, how the answer becomes Markdown
prompts.py    the messages sent and the answer read back
edits.py      edit mode: the chunk's numbered lines, an edit script applied to them
edit_script.py  what an edit script holds, its JSON schema, a tolerant reader, a loop guard
provider/     the API client · limits/ what goes in front of every request
faithfulness/ the judge · batch/ the Batch API stage
"""
