"""The sections of an llms.txt: each ``##`` heading and its list of links, line by line.

Sections start where the reference parser starts them, at every line beginning ``##`` (so a
``###`` heading is a fault, not a subsection), and every non-blank line of a section must be
``- [name](url): description``, which is what the reference parser reads there.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from msgspec import Struct

from crawl4ai_llm_docs.validate.faults import Fault

H1 = re.compile(r"^#[ \t]+(?P<text>\S.*?)[ \t]*$")
_H2 = re.compile(r"^##[ \t]+(?P<text>\S.*?)[ \t]*$")
_ITEM = re.compile(r"^[ \t]*(?P<marker>[-*+]|\d{1,9}[.)])(?:[ \t]+(?P<body>.*?))?[ \t]*$")
_LINK = re.compile(r"^\[(?P<name>[^\]]*)\]\((?P<dest>[^)]*)\)(?P<rest>.*)$")
_FIX_ITEM = "write each page as '- [name](url): description'"


class Link(Struct, frozen=True, kw_only=True):
    name: str
    url: str
    description: str
    line: int
    section: str


def read_sections(
    lines: list[str], starts: list[int], faults: list[Fault]
) -> dict[str, list[Link]]:
    sections: dict[str, list[Link]] = {}
    seen: dict[str, int] = {}
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(lines)
        heading = lines[start]
        name = heading[2:].strip(" \t")
        if heading.startswith("###"):
            faults.append(
                Fault(
                    code="heading-level",
                    line=start + 1,
                    message=f"{heading.strip()!r}: only H2 headings divide an llms.txt (the "
                    f"reference parser reads this as a section named {name!r}); make it "
                    "'## ...' or drop it",
                )
            )
        elif not name:
            faults.append(
                Fault(
                    code="empty-section-name",
                    line=start + 1,
                    message="a section heading without a name: write '## Name'",
                )
            )
        elif not _H2.match(heading):
            faults.append(
                Fault(
                    code="h2-space",
                    line=start + 1,
                    message=f"{heading.strip()!r} is not a Markdown heading: put a space after "
                    "the '##'",
                )
            )
        if name in seen:
            faults.append(
                Fault(
                    code="duplicate-section",
                    line=start + 1,
                    message=f"section {name!r} appears twice (first on line {seen[name] + 1}); "
                    "the reference parser keeps only the last: merge them",
                )
            )
        seen.setdefault(name, start)
        links = sections.setdefault(name, [])
        count = len(links)
        for number in range(start + 1, end):
            if lines[number].strip():
                link = _read_item(lines[number], number + 1, name, faults)
                if link is not None:
                    links.append(link)
        if len(links) == count and not any(lines[n].strip() for n in range(start + 1, end)):
            faults.append(
                Fault(
                    code="empty-section",
                    line=start + 1,
                    message=f"section {name!r} lists no links: list its pages or drop it",
                )
            )
    return sections


def _read_item(line: str, number: int, section: str, faults: list[Fault]) -> Link | None:
    """The link of one line of a section, or None with the line's fault."""

    def fault(code: str, message: str) -> None:
        faults.append(Fault(code=code, line=number, message=message))

    if H1.match(line):
        fault(
            "several-h1",
            f"an H1 inside section {section!r} ({line.strip()!r}): an llms.txt has one H1, "
            "the site's name",
        )
        return None
    item = _ITEM.match(line)
    if item is None:
        fault(
            "not-a-link",
            f"text in section {section!r} ({_cut(line)!r}): a section holds only its list of "
            f"links ({_FIX_ITEM}); move text to the paragraph before the first section",
        )
        return None
    body = item["body"] or ""
    link = _LINK.match(body)
    if link is None:
        fault("not-a-link", f"a list item without a link ({_cut(line)!r}): {_FIX_ITEM}")
        return None
    if item["marker"] != "-":
        fault(
            "list-marker",
            f"a list item marked {item['marker']!r}: the reference parser reads only '-' "
            "items; start it with '- '",
        )
        return None
    name, url, rest = link["name"], link["dest"].strip(), link["rest"]
    if not name.strip():
        fault("empty-link-name", f"a link without a name ({_cut(line)!r}): write '[name](url)'")
        return None
    if (len(name) - len(name.rstrip("\\"))) % 2:
        fault(
            "link-escape",
            f"the link name ends with a backslash, which escapes its ']' ({_cut(line)!r}): "
            "Markdown reads no link there; write the backslash twice",
        )
        return None
    problem = _url_problem(url, rest)
    if problem is not None:
        fault(*problem)
        return None
    description = rest[1:].strip() if rest.startswith(":") else ""
    if not rest.strip() or (rest.startswith(":") and not description):
        fault(
            "no-description",
            f"link {url} has no description: add ': what the page holds' after the link "
            "(readers choose pages by it)",
        )
    elif not rest.startswith(":"):
        fault(
            "description-separator",
            f"link {url} is followed by {_cut(rest.strip())!r}: the reference parser reads a "
            "description only after a colon: write '[name](url): description'",
        )
    return Link(name=name, url=url, description=description, line=number, section=section)


def _url_problem(url: str, rest: str) -> tuple[str, str] | None:
    if url.startswith("<"):
        return "url-angle", f"'<{url[1:]}': write the URL without angle brackets"
    if "(" in url or rest.startswith(")"):
        return (
            "url-paren",
            f"a ')' ends the URL {url}) early for the reference parser: write '(' and ')' in "
            "URLs as %28 and %29",
        )
    if not url or any(space in url for space in " \t"):
        return (
            "url-space",
            f"({url}): a link title or a space in the URL is read as part of it by the "
            "reference parser: drop the title, write spaces as %20",
        )
    parts = urlsplit(url)
    if not parts.scheme:
        return (
            "relative-url",
            f"relative URL {url}: readers that do not know where the file came from cannot "
            "follow it; write the absolute https:// URL",
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "url-scheme", f"{url}: link to an http:// or https:// URL"
    return None


def no_sections(lines: list[str], head_end: int) -> Fault:
    listed = [
        number + 1
        for number in range(head_end)
        if (item := _ITEM.match(lines[number])) and _LINK.match(item["body"] or "")
    ]
    where = (
        f" (the links from line {listed[0]} are in the details, not in a section)" if listed else ""
    )
    return Fault(
        code="no-sections",
        message=f"no sections: list the pages under '## Section' headings, {_FIX_ITEM}{where}",
    )


def _cut(text: str, limit: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
