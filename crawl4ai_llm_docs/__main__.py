"""``python -m crawl4ai_llm_docs`` and the ``crawl4ai-llm-docs`` console script.

The CLI's imports (crawl4ai, rich, msgspec ...) take a moment; a Ctrl-C during them must end
the program quietly with exit code 130, like a Ctrl-C anywhere else.
"""

# The C module behind ``signal``, loaded by the interpreter before any of our code: importing
# it runs no Python code, so no Ctrl-C can land between the start of this module and the
# handler below (``import signal`` executes signal.py and enum first: a window for a traceback).
import _signal
import os


def _exit_during_start_up(signum: int, frame: object) -> None:
    # Nothing has started yet, so there is nothing to clean up. Raising KeyboardInterrupt here
    # is not enough: CPython swallows it when it lands in an import-lock callback.
    os._exit(130)


def entry() -> None:
    _signal.signal(_signal.SIGINT, _exit_during_start_up)
    try:
        from crawl4ai_llm_docs.cli.app import main
    finally:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    main()


if __name__ == "__main__":
    entry()
