"""Whether an answer can stand in for its chunk: cheap, deterministic, no second LLM call.

judge.py   the verdict and its thresholds
facts.py   the facts of one Markdown text the judge compares (code, headings, words)
guard.py   the judge's length and repetition rules applied as an answer streams in
"""
