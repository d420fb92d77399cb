"""``--max-file-tokens``: the consolidated document as ``NAME.part-01.md`` ... ``NAME.part-NN.md``.

Pages are never cut: each part holds whole pages, in order, under the limit; a page larger than
the limit gets a part of its own (and a warning). Part 1 starts with the title and the table of
contents, whose links point into the other parts. The parts replace the previous set together
(``files.Staging``, shared with the run's other outputs), and parts of an earlier, longer
split are removed once they are in place.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from crawl4ai_llm_docs.files import Staging
from crawl4ai_llm_docs.markdown.tokens import count_tokens

# Added per page to the sum of the pages' own counts: two texts joined can tokenize into one
# token more than apart.
BOUNDARY_TOKENS = 1
MAX_NAMED = 5  # oversized pages named in the warning
TAIL = -1  # the "page number" of the failed pages' section in the contents


class Assignment(NamedTuple):
    parts: list[int]  # the part (0-based) of each page, in order
    tail_part: int  # the part that holds the tail (the failed pages), -1 when there is none
    total: int  # number of parts
    oversized: list[int]  # pages (0-based) larger than the limit on their own


def assign(tokens: Sequence[int], *, first: int, later: int, tail: int, limit: int) -> Assignment:
    """Pack pages into parts in order: ``first`` tokens open part 1 (title and contents),
    ``later`` open each other part, ``tail`` closes the last one."""
    parts: list[int] = []
    oversized: list[int] = []
    part, used, pages_in_part = 0, first, 0
    for number, size in enumerate(tokens):
        size += BOUNDARY_TOKENS
        if used + size > limit and (pages_in_part or part == 0):
            part, used, pages_in_part = part + 1, later, 0
        parts.append(part)
        used += size
        pages_in_part += 1
        if pages_in_part == 1 and used > limit and part > 0:
            oversized.append(number)
    tail_part = -1
    if tail:
        if used + tail > limit and pages_in_part:
            part, used = part + 1, later
        tail_part = part
    return Assignment(parts, tail_part, part + 1, oversized)


def part_path(path: Path, number: int, width: int) -> Path:
    """``docs.md`` -> ``docs.part-01.md`` (``number`` from 1)."""
    return path.with_name(f"{path.stem}.part-{number:0{width}d}{path.suffix}")


def _width(count: int) -> int:
    return max(2, len(str(count)))


def remove_stale_parts(path: Path, keep: Sequence[Path]) -> None:
    """Delete the ``NAME.part-NN`` files an earlier split left that are not ``keep`` (more
    parts, or numbered with another width: ``part-001`` of a split into 100 or more)."""
    pattern = re.compile(rf"^{re.escape(path.stem)}\.part-\d+{re.escape(path.suffix)}$")
    current = {part.name for part in keep}
    for candidate in path.parent.iterdir():
        name = candidate.name
        if pattern.match(name) and name not in current and candidate.is_file():
            candidate.unlink(missing_ok=True)


class SplitInput(NamedTuple):
    """What the consolidated writer collected, for the parts."""

    title: str
    header: str  # the text between the H1 and the contents (sources line, incomplete note)
    toc: Callable[[Callable[[int], str]], str]  # the contents, given page number -> file name
    body: IO[bytes]  # every page's section, back to back
    offsets: Sequence[int]  # where each page's section starts in ``body``
    tokens: Sequence[int]  # each page's section, in tokens
    tail: str  # the failed pages' section, or ""


def _constant(name: str) -> Callable[[int], str]:
    return lambda _: name


def _later_heading(title: str, number: int, count: int) -> str:
    return f"# {title} (part {number} of {count})\n\n"


def _first_text(data: SplitInput, names: Callable[[int], str], count: int, files: str) -> str:
    note = f"This document is split into {count} files: {files}.\n\n" if count > 1 else ""
    return f"# {data.title}\n\n{data.header}{note}## Contents\n\n{data.toc(names)}\n"


def write_parts(
    path: Path, data: SplitInput, *, limit: int, staging: Staging | None = None
) -> tuple[list[Path], list[str]]:
    """Write the parts; returns their paths and the warnings to show. With ``staging`` they
    are only staged (its ``commit`` puts them in place and removes older parts); without,
    they are in place when this returns."""
    count, width = 1, 2
    for _ in range(3):  # the file names' width depends on the count, the count on the names
        blank = part_path(path, 0, width).name
        first = count_tokens(_first_text(data, _constant(blank), count, f"{blank} … {blank}"))
        later = count_tokens(_later_heading(data.title, 10**width - 1, 10**width - 1))
        tail = count_tokens(data.tail) if data.tail else 0
        plan = assign(data.tokens, first=first, later=later, tail=tail, limit=limit)
        count = plan.total
        if _width(count) == width:
            break
        width = _width(count)
    paths = [part_path(path, number + 1, width) for number in range(count)]
    warnings: list[str] = []
    if first > limit:
        warnings.append(
            f"The title and table of contents alone are {first} tokens, above "
            f"output.max_file_tokens = {limit}: {paths[0].name} holds only them."
        )

    def names(page: int) -> str:  # page numbers start at 1
        return paths[plan.tail_part if page == TAIL else plan.parts[page - 1]].name

    files = (
        f"{paths[0].name} … {paths[-1].name}" if count > 2 else " and ".join(p.name for p in paths)
    )
    ends = [*data.offsets[1:], None]
    oversized = set(plan.oversized)
    large: list[str] = []
    with contextlib.ExitStack() as stack:
        own = staging is None
        batch = stack.enter_context(Staging()) if staging is None else staging
        page = 0
        for number, part in enumerate(paths):
            with batch.open(part) as out:
                if number == 0:
                    out.write(_first_text(data, names, count, files))
                else:
                    out.write(_later_heading(data.title, number + 1, count))
                while page < len(plan.parts) and plan.parts[page] == number:
                    data.body.seek(data.offsets[page])
                    end = ends[page]
                    size = -1 if end is None else end - data.offsets[page]
                    section = data.body.read(size).decode("utf-8")
                    if page in oversized:
                        heading = section.split("\n", 1)[0].removeprefix("## ")
                        large.append(f"{heading!r} ({data.tokens[page]} tokens, {part.name})")
                    out.write(section)
                    page += 1
                if plan.tail_part == number:
                    out.write(data.tail)
        batch.after_commit(functools.partial(remove_stale_parts, path, paths))
        if own:
            batch.commit()
    if large:
        shown = "; ".join(large[:MAX_NAMED])
        more = f"; and {len(large) - MAX_NAMED} more" if len(large) > MAX_NAMED else ""
        warnings.append(
            f"{len(large)} page(s) above output.max_file_tokens = {limit}, each in a part of "
            f"its own: {shown}{more}."
        )
    return paths, warnings
