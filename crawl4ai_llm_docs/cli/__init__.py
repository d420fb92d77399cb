"""The command line: one module per command, each flag a config override or a run option.

app.py          the ``crawl4ai-llm-docs`` app: commands registered, errors to exit codes
flags.py        what commands share: ``--help`` groups, ``--config``, flags as overrides
run.py          the main command (``RunFlags``); discover.py: root URLs, ``map``
check.py, config.py, batch.py   ``check``, ``config show|init|path``, ``batch status|cancel``
validate.py     ``validate FILE_OR_URL...``: llms.txt files checked (``validate/`` does it)
help_format.py  ``--help`` that never breaks an option name
"""
