"""``validate``'s reading of an llms.txt: every seeded fault is found on its line, and a file
found clean reads the same to the reference parser (PyPI ``llms-txt``, the package itself)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from llms_txt import parse_llms_file  # type: ignore[import-untyped]

from crawl4ai_llm_docs.validate.reading import read
from crawl4ai_llm_docs.validate.reference import reference_reading

GOOD = """\
# Example

> Example is a library for examples.

It has a guide and a reference.

## Guide

- [Install](https://docs.example.org/install.html): install it with pip
- [Tutorial](https://docs.example.org/tutorial.html): the first steps

## Optional

- [Changelog](https://docs.example.org/changes.html): every release
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


# name: (file, the fault's code, its line)
SEEDED: dict[str, tuple[str, str, int]] = {
    "empty file": ("\n\n", "empty", 0),
    "html page": ("<!DOCTYPE html><html><body>Not found</body></html>", "html", 0),
    "no H1": (_with("# Example\n", "Example\n"), "no-h1", 1),
    "setext H1": (_with("# Example\n", "Example\n=======\n"), "no-h1", 1),
    "H1 without a space": (_with("# Example", "#Example"), "h1-space", 1),
    "text before the H1": ("Welcome!\n\n" + GOOD, "text-before-h1", 1),
    "several H1s": (_with("It has", "# Another name\n\nIt has"), "several-h1", 5),
    "an H1 in a section": (GOOD + "# Appendix\n", "several-h1", 15),
    "no blockquote": (_with("> Example is a library for examples.\n\n", ""), "no-summary", 3),
    "empty blockquote": (_with("> Example is a library for examples.", ">"), "empty-summary", 3),
    "summary on two lines": (_with("examples.\n", "examples.\n> More.\n"), "summary-lines", 4),
    "summary with nothing after it": (
        _with("It has a guide and a reference.\n\n", ""),
        "summary-not-read",
        3,
    ),
    "link without description": (_with(": the first steps", ""), "no-description", 10),
    "empty description": (_with(": the first steps", ":  "), "no-description", 10),
    "description after a dash": (
        _with(": the first steps", " - the first steps"),
        "description-separator",
        10,
    ),
    "star list marker": (_with("- [Tutorial]", "* [Tutorial]"), "list-marker", 10),
    "numbered item": (_with("- [Tutorial]", "1. [Tutorial]"), "list-marker", 10),
    "text in a section": (
        _with("- [Tutorial]", "Read these first.\n- [Tutorial]"),
        "not-a-link",
        10,
    ),
    "item without a link": (_with("- [Tutorial]", "- Tutorial\n- [Tutorial]"), "not-a-link", 10),
    "link without a name": (_with("[Tutorial]", "[]"), "empty-link-name", 10),
    "escaped bracket": (_with("[Tutorial]", "[Tutorial\\]"), "link-escape", 10),
    "H3 heading": (_with("## Optional", "### Optional"), "heading-level", 12),
    "H2 without a space": (_with("## Optional", "##Optional"), "h2-space", 12),
    "section without a name": (_with("## Optional", "##"), "empty-section-name", 12),
    "empty section": (_with("## Optional\n", "## Extra\n\n## Optional\n"), "empty-section", 12),
    "duplicate section": (_with("## Optional", "## Guide"), "duplicate-section", 12),
    "no sections": ("# Example\n\n> Summary.\n\n- [A](https://x.org/a): a\n", "no-sections", 0),
    "nothing but a head": ("# Example\n\n> Summary.\n\nText.\n", "no-sections", 0),
    "relative URL": (
        _with("https://docs.example.org/install.html", "install.html"),
        "relative-url",
        9,
    ),
    "other scheme": (
        _with("https://docs.example.org/install.html", "ftp://x.org/a"),
        "url-scheme",
        9,
    ),
    "parenthesis in URL": (
        _with("https://docs.example.org/install.html", "https://x.org/Foo_(bar)"),
        "url-paren",
        9,
    ),
    "link title": (
        _with("install.html)", 'install.html "Install")'),
        "url-space",
        9,
    ),
    "angle brackets": (
        _with(
            "(https://docs.example.org/install.html)", "(<https://docs.example.org/install.html>)"
        ),
        "url-angle",
        9,
    ),
    "byte-order mark": ("\ufeff" + GOOD, "bom", 1),
    "CRLF line ends": (GOOD.replace("\n", "\r\n"), "crlf", 1),
}


def test_a_good_file_is_clean_and_read_whole() -> None:
    reading = read(GOOD)
    assert reading.faults == []
    assert reading.title == "Example"
    assert reading.summary == "Example is a library for examples."
    assert list(reading.sections) == ["Guide", "Optional"]
    assert [(link.name, link.line) for link in reading.links] == [
        ("Install", 9),
        ("Tutorial", 10),
        ("Changelog", 14),
    ]


@pytest.mark.parametrize(("text", "code", "line"), list(SEEDED.values()), ids=list(SEEDED))
def test_each_seeded_fault_is_found_on_its_line(text: str, code: str, line: int) -> None:
    found = [(fault.code, fault.line) for fault in read(text).faults]
    assert (code, line) in found, found
    assert all(fault.message for fault in read(text).faults)


def test_the_reference_parser_rejects_or_misreads_every_seeded_fault_it_can_see() -> None:
    """The seeded files are really broken for the reference reading, or break the spec's
    wording only (no summary, no description, relative URL...): never both clean."""
    for name, (text, code, _) in SEEDED.items():
        reference = reference_reading(text.replace("\r", "").removeprefix("\ufeff"))
        assert read(text).faults, name
        if reference is not None and code in {"no-h1", "h1-space", "html", "empty"}:
            assert reference.title != "Example" or code == "h1-space", name


# ---------------------------------------------------------------- against the package itself


def _package(text: str) -> dict[str, Any] | None:
    """``llms_txt.parse_llms_file`` as plain data; None where it raises."""
    try:
        parsed = parse_llms_file(text)
    except (AttributeError, TypeError):  # its ways of failing on a line it cannot read
        return None
    sections = {
        name: [(link["title"], link["url"], link["desc"]) for link in links]
        for name, links in parsed.sections.items()
    }
    return {
        "title": parsed.title,
        "summary": parsed.summary,
        "info": parsed.info,
        "sections": sections,
    }


def _copy(text: str) -> dict[str, Any] | None:
    reading = reference_reading(text)
    if reading is None:
        return None
    sections = {name: [tuple(link) for link in links] for name, links in reading.sections.items()}
    return {
        "title": reading.title,
        "summary": reading.summary,
        "info": reading.info,
        "sections": sections,
    }


_WORD = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", categories=["L", "N"], include_characters=" .,;!?'\"`_-/&"
        ),
        min_size=1,
        max_size=24,
    )
    .map(str.strip)
    .filter(lambda word: word and word[0].isalnum())
)
_SLUG = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./%", min_size=1, max_size=20)
_URL = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["docs.example.org", "127.0.0.1:8000", "xn--bcher-kva.example"]),
    _SLUG,
)


