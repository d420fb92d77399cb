"""``python -m crawl4ai_llm_docs`` and the ``crawl4ai-llm-docs`` console script.

The CLI's imports (crawl4ai, rich, msgspec ...) take a moment; a Ctrl-C during them must end
the program quietly with exit code 130, like a Ctrl-C anywhere else.
"""

import os
import signal
from types import FrameType


def _exit_during_start_up(signum: int, frame: FrameType | None) -> None:
    # Nothing has started yet, so there is nothing to clean up. Raising KeyboardInterrupt here
    # is not enough: CPython swallows it when it lands in an import-lock callback.
    os._exit(130)


def entry() -> None:
    signal.signal(signal.SIGINT, _exit_during_start_up)
    try:
        from crawl4ai_llm_docs.cli import main
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    main()


if __name__ == "__main__":
    entry()
