"""The outputs' site logic: llms.txt as the reference parser reads it, the sectioned table of
contents, the document split into parts, and one file per page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
import yaml
from llms_txt import parse_llms_file  # type: ignore[import-untyped]

from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.consolidated import write_consolidated
from crawl4ai_llm_docs.outputs.llms_txt import write_llms_txt
from crawl4ai_llm_docs.outputs.pages_dir import page_path, write_pages_dir
from crawl4ai_llm_docs.outputs.parts import assign
from crawl4ai_llm_docs.outputs.publish import OutputRequest, write_outputs
from tests.llms_txt_parser import parse_llms_txt

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
BASE = "https://docs.example.org/v1"
SUFFIX = " — Example 1.0 documentation"


def site(*, descriptions: bool = False) -> list[Document]:
    """Three directories, a root page, a changelog; no LLM descriptions unless asked."""
    pages = [
        ("index.html", "Example 1.0 documentation", "Welcome to Example, a library for examples."),
        (
            "guide/index.html",
            f"User guide{SUFFIX}",
            "The guide walks through Example step by step.",
        ),
        (
            "guide/install.html",
            f"Installation{SUFFIX}",
            "Install it with pip.\n\n```\npip install example\n```",
        ),
        ("api/index.html", f"API reference{SUFFIX}", "Every public class and function."),
        (
            "api/client.html",
            f"The Client [beta]{SUFFIX}",
            "**Source:** `x`\n\nThe client talks to servers.",
        ),
        ("faq/why.html", f"Why Example?{SUFFIX}", "Because examples help people learn fast."),
        ("changes.html", f"Changelog{SUFFIX}", "## 1.0\n\n- First release of the library."),
    ]
    return [
        Document(
            index=index,
            url=f"{BASE}/{path}",
            title=title,
            markdown=f"# {title.removesuffix(SUFFIX)}\n\n{body}",
            description=f"LLM line {index}." if descriptions else "",
            fetched_at="2025-03-04T05:00:00Z",
            changed_at="2025-03-01T00:00:00Z" if index == 2 else "",
        )
        for index, (path, title, body) in enumerate(pages)
    ]


class Failing:
    """Documents that read whole ``passes`` times, then fail half-way (a spool file lost)."""

    def __init__(self, documents: list[Document], passes: int) -> None:
        self._documents = documents
        self._passes = passes

    def __iter__(self) -> Iterator[Document]:
        if self._passes:
            self._passes -= 1
            yield from self._documents
            return
        yield from self._documents[: len(self._documents) // 2]
        raise OSError("disk gone")


def all_links(sections: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    return [link for links in sections.values() for link in links]


# ---------------------------------------------------------------- llms.txt


@pytest.mark.parametrize("descriptions", [False, True], ids=["no-llm", "llm"])
def test_reference_parser_reads_name_summary_sections_and_descriptions(
    tmp_path: Path, descriptions: bool
) -> None:
    documents = site(descriptions=descriptions)
    request = OutputRequest(
        markdown=tmp_path / "docs.md", generated_at=WHEN, llms_dir=tmp_path, cleaned=descriptions
    )
    write_outputs(documents, request)
    text = (tmp_path / "llms.txt").read_text()
    parsed = parse_llms_file(text)
    assert parsed.title == "Example 1.0 documentation"
    # The root page's description, or one naming the site.
    assert parsed.summary == (
        "LLM line 0."
        if descriptions
        else "Example 1.0 documentation: 7 pages of documentation in Markdown, for language models."
    )
    assert parsed.info.startswith("Generated from 7 pages on 2025-03-04 05:06 UTC.")
    assert list(parsed.sections) == ["Docs", "User guide", "API reference", "Faq", "Optional"]
    links = all_links(parsed.sections)
    assert [link["url"] for link in links] == [d.url for d in documents]
    assert all(link["desc"] for link in links)
    assert not any("documentation" in link["title"] for link in links[1:])  # no site suffix
    assert parsed.sections["API reference"][1]["title"] == "The Client (beta)"
    if descriptions:
        assert [link["desc"] for link in links] == [f"LLM line {i}." for i in range(7)]
    else:
        assert parsed.sections["User guide"][1]["desc"] == "Install it with pip."
        assert parsed.sections["API reference"][1]["desc"] == "The client talks to servers."
        assert parsed.sections["Optional"][0]["desc"] == "First release of the library."
    # The strict parser agrees.
    strict = parse_llms_txt(text)
    assert strict.summary == parsed.summary
    assert list(strict.sections) == list(parsed.sections)


def test_output_title_wins_over_the_sites_name_everywhere(tmp_path: Path) -> None:
    request = OutputRequest(
        markdown=tmp_path / "docs.md",
        generated_at=WHEN,
        llms_dir=tmp_path,
        title="My Docs",
        fallback_title="Urls",
    )
    write_outputs(site(), request)
    for name in ("docs.md", "llms.txt", "llms-full.txt"):
        assert (tmp_path / name).read_text().startswith("# My Docs\n"), name
    # Titles still lose the site's suffix.
    assert "- [Installation](" in (tmp_path / "llms.txt").read_text()


def test_the_url_files_name_when_nothing_names_the_site(tmp_path: Path) -> None:
    documents = [Document(index=0, url="https://h/a", title="A", markdown="Words of page A.")]
    request = OutputRequest(markdown=tmp_path / "docs.md", generated_at=WHEN, fallback_title="Urls")
    write_outputs(documents, request)
    assert (tmp_path / "docs.md").read_text().startswith("# Urls\n")


def test_llms_full_headings_drop_the_suffix_and_the_repeated_title(tmp_path: Path) -> None:
    write_llms_txt(tmp_path, site(), title="", summary="S", generated_at=WHEN)
    full = (tmp_path / "llms-full.txt").read_text()
    assert full.startswith("# Example 1.0 documentation\n\n> S\n\n## Example 1.0 documentation\n")
    assert "## Installation\n\nSource: " in full
    assert SUFFIX not in full
    assert "### Installation" not in full  # the page's own H1 repeated its title


def test_a_meta_description_beats_the_first_sentence(tmp_path: Path) -> None:
    documents = [
        Document(index=0, url=f"{BASE}/a", title="A", markdown="Body text of page A here."),
        Document(
            index=1,
            url=f"{BASE}/b",
            title="B",
            markdown="Body text of page B here.",
            meta_description="What B is about, from its meta tag.",
        ),
    ]
    index, _ = write_llms_txt(tmp_path, documents, title="T", summary="S")
    links = all_links(parse_llms_file(index.read_text()).sections)
    assert [link["desc"] for link in links] == [
        "Body text of page A here.",
        "What B is about, from its meta tag.",
    ]


# ---------------------------------------------------------------- consolidated contents


def test_contents_are_grouped_by_section_with_clean_titles(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    summary = write_consolidated(out, site(), title="", generated_at=WHEN)
    text = out.read_text()
    contents = text.split("## Contents\n\n", 1)[1].split("\n\n", 1)[0]
    assert contents.split("\n") == [
        "- Docs",
        "  - [1. Example 1.0 documentation](#1-example-10-documentation)",
        "- User guide",
        "  - [2. User guide](#2-user-guide)",
        "  - [3. Installation](#3-installation)",
        "- API reference",
        "  - [4. API reference](#4-api-reference)",
        "  - [5. The Client \\[beta\\]](#5-the-client-beta)",
        "- Faq",
        "  - [6. Why Example?](#6-why-example)",
        "- Optional",
        "  - [7. Changelog](#7-changelog)",
    ]
    assert text.startswith("# Example 1.0 documentation\n")
    assert SUFFIX not in text
    assert summary.files == (str(out),)


def test_contents_group_interleaved_pages_and_keep_their_numbers(tmp_path: Path) -> None:
    # Discovery meets pages breadth first: the sections come interleaved.
    pages = [
        ("a/x.html", "AX"),
        ("changes.html", "Changelog"),
        ("b/y.html", "BY"),
        ("a/z.html", "AZ"),
    ]
    documents = [
        Document(index=i, url=f"{BASE}/{path}", title=title, markdown=f"Text of {title}.")
        for i, (path, title) in enumerate(pages)
    ]
    out = tmp_path / "docs.md"
    write_consolidated(
        out, documents, title="T", failed=[("https://x/", "HTTP 500")], generated_at=WHEN
    )
    text = out.read_text()
    contents = text.split("## Contents\n\n", 1)[1].split("\n\n", 1)[0]
    assert contents.split("\n") == [
        "- A",
        "  - [1. AX](#1-ax)",
        "  - [4. AZ](#4-az)",
        "- B",
        "  - [3. BY](#3-by)",
        "- Optional",
        "  - [2. Changelog](#2-changelog)",
        "- [Pages that failed](#pages-that-failed)",
    ]
    assert re.findall(r"^## (\d+)\.", text, flags=re.MULTILINE) == ["1", "2", "3", "4"]


def test_writers_refuse_a_one_shot_iterator(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="twice"):
        write_consolidated(tmp_path / "x.md", iter(site()), title="T", generated_at=WHEN)


# ---------------------------------------------------------------- parts


def test_assign_packs_in_order_and_isolates_oversized_pages() -> None:
    plan = assign([40, 40, 40, 150, 10, 10], first=30, later=5, tail=20, limit=100)
    # +1 per page at the joins: 30+41 | 5+41+41 | 5+151 (alone, over) | 5+11+11 (+20 tail)
    assert plan.parts == [0, 1, 1, 2, 3, 3]
    assert (plan.tail_part, plan.total, plan.oversized) == (3, 4, [3])


def test_assign_moves_a_page_off_a_full_contents_part() -> None:
    plan = assign([90], first=50, later=5, tail=0, limit=100)
    assert (plan.parts, plan.total, plan.oversized) == ([1], 2, [])
    assert assign([], first=10, later=5, tail=30, limit=100).total == 1


def many_pages(count: int, words: int) -> list[Document]:
    return [
        Document(
            index=index,
            url=f"{BASE}/s{index % 3}/p{index}.html",
            title=f"Page {index}{SUFFIX}",
            markdown=f"# Page {index}\n\n" + " ".join(f"word{i}" for i in range(words)),
        )
        for index in range(count)
    ]


def part_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.stem}.part-*.md"))


def test_parts_stay_under_the_limit_and_hold_every_page_once_in_order(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    documents = many_pages(30, 300)
    failed = [("https://x/broken", "HTTP 500")]
    summary = write_consolidated(
        out, documents, title="T", failed=failed, generated_at=WHEN, max_file_tokens=2_000
    )
    parts = part_files(out)
    assert [str(p) for p in parts] == list(summary.files)
    assert len(parts) > 3
    assert not out.exists()
    numbers: list[int] = []
    for number, part in enumerate(parts, start=1):
        text = part.read_text()
        assert count_tokens(text) < 2_000, part
        numbers += [int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE)]
        if number > 1:
            assert text.startswith(f"# T (part {number} of {len(parts)})\n")
    assert numbers == list(range(1, 31))
    first = parts[0].read_text()
    # Every contents link names the part that holds the page, and the anchor is there.
    for target, anchor in re.findall(r"\]\(([^)#]+)#([^)]+)\)", first):
        held = (tmp_path / target).read_text()
        assert any(
            re.sub(r"[^\w -]", "", h.lower()).replace(" ", "-") == anchor
            for h in re.findall(r"^## (.+)$", held, flags=re.MULTILINE)
        ), (target, anchor)
    assert "## Pages that failed" in parts[-1].read_text()
    assert f"[Pages that failed]({parts[-1].name}#pages-that-failed)" in first
    assert f"{len(parts)} files" in first


def test_an_oversized_page_gets_its_own_part_and_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    documents = many_pages(3, 100)
    documents[1] = Document(index=1, url=f"{BASE}/big.html", title="Big", markdown="w " * 3_000)
    summary = write_consolidated(out, documents, title="T", generated_at=WHEN, max_file_tokens=500)
    parts = part_files(out)
    texts = [p.read_text() for p in parts]
    holding = [i for i, t in enumerate(texts) if "## 2. Big" in t]
    assert len(holding) == 1
    assert re.findall(r"^## \d+\.", texts[holding[0]], flags=re.MULTILINE) == ["## 2."]
    assert len(summary.warnings) == 1
    assert summary.warnings[0].startswith("1 page(s) above output.max_file_tokens = 500")
    assert "'2. Big'" in summary.warnings[0]
    assert parts[holding[0]].name in summary.warnings[0]


def test_the_failed_pages_link_points_at_the_part_that_holds_them(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    failed = [(f"https://x/broken/{i}", "HTTP 500 Internal Server Error") for i in range(80)]
    write_consolidated(
        out, many_pages(4, 300), title="T", failed=failed, generated_at=WHEN, max_file_tokens=1_500
    )
    parts = part_files(out)
    holding = [p for p in parts if "## Pages that failed" in p.read_text()]
    assert len(holding) == 1
    assert "## 4. " not in holding[0].read_text()  # too many to share the last page's part
    assert f"[Pages that failed]({holding[0].name}#pages-that-failed)" in parts[0].read_text()


def test_many_oversized_pages_make_one_warning(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    summary = write_consolidated(
        out, many_pages(9, 300), title="T", generated_at=WHEN, max_file_tokens=100
    )
    assert len(part_files(out)) == 10  # the contents, then one page a part
    (warning,) = [w for w in summary.warnings if "page(s)" in w]
    assert warning.startswith("9 page(s) above output.max_file_tokens = 100")
    assert warning.endswith("; and 4 more.")


def test_a_shorter_split_removes_the_parts_left_from_a_longer_one(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    write_consolidated(out, many_pages(20, 200), title="T", generated_at=WHEN, max_file_tokens=800)
    before = len(part_files(out))
    (tmp_path / "docs.part-notes.md").write_text("mine")  # not a part: kept
    write_consolidated(out, many_pages(4, 200), title="T", generated_at=WHEN, max_file_tokens=800)
    after = len([p for p in part_files(out) if p.name != "docs.part-notes.md"])
    assert before > after >= 1
    assert (tmp_path / "docs.part-notes.md").read_text() == "mine"


def test_a_failed_split_keeps_the_previous_parts(tmp_path: Path) -> None:
    out = tmp_path / "docs.md"
    write_consolidated(out, many_pages(6, 200), title="T", generated_at=WHEN, max_file_tokens=800)
    before = {p.name: p.read_text() for p in part_files(out)}

    with pytest.raises(OSError, match="disk gone"):
        write_consolidated(
            out, Failing(many_pages(6, 250), 1), title="T", generated_at=WHEN, max_file_tokens=800
        )
    assert {p.name: p.read_text() for p in part_files(out)} == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- pages directory


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://h/guide/install.html", "guide/install.md"),
        ("https://h/guide/install", "guide/install.md"),
        ("https://h/guide/", "guide/index.md"),
        ("https://h", "index.md"),
        ("https://h/a%20b/c.v2", "a b/c.v2.md"),
        ("https://h/../.hidden/x.php", "_/_hidden/x.md"),
        ("https://h/q?page=2", ""),  # checked below: a hash of the query
        ("https://h/a:b/c*d.htm", "a_b/c_d.md"),
    ],
)
def test_page_paths_mirror_the_url(url: str, path: str) -> None:
    found = page_path(url)
    if "?" in url:
        assert re.fullmatch(r"q-[0-9a-f]{8}\.md", str(found))
        assert page_path("https://h/q?page=3") != found
    else:
        assert found == PurePosixPath(path)
    assert ".." not in found.parts
    assert str(page_path(url, with_host=True)).startswith("h/")


def test_pages_dir_writes_one_file_per_page_with_front_matter(tmp_path: Path) -> None:
    documents = [*site(), Document(index=7, url=f"{BASE}/gone", title="", markdown="", error="404")]
    count = write_pages_dir(tmp_path / "pages", documents, generated_at=WHEN)
    assert count == 7
    files = sorted(
        p.relative_to(tmp_path / "pages").as_posix() for p in (tmp_path / "pages").rglob("*.md")
    )
    assert files == [
        "v1/api/client.md",
        "v1/api/index.md",
        "v1/changes.md",
        "v1/faq/why.md",
        "v1/guide/index.md",
        "v1/guide/install.md",
        "v1/index.md",
    ]
    text = (tmp_path / "pages/v1/guide/install.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta == {
        "title": "Installation",
        "source": f"{BASE}/guide/install.html",
        "source_format": "html",
        "description": "Install it with pip.",
        "crawled_at": "2025-03-04T05:00:00Z",
        "changed_at": "2025-03-01T00:00:00Z",
        "tokens": meta["tokens"],
    }
    assert list(meta) == [
        "title",
        "source",
        "source_format",
        "description",
        "crawled_at",
        "changed_at",
        "tokens",
    ]
    # No change time known (no refresh state): no key.
    assert "changed_at" not in (tmp_path / "pages/v1/index.md").read_text()
    assert body.startswith("\n# Installation\n\nInstall it with pip.")
    assert meta["tokens"] == count_tokens(body.split("# Installation\n\n", 1)[1].rstrip("\n"))
    assert (tmp_path / "pages/v1/guide/install.md").stat().st_mode & 0o777 == 0o600


def test_pages_dir_quotes_any_title_safely_and_separates_hosts_and_collisions(
    tmp_path: Path,
) -> None:
    documents = [
        Document(index=0, url="https://one.org/a/", title='Say "hi": #1 — ok', markdown="x y z w."),
        Document(
            index=1, url="https://one.org/a/index.html", title="Same file", markdown="a b c d."
        ),
        Document(index=2, url="https://two.org/a/", title="Other host", markdown="e f g h."),
    ]
    write_pages_dir(tmp_path, documents, generated_at=WHEN)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.md"))
    assert names == ["one.org/a/index-2.md", "one.org/a/index.md", "two.org/a/index.md"]
    meta = yaml.safe_load((tmp_path / "one.org/a/index.md").read_text().split("---\n")[1])
    assert meta["title"] == 'Say "hi": #1 — ok'
    assert meta["crawled_at"] == "2025-03-04T05:06:07Z"  # no crawl time: the run's


def test_pages_never_replace_the_runs_other_outputs(tmp_path: Path) -> None:
    documents = [Document(index=0, url="https://h/docs.html", title="Docs", markdown="a b c d.")]
    request = OutputRequest(markdown=tmp_path / "docs.md", generated_at=WHEN, pages_dir=tmp_path)
    written = write_outputs(documents, request)
    assert written == [str(tmp_path / "docs.md"), str(tmp_path)]
    assert (tmp_path / "docs.md").read_text().startswith("# Documentation\n\nSources: 1 page")
    assert (tmp_path / "docs-2.md").read_text().startswith('---\ntitle: "Docs"\n')


def test_a_failed_pages_write_leaves_no_partial_set(tmp_path: Path) -> None:
    (tmp_path / "index.md").write_text("old")

    with pytest.raises(OSError, match="disk gone"):
        write_pages_dir(tmp_path, Failing(site(), 1), generated_at=WHEN)
    assert (tmp_path / "index.md").read_text() == "old"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["index.md"]
