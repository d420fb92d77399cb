"""The run around the wiring: from start to exit code.

run.py       ``Run``: cache, spool, signals, progress and live view around the stages
options.py   what to do this time (URL file or roots, ``--dry-run``, ``--no-llm``)
paths.py     where the run writes, checked before any work
ending.py    how the run ended (finished, signal, provider) and its exit code
finish.py    outputs, report and summary at the end; estimate.py: ``--dry-run``'s figures
"""
