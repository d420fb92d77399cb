"""What ``validate`` reports: one fault, where it is and how to fix it.

A fault's ``code`` is stable (scripts read it from ``validate --json``); its ``message`` says
what is wrong and what to do, in one sentence or two.
"""

from __future__ import annotations

from msgspec import Struct


class Fault(Struct, frozen=True, kw_only=True):
    code: str  # e.g. "no-h1", "link-status": the README lists every one
    message: str
    line: int = 0  # 1-based line of the file; 0 = the file as a whole
    url: str = ""  # the link a link fault is about


def by_line(faults: list[Fault]) -> list[Fault]:
    """Faults of the whole file first, then in the order of the file's lines."""
    return sorted(faults, key=lambda fault: fault.line)
