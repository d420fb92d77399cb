"""The OpenAI-compatible API client.

client.py      chat completions with the run's one retry loop
streaming.py   answers read under their deadlines, streamed ones chunk by chunk
completion.py  the parts of a completion this tool keeps; classify.py: what to do with an answer
accepted.py    what the provider accepts (streaming, the response_format form), from its refusals
check.py, probe.py   ``check``: one tiny request, then whether the server queues
"""
