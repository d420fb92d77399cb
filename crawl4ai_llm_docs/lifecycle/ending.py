"""How a run ended: finished, interrupted by a signal, or stopped by the provider, and why.

One value, replaced as the run moves on::

    working ──► finished                      the stages ran to the end
       │
       ├──► stopping ──► stopped              a fatal provider answer: no new requests, the
       │       │                              ones in flight get a bounded time to come back
       └───────┴──► interrupted               Ctrl-C (SIGINT) or SIGTERM while working

A signal after the work (while the outputs are written) does not change how the run ended:
the outputs being written will be complete. Outputs that cannot be written (``unwritten``)
end any run with exit code 4: the documents the other codes promise are not all there.
"""

from __future__ import annotations

import signal
from typing import Literal

import msgspec
from msgspec import Struct

from crawl4ai_llm_docs.errors import (
    EXIT_FATAL_PROVIDER,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUTS,
    EXIT_PAGES_FAILED,
    EXIT_TERMINATED,
)

How = Literal["working", "stopping", "finished", "stopped", "interrupted"]


def signal_exit_code(signum: int) -> int:
    """The shell's convention, 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED


def signal_words(signum: int) -> str:
    return "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted with Ctrl-C"


class Ending(Struct, frozen=True, kw_only=True):
    how: How = "working"
    why: str = ""  # stopping/stopped: the provider's reason
    signal: int = 0  # interrupted: the signal that did it
    unwritten: str = ""  # why the outputs could not be written (exit 4), after the work

    @classmethod
    def interrupted(cls, signum: int) -> Ending:
        return cls(how="interrupted", signal=signum)

    @classmethod
    def stopped(cls, reason: str) -> Ending:
        return cls(how="stopped", why=reason)

    @property
    def working(self) -> bool:
        """The stages are still running (also while draining after a provider stop)."""
        return self.how in ("working", "stopping")

    @property
    def incomplete(self) -> bool:
        """Work was left undone on purpose: the outputs are marked incomplete."""
        return self.how in ("stopping", "stopped", "interrupted")

    def stopping(self, reason: str) -> Ending:
        """A fatal provider answer: the first reason wins, and an interrupt stays one."""
        return Ending(how="stopping", why=reason) if self.how == "working" else self

    def outputs_failed(self, why: str) -> Ending:
        """The outputs could not be written: exit 4, whatever the work's ending was."""
        return msgspec.structs.replace(self, unwritten=why)

    def work_over(self) -> Ending:
        """The stages have returned."""
        if self.how == "working":
            return Ending(how="finished")
        if self.how == "stopping":
            return Ending(how="stopped", why=self.why)
        return self

    @property
    def note(self) -> str:
        """The output's explanation of an incomplete run; empty for a complete one."""
        if self.how == "interrupted":
            why = signal_words(self.signal)
        elif self.incomplete:
            why = f"stopped: {self.why}"
        else:
            return ""
        return f"the run was {why}. Run the same command again to finish; finished work is cached."

    @property
    def unfinished_reason(self) -> str:
        """Why a page has no document."""
        if self.how == "interrupted":
            return "not finished (run interrupted)"
        if self.incomplete:
            return f"not finished (run stopped: {self.why})"
        return "no result was produced for this page (a bug: please report it)"

    def exit_code(self, failures: list[tuple[str, str]]) -> int:
        if self.unwritten:
            return EXIT_OUTPUTS
        if self.how == "interrupted":
            return signal_exit_code(self.signal)
        if self.incomplete:
            return EXIT_FATAL_PROVIDER
        # ``failures`` holds pages kept as crawled because no answer came; a discarded
        # (unfaithful) answer is not one: the provider worked, the check protected the text.
        return EXIT_PAGES_FAILED if failures else EXIT_OK