@st.composite
def clean_files(draw: st.DrawFn) -> str:
    """Files as the format describes them, with names and text drawn widely."""
    lines = [f"# {draw(_WORD)}", "", f"> {draw(_WORD)}", ""]
    for _ in range(draw(st.integers(1, 3))):
        lines += [draw(_WORD), ""]
    names = draw(st.lists(_WORD, min_size=1, max_size=4, unique=True))
    for name in names:
        lines += [f"## {name}", ""]
        for _ in range(draw(st.integers(1, 4))):
            lines.append(f"- [{draw(_WORD)}]({draw(_URL)}): {draw(_WORD)}")
        lines.append("")
    return "\n".join(lines)


# Lines that break the format, or nearly do.
_RISKY = [
    "# Another H1",
    "#NoSpace",
    "## ",
    "##",
    "### Deeper",
    "##NoSpace",
    "> quoted",
    ">",
    "",
    "plain text",
    "- plain item",
    "* [star](https://x.org/s): s",
    "1. [numbered](https://x.org/n): n",
    "- [no description](https://x.org/d)",
    "- [dash](https://x.org/d) - described",
    "- [](https://x.org/e): empty name",
    '- [titled](https://x.org/t "Title"): t',
    "- [paren](https://x.org/a_(b)): p",
    "- [relative](guide/a.html): r",
    "- [angle](<https://x.org/a>): a",
    "  - [nested](https://x.org/n): nested",
    "```",
    "<!-- comment -->",
    "Title\n=====",
    "- [a [b] c](https://x.org/x): brackets",
    "- [ok](https://x.org/ok):description without space",
]


@st.composite
def broken_files(draw: st.DrawFn) -> str:
    lines = draw(clean_files()).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["insert", "replace", "delete", "cut"]))
        risky = draw(st.sampled_from(_RISKY))
        if action == "cut":
            del lines[position:]
        elif action == "insert" or position == len(lines):
            lines.insert(position, risky)
        elif action == "replace":
            lines[position] = risky
        else:
            del lines[position]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_files())
def test_clean_files_have_no_faults_and_read_as_the_package_reads_them(text: str) -> None:
    reading = read(text)
    assert reading.faults == [], text
    package = _package(text)
    assert package is not None, text
    assert package["title"].strip() == reading.title
    assert (package["summary"] or "").strip() == reading.summary
    assert [name.strip() for name in package["sections"]] == list(reading.sections)
    theirs = [
        (t, u, (d or "").strip()) for links in package["sections"].values() for t, u, d in links
    ]
    assert theirs == [(link.name, link.url, link.description) for link in reading.links]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(broken_files(), clean_files()))
@example("# T\n\n## Docs\n\n- [a](https://x.org/a): a\n")  # no head for the package at all
@example("# T\n> S\n\n## Docs\n\n- [a](https://x.org/a): a\n")
def test_the_copy_reads_as_the_package_and_no_fault_means_the_same_reading(text: str) -> None:
    package = _package(text)
    assert _copy(text) == package  # the copied expressions are the package's
    reading = read(text)
    if package is None:
        assert reading.faults, text  # what the package cannot read is never clean
    if not reading.faults:
        assert package is not None
        assert package["title"].strip() == reading.title
        assert (package["summary"] or "").strip() == reading.summary
        links = [(t, u, (d or "").strip()) for ls in package["sections"].values() for t, u, d in ls]
        assert links == [(link.name, link.url, link.description) for link in reading.links]
