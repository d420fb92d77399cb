"""The reference parser's reading of an llms.txt: PyPI ``llms-txt`` 0.0.7, ``parse_llms_file``.

It reads a file with three regular expressions, copied here unchanged: sections start at every
line beginning ``##`` (``###`` too), every non-blank line of a section must hold a
``-[name](url)`` link (or the parser raises), and the head must be an H1, an optional
one-line ``>`` summary and the rest. Copied rather than imported: the package pulls in
fastcore at run time and tells a file's author nothing but a traceback. The tests compare
this copy with the package itself on generated files.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SECTION = re.compile(r"^##\s*(.*?$)", re.MULTILINE)
_LINK = re.compile(r"-\s*\[(?P<title>[^\]]+)\]\((?P<url>[^\)]+)\)(?::\s*(?P<desc>.*))?")
_HEAD = re.compile(
    r"^#\s*(?P<title>.+?$)\n+(?:^>\s*(?P<summary>.+?$)$)?\n+(?P<info>.*)",
    re.MULTILINE | re.DOTALL,
)
_LINES = re.compile(r"\n+")


class ReferenceLink(NamedTuple):
    title: str
    url: str
    desc: str | None


class ReferenceReading(NamedTuple):
    title: str
    summary: str | None
    info: str
    sections: dict[str, list[ReferenceLink]]


def reference_head(text: str) -> re.Match[str] | None:
    """The head (before the first ``##`` line) as the reference parser matches it."""
    start = _SECTION.split(text, maxsplit=1)[0]
    return _HEAD.search(start.strip())


def reference_reading(text: str) -> ReferenceReading | None:
    """What ``llms_txt.parse_llms_file(text)`` returns; None where it raises."""
    start, *rest = _SECTION.split(text)
    # A section named twice: the later one wins, and the earlier one is never read at all.
    bodies = dict(zip(rest[0::2], rest[1::2], strict=True))
    sections: dict[str, list[ReferenceLink]] = {}
    for name, body in bodies.items():
        links = []
        for line in _LINES.split(body.strip()):
            if not line.strip():
                continue
            found = _LINK.search(line)
            if found is None:
                return None
            links.append(ReferenceLink(found["title"], found["url"], found["desc"]))
        sections[name] = links
    head = _HEAD.search(start.strip())
    if head is None:
        return None
    return ReferenceReading(head["title"], head["summary"], head["info"], sections)
