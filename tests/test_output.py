"""The write stage's files: consolidated Markdown, llms.txt / llms-full.txt, the report."""

from __future__ import annotations

import json
import re
import stat
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from crawl4ai_llm_docs.markdown.blocks import fence_mask, heading_level
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.consolidated import write_consolidated, write_report
from crawl4ai_llm_docs.outputs.llms_txt import write_llms_txt
from crawl4ai_llm_docs.outputs.markdown import nest_markdown, slugify
from tests.llms_txt_parser import Link, LlmsTxtError, parse_llms_txt

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def doc(
    index: int,
    title: str,
    markdown: str = "",
    *,
    url: str = "",
    description: str = "",
    error: str | None = None,
) -> Document:
    return Document(
        index=index,
        url=url or f"https://docs.example.com/docs/page{index}",
        title=title,
        markdown=markdown or f"Body of page {index}.",
        description=description,
        error=error,
    )


class Reiterable:
    """Documents the writers can read twice, made on demand (the writers need two passes)."""

    def __init__(self, make: Callable[[], Iterator[Document]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[Document]:
        return self._make()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def github_anchors(markdown: str) -> dict[str, str]:
    """Anchor -> heading text, as GitHub assigns them: in document order, repeats get -1, -2."""
    anchors: dict[str, str] = {}
    seen: dict[str, int] = {}
    lines = markdown.split("\n")
    for line, in_code in zip(lines, fence_mask(lines), strict=True):
        if in_code or not heading_level(line):
            continue
        text = line.lstrip("#").strip()
        slug = slugify(text)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors[f"{slug}-{count}" if count else slug] = text
    return anchors


def h2s(markdown: str) -> list[str]:
    lines = markdown.split("\n")
    return [
        line[3:]
        for line, code in zip(lines, fence_mask(lines), strict=True)
        if not code and line.startswith("## ")
    ]


# ---------------------------------------------------------------- consolidated


def test_consolidated_layout(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    documents = [
        doc(0, "Install", "# Install\n\nRun `pip install x`.\n\n## Linux\n\nUse apt."),
        doc(1, "Usage", "Intro.\n\n# Basics\n\nText.\n\n```python\n# not a heading\n```"),
    ]
    summary = write_consolidated(out, documents, title="X Docs", generated_at=WHEN)
    text = out.read_text()
    assert text == (
        "# X Docs\n\n"
        "Sources: 2 pages · Generated: 2025-03-04 05:06 UTC\n\n"
        "## Contents\n\n"
        "- [1. Install](#1-install)\n"
        "- [2. Usage](#2-usage)\n\n"
        "## 1. Install\n\n"
        "Source: https://docs.example.com/docs/page0\n\n"
        "Run `pip install x`.\n\n"
        "### Linux\n\n"
        "Use apt.\n\n"
        "## 2. Usage\n\n"
        "Source: https://docs.example.com/docs/page1\n\n"
        "Intro.\n\n"
        "### Basics\n\n"
        "Text.\n\n"
        "```python\n# not a heading\n```\n\n"
    )
    assert summary.documents == 2
    assert summary.failed == 0
    assert summary.bytes == len(text.encode())
    assert mode(out) == 0o600
    assert "Pages that failed" not in text
    assert "Incomplete" not in text


def test_documents_keep_the_order_given(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    titles = ["Zeta", "Alpha", "Mid", "Beta"]
    write_consolidated(out, [doc(i, t) for i, t in enumerate(titles)], title="T", generated_at=WHEN)
    text = out.read_text()
    assert h2s(text) == ["Contents", *(f"{i + 1}. {t}" for i, t in enumerate(titles))]
    bodies = [text.index(f"Body of page {i}.") for i in range(4)]
    assert bodies == sorted(bodies)


def test_toc_anchors_are_unique_and_point_at_their_section(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    documents = [
        doc(0, "Overview", "## Overview\n\nSame title as the next pages."),
        doc(1, "Overview"),
        doc(2, "Overview", "# 2. Overview\n\nA heading that looks like a section."),
        doc(3, "API [beta] & *extras*"),
        doc(4, "Überblick: Ünïcode"),
        doc(5, ""),  # no title: the URL is used
    ]
    write_consolidated(
        out, documents, title="T", failed=[("https://x/", "HTTP 500")], generated_at=WHEN
    )
    text = out.read_text()
    toc = re.findall(r"^- \[(.+)\]\(#([^)]*)\)$", text, flags=re.MULTILINE)
    targets = [anchor for _, anchor in toc]
    assert len(targets) == len(set(targets)) == 7
    anchors = github_anchors(text)
    sections = h2s(text)[1:]
    assert [anchors[target] for target in targets] == sections
    assert sections[5] == "6. https://docs.example.com/docs/page5"
    assert sections[-1] == "Pages that failed"


def test_failed_pages_section(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    documents = [
        doc(0, "Good"),
        doc(1, "Bad", url="https://docs.example.com/bad", error="HTTP 404\nNot Found"),
        doc(2, "Twice", url="https://docs.example.com/twice", error="crawl timeout"),
    ]
    failed = [("https://docs.example.com/twice", "crawl timeout after 30 s")]
    summary = write_consolidated(out, documents, title="T", failed=failed, generated_at=WHEN)
    text = out.read_text()
    assert summary.failed == 2
    assert text.endswith(
        "## Pages that failed\n\n"
        "- https://docs.example.com/twice: crawl timeout after 30 s\n"
        "- https://docs.example.com/bad: HTTP 404 Not Found\n"
    )
    assert "Sources: 1 page, 2 failed" in text
    assert "- [Pages that failed](#pages-that-failed)" in text
    assert "Bad" not in h2s(text)


@pytest.mark.parametrize(
    ("reason", "note"),
    [
        ("", "> **Incomplete:** the run was interrupted or stopped early; pages may be missing.\n"),
        (
            "Stopped by Ctrl-C after 3 of 10 pages.",
            "> **Incomplete:** Stopped by Ctrl-C after 3 of 10 pages.\n",
        ),
    ],
)
def test_incomplete_marker(tmp_path: Path, reason: str, note: str) -> None:
    out = tmp_path / "docs.md"
    write_consolidated(
        out,
        [doc(0, "A")],
        title="T",
        incomplete=True,
        incomplete_reason=reason,
        generated_at=WHEN,
    )
    text = out.read_text()
    assert note in text
    assert text.index(note) < text.index("## Contents")


def test_generation_time_is_shown_in_utc(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    write_consolidated(out, [], title="", generated_at=local)
    assert out.read_text() == (
        "# Documentation\n\nSources: 0 pages · Generated: 2025-03-04 05:06 UTC\n\n"
    )


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    out.write_text("previous version\n")

    def documents() -> Iterator[Document]:
        yield doc(0, "A")
        raise OSError("spool file vanished")

    with pytest.raises(OSError, match="spool file vanished"):
        write_consolidated(out, Reiterable(documents), title="T", generated_at=WHEN)
    assert out.read_text() == "previous version\n"
    assert [p.name for p in tmp_path.iterdir()] == ["docs.md"]


def test_interrupted_final_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "docs.md"
    out.write_text("previous version\n")

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_consolidated(out, [doc(0, "A")], title="T", generated_at=WHEN)
    assert out.read_text() == "previous version\n"
    assert [p.name for p in tmp_path.iterdir()] == ["docs.md"]


def test_output_directory_is_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "docs.md"
    write_consolidated(out, [doc(0, "A")], title="T", generated_at=WHEN)
    assert out.is_file()


PAGE = "x" * 9_000 + "\n\n## Part\n\n" + "y" * 1_000


def many_documents(count: int) -> Iterator[Document]:
    # Built on demand: together they are ~100 MB of Markdown, far above the memory bound.
    for index in range(count):
        yield Document(
            index=index,
            url=f"https://docs.example.com/section{index % 7}/page{index}",
            title=f"Page {index}",
            markdown=f"# Page {index}\n\n{PAGE}",
            description=f"What page {index} covers.",
        )


def peak_memory(action: object) -> int:
    assert callable(action)
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_consolidated_memory_stays_flat(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    peak = peak_memory(
        lambda: write_consolidated(
            out, Reiterable(lambda: many_documents(10_000)), title="T", generated_at=WHEN
        )
    )
    assert peak < 2_000_000  # a few pages' worth; all pages would be ~100 MB
    assert out.stat().st_size > 100_000_000
    with out.open() as handle:
        assert sum(1 for line in handle if line.startswith("## ")) == 10_001


def test_llms_txt_memory_holds_only_entries(tmp_path: Path) -> None:
    peak = peak_memory(
        lambda: write_llms_txt(
            tmp_path, Reiterable(lambda: many_documents(10_000)), title="T", summary="S"
        )
    )
    assert peak < 20_000_000  # the index entries (under 1 KB a page), never the ~100 MB of pages
    assert (tmp_path / "llms-full.txt").stat().st_size > 100_000_000


# ---------------------------------------------------------------- nesting headings


@pytest.mark.parametrize(
    ("markdown", "title", "expected"),
    [
        ("# A\n\n## B\n\n### C", "", "### A\n\n#### B\n\n##### C"),
        ("## B\n\n#### D", "", "### B\n\n##### D"),
        ("##### Deep\n\ntext", "", "### Deep\n\ntext"),
        ("# A\n## B\n### C\n#### D\n##### E", "", "### A\n#### B\n##### C\n###### D\n###### E"),
        ("# Title\n\n## Part\n\nText.", "Title", "### Part\n\nText."),
        ("#  title  #\n\nText.\n\n# Other", " TITLE ", "Text.\n\n### Other"),
        ("Intro.\n\n# Title", "Title", "Intro.\n\n### Title"),  # not first: kept
        ("Setext\n======\n\nSub\n---\n\nText", "", "### Setext\n\n#### Sub\n\nText"),
        ("Title\n=====\n\nText", "Title", "Text"),
        ("- item\n---\n\n| a |\n---", "", "- item\n---\n\n| a |\n---"),
        ("line one\nline two\n---", "", "line one\nline two\n---"),
        (
            "```md\n# not\nSetext\n===\n```\n\n# Yes",
            "",
            "```md\n# not\nSetext\n===\n```\n\n### Yes",
        ),
        ("    # indented code\n\ntext", "", "    # indented code\n\ntext"),
        ("#hashtag and C# ##", "", "#hashtag and C# ##"),
        ("## C# ##\n", "", "### C#"),
        ("No headings at all.", "Title", "No headings at all."),
        ("# A\n\n~~~~js\ncode\n```", "", "### A\n\n~~~~js\ncode\n```\n~~~~"),
        ("  ```\nopen", "", "  ```\nopen\n  ```"),
        ("", "", ""),
    ],
)
def test_nest_markdown(markdown: str, title: str, expected: str) -> None:
    assert nest_markdown(markdown, top=3, title=title) == expected


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("1. Getting Started", "1-getting-started"),
        ("API [beta] & *extras*", "api-beta--extras"),
        ("Überblick: Ünïcode", "überblick-ünïcode"),
        ("snake_case-name", "snake_case-name"),
        ("`code()` call", "code-call"),
    ],
)
def test_slugify_like_github(heading: str, slug: str) -> None:
    assert slugify(heading) == slug


# ---------------------------------------------------------------- llms.txt


def site_documents() -> list[Document]:
    base = "https://docs.example.com/v2"
    return [
        doc(0, "Home", url=f"{base}/", description="What the library is."),
        doc(1, "Install", url=f"{base}/install", description="How to install it."),
        doc(2, "First steps", url=f"{base}/guide/first-steps", description="A tour."),
        doc(3, "Broken", url=f"{base}/guide/broken", error="HTTP 500"),
        doc(4, "Client", url=f"{base}/api_reference/client.html", description="The Client class."),
        doc(5, "Advanced", url=f"{base}/guide/advanced/", description=""),
        doc(
            6, "[Beta] (new)", url=f"{base}/api_reference/beta (1).html", description="Line\nbreak."
        ),
        doc(7, "Optional things", url=f"{base}/optional/x", description="Extras."),
    ]


def test_llms_txt_is_valid_and_grouped(tmp_path: Path) -> None:
    index, full = write_llms_txt(
        tmp_path,
        site_documents(),
        title="Example\nLibrary",
        summary="Example is a library\n for examples.",
        details="Pages cleaned by an LLM from the official docs.",
    )
    assert (index, full) == (tmp_path / "llms.txt", tmp_path / "llms-full.txt")
    parsed = parse_llms_txt(index.read_text())
    assert parsed.title == "Example Library"
    assert parsed.summary == "Example is a library for examples."
    assert parsed.details == "Pages cleaned by an LLM from the official docs."
    base = "https://docs.example.com/v2"
    assert parsed.sections == {
        "Docs": [
            Link("Home", f"{base}/", "What the library is."),
            Link("Install", f"{base}/install", "How to install it."),
        ],
        "Guide": [
            Link("First steps", f"{base}/guide/first-steps", "A tour."),
            # No description from the LLM nor the page: its first sentence.
            Link("Advanced", f"{base}/guide/advanced/", "Body of page 5."),
        ],
        "Api reference": [
            Link("Client", f"{base}/api_reference/client.html", "The Client class."),
            Link("(Beta) (new)", f"{base}/api_reference/beta%20%281%29.html", "Line break."),
        ],
        "Optional pages": [Link("Optional things", f"{base}/optional/x", "Extras.")],
    }
    assert mode(index) == mode(full) == 0o600


def test_llms_full_holds_every_page_in_order(tmp_path: Path) -> None:
    documents = [
        doc(0, "One", "# One\n\nFirst.\n\n## Sub\n\nMore."),
        doc(1, "Two", "Second.", error="HTTP 404"),
        doc(2, "Three", "Third."),
    ]
    _, full = write_llms_txt(tmp_path, documents, title="T", summary="")
    assert full.read_text() == (
        "# T\n\n"
        "## One\n\nSource: https://docs.example.com/docs/page0\n\nFirst.\n\n### Sub\n\nMore.\n\n"
        "## Three\n\nSource: https://docs.example.com/docs/page2\n\nThird.\n\n"
    )


def test_llms_txt_without_summary_or_pages(tmp_path: Path) -> None:
    index, _ = write_llms_txt(tmp_path, [], title="", summary="  ")
    assert index.read_text() == "# Documentation\n"
    parsed = parse_llms_txt(index.read_text())
    assert (parsed.summary, parsed.sections) == (None, {})


def test_llms_txt_sections_by_site_when_hosts_differ(tmp_path: Path) -> None:
    documents = [
        doc(0, "A", url="https://one.example.com/docs/a"),
        doc(1, "B", url="https://two.example.com/b"),
    ]
    index, _ = write_llms_txt(tmp_path, documents, title="T", summary="S")
    assert list(parse_llms_txt(index.read_text()).sections) == [
        "One.example.com",
        "Two.example.com",
    ]


def test_llms_txt_failed_write_keeps_both_files(tmp_path: Path) -> None:
    (tmp_path / "llms.txt").write_text("old index\n")
    (tmp_path / "llms-full.txt").write_text("old full\n")

    def documents() -> Iterator[Document]:
        yield doc(0, "A")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_llms_txt(tmp_path, Reiterable(documents), title="T", summary="S")
    assert (tmp_path / "llms.txt").read_text() == "old index\n"
    assert (tmp_path / "llms-full.txt").read_text() == "old full\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llms-full.txt", "llms.txt"]


# ---------------------------------------------------------------- the strict parser

SPEC_EXAMPLE = """# FastHTML

> FastHTML is a python library which brings together Starlette, Uvicorn, HTMX, and fastcore's `FT` "FastTags" into a library for creating server-rendered hypermedia applications.

Important notes:

- Although parts of its API are inspired by FastAPI, it is *not* compatible with FastAPI syntax
- FastHTML is compatible with JS-native web components and any vanilla JS library

## Docs

- [FastHTML quick start](https://fastht.ml/docs/tutorials/quickstart_for_web_devs.html.md): A brief overview of many FastHTML features
- [HTMX reference](https://github.com/bigskysoftware/htmx/blob/master/www/content/reference.md): Brief description of all HTMX attributes

## Optional

- [Starlette full documentation](https://gist.githubusercontent.com/jph00/starlette-sml.md)
"""


def test_parser_accepts_the_spec_example() -> None:
    parsed = parse_llms_txt("\ufeff" + SPEC_EXAMPLE)
    assert parsed.title == "FastHTML"
    assert parsed.summary is not None
    assert parsed.summary.startswith("FastHTML is a python library")
    assert parsed.details.startswith("Important notes:")
    assert list(parsed.sections) == ["Docs", "Optional"]
    assert parsed.sections["Optional"] == [
        Link(
            "Starlette full documentation",
            "https://gist.githubusercontent.com/jph00/starlette-sml.md",
            None,
        )
    ]
    assert parsed.sections["Docs"][1].notes == "Brief description of all HTMX attributes"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("", "must start with an H1"),
        ("\n# Title\n", "must start with an H1"),
        ("Title\n=====\n", "must start with an H1"),
        ("## Title\n", "must start with an H1"),
        ("#Title\n", "must start with an H1"),
        ("# Title\n\n# Again\n", "only H2 headings"),
        ("# Title\n\n### Details\n", "only H2 headings"),
        ("# Title\n\nSome text\n---\n", "setext heading"),
        ("# Title\n\n```\n# code\n", "unclosed code fence"),
        ("# Title\n\n>\n", "summary blockquote is empty"),
        ("# Title\n\n## Docs\n\nA paragraph.\n", "only '- [name](url): notes' items"),
        ("# Title\n\n## Docs\n\n- [A](https://a.example/)\n### Sub\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n- [A](https://a.example/) trailing\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n- [A](https://a.example/):\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n- [](https://a.example/)\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n- [A]()\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n- A: https://a.example/\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n  - [A](https://a.example/)\n", "only '- [name](url)"),
        ("# Title\n\n## Docs\n\n- [A](a.html)\n", "not an absolute http(s) URL"),
        ("# Title\n\n## Docs\n\n## More\n\n- [A](https://a.example/)\n", "at least one link"),
        ("# Title\n\n## Docs\n", "at least one link"),
        (
            "# Title\n\n## Docs\n\n- [A](https://a.example/)\n\n## Docs\n\n- [B](https://b.example/)\n",
            "appears twice",
        ),
        ("# Title\r\n", "carriage returns"),
    ],
)
def test_parser_rejects(broken: str, message: str) -> None:
    with pytest.raises(LlmsTxtError, match=re.escape(message)):
        parse_llms_txt(broken)


def test_parser_relative_urls_when_allowed() -> None:
    parsed = parse_llms_txt("# T\n\n## Docs\n\n- [A](a.html): x\n", absolute_urls=False)
    assert parsed.sections["Docs"] == [Link("A", "a.html", "x")]


# ---------------------------------------------------------------- report


class Report(msgspec.Struct, kw_only=True):
    pages: int
    failed: list[str]
    finished_at: datetime


def test_report_is_indented_json(tmp_path: Path) -> None:
    path = tmp_path / "docs.report.json"
    write_report(path, Report(pages=3, failed=["https://x/"], finished_at=WHEN))
    text = path.read_text()
    assert json.loads(text) == {
        "pages": 3,
        "failed": ["https://x/"],
        "finished_at": "2025-03-04T05:06:07Z",
    }
    assert text.startswith('{\n  "pages": 3,')
    assert text.endswith("}\n")
    assert mode(path) == 0o600
    write_report(path, {"pages": 4})
    assert json.loads(path.read_text()) == {"pages": 4}


def test_report_that_cannot_be_encoded_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_report(path, {"ok": True})
    with pytest.raises(TypeError):
        write_report(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": True}
