"""What a re-run reuses, under the cache directory.

results.py      LLM answers by content key, with the faithfulness verdict on each
page_state.py   per URL: validators, extracted Markdown, links; which pages a run wrote
directory.py    the directory itself (0o700) and the spools killed runs left behind
"""
