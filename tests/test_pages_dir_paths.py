"""--pages-dir: no URL chooses where its file goes (issue 25).

Property-based over generated URLs (hypothesis): every file stays inside the pages directory,
two distinct pages never share a file (as a case-insensitive file system sees it), no file
has the name of a directory another page needs, and names and paths fit the file system's
byte limits. The file-system tests write for real and check with ``os.path.realpath`` and a
walk of the disk, not with the code under test.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawl4ai_llm_docs.files import PathRefusedError, Staging
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.pages_dir import PagePlanner, page_path, write_pages_dir

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)

# Pieces a hostile or careless site puts in a path: separators once decoded, dot segments,
# control characters, names that clash with a page's file, and characters of many bytes.
TRICKY = [
    ".",
    "..",
    "...",
    "%2F",
    "%2f..%2f..%2f",
    "%2e%2e",
    "%5C",
    "\\",
    "\x00",
    "\x1f",
    "\x7f",
    "\u0085",
    "x.md",
    "X.MD",
    "index.html",
    "index",
    "a.html",
    "a",
    "A",
    ".hidden",
    " ",
    "é",
    "e\u0301",  # the same letter, decomposed: one file on macOS
    "文" * 100,  # 300 bytes
    "🙂" * 70,  # 280 bytes
    "%ZZ",
    "%C3%28",  # invalid UTF-8 once decoded
    "?",
    ":",
]

segment = st.one_of(
    st.sampled_from(TRICKY),
    st.text(min_size=1, max_size=12),
    st.builds(lambda a, b: a + b, st.sampled_from(TRICKY), st.sampled_from(TRICKY)),
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    host = draw(st.sampled_from(["h.example", "H.example", "other.example:8080", "x.md"]))
    parts = draw(st.lists(segment, max_size=6))
    # Most segments percent-encoded as a browser would; some raw, as a careless link has them.
    encoded = [quote(p, safe="") if draw(st.booleans()) else p.replace("/", "%2F") for p in parts]
    path = "/" + "/".join(encoded)
    if parts and draw(st.booleans()):
        path += "/"
    query = draw(st.sampled_from(["", "?page=2", "?a=%2F..%2F"]))
    return f"http://{host}{path}{query}"


def key(path: PurePosixPath | str) -> str:
    return unicodedata.normalize("NFC", str(path)).casefold()


def check_names(path: PurePosixPath) -> None:
    assert not path.is_absolute()
    assert path.parts, path
    for part in path.parts:
        assert part not in ("", ".", ".."), path
        assert not part.startswith("."), path
        assert "/" not in part, path
        assert "\\" not in part, path
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in part), path
        assert len(part.encode()) <= 255, (len(part.encode()), path)
    assert path.name.endswith(".md")
    assert not any(key(p).endswith(".md") for p in path.parts[:-1]), path


@given(urls(), st.booleans())
@settings(max_examples=400)
def test_every_url_maps_to_plain_names_under_the_directory(url: str, with_host: bool) -> None:
    check_names(page_path(url, with_host=with_host))


@given(st.lists(urls(), min_size=1, max_size=25, unique=True), st.booleans())
@settings(max_examples=300)
def test_distinct_urls_get_distinct_files_and_no_file_is_a_directory(
    listed: list[str], with_host: bool
) -> None:
    root = Path("/srv/docs/pages")
    planner = PagePlanner(root, with_host=with_host)
    placed = [planner.place(url) for url in listed]
    files = {key(p) for p in placed}
    assert len(files) == len(placed)  # two pages never share a file
    directories = {key(PurePosixPath(*p.parts[:i])) for p in placed for i in range(1, len(p.parts))}
    assert not files & directories  # no page's file is where another page needs a directory
    for path in placed:
        check_names(path)
        assert len(os.fsencode(root / path)) <= 4095
        assert os.path.normpath(root / path).startswith(str(root) + os.sep)


def document(index: int, url: str) -> Document:
    return Document(index=index, url=url, title=f"Page {index}", markdown=f"Text of page {index}.")


def files_under(directory: Path) -> list[Path]:
    return [Path(top) / name for top, _, names in os.walk(directory) for name in names]


@given(st.lists(urls(), min_size=1, max_size=12, unique=True))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_written_files_are_all_inside_and_one_per_page(listed: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "outside.md").write_text("mine")
        pages = base / "deep" / "pages"
        documents = [document(i, url) for i, url in enumerate(listed)]
        count = write_pages_dir(pages, documents, generated_at=WHEN)
        written = files_under(pages)
        assert count == len(written) == len(listed)
        real_root = os.path.realpath(pages)
        for path in written:
            assert os.path.commonpath([os.path.realpath(path), real_root]) == real_root
        # Nothing else appeared anywhere, and the file beside the directory is untouched.
        assert sorted(files_under(base)) == sorted([*written, base / "outside.md"])
        assert (base / "outside.md").read_text() == "mine"
        # Each page's own file: its front matter (read by a YAML parser) names its URL.
        sources = sorted(yaml.safe_load(p.read_text().split("---\n")[1])["source"] for p in written)
        assert sources == sorted(listed)


# ---------------------------------------------------------------- the cases of the issue


@pytest.mark.parametrize(
    "url",
    [
        "http://h/docs/%2fhome%2fuser%2fnotes",
        "http://h/docs/a%2f..%2f..%2fSIBLING",
        "http://h/docs/%2e%2e/%2e%2e/SIBLING",
        "http://h/docs/..%5c..%5cSIBLING",
        "http://h/docs/" + quote("文" * 100),
        "http://h/" + "/".join(["d" * 200] * 25),  # 5,000 bytes of path
    ],
)
def test_the_reported_urls_stay_inside(tmp_path: Path, url: str) -> None:
    pages = tmp_path / "pages"
    write_pages_dir(pages, [document(0, url)], generated_at=WHEN)
    (written,) = files_under(tmp_path)
    assert written.is_relative_to(pages)
    assert all(len(part.encode()) <= 255 for part in written.parts)


def test_a_file_and_a_directory_of_the_same_name_are_both_written(tmp_path: Path) -> None:
    documents = [document(0, "http://h/x.html"), document(1, "http://h/x.md/y")]
    write_pages_dir(tmp_path, documents, generated_at=WHEN)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files_under(tmp_path)) == [
        "x.md",
        "x.md_/y.md",
    ]
    # The same names on every run, whichever page comes first.
    again = tmp_path / "again"
    write_pages_dir(again, documents[::-1], generated_at=WHEN)
    assert sorted(p.relative_to(again).as_posix() for p in files_under(again)) == [
        "x.md",
        "x.md_/y.md",
    ]


def test_a_symlink_out_of_the_directory_is_refused_and_nothing_is_replaced(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "notes.md").write_text("precious")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "index.md").write_text("old")
    (pages / "guide").symlink_to(outside)
    documents = [document(0, "http://h/"), document(1, "http://h/guide/notes")]
    with pytest.raises(PathRefusedError, match="leads outside"):
        write_pages_dir(pages, documents, generated_at=WHEN)
    assert (outside / "notes.md").read_text() == "precious"
    assert (pages / "index.md").read_text() == "old"
    assert sorted(p.name for p in pages.iterdir()) == ["guide", "index.md"]


def test_a_file_where_a_directory_is_needed_is_named(tmp_path: Path) -> None:
    (tmp_path / "guide").write_text("not a directory")
    with pytest.raises(PathRefusedError, match="is a file where a directory is needed"):
        write_pages_dir(tmp_path, [document(0, "http://h/guide/x")], generated_at=WHEN)
    assert (tmp_path / "guide").read_text() == "not a directory"


def test_staging_refuses_targets_outside_its_root(tmp_path: Path) -> None:
    with Staging() as staging:
        for target in (tmp_path / "a" / ".." / ".." / "x.md", tmp_path.parent / "x.md"):
            with pytest.raises(PathRefusedError), staging.open(target, root=tmp_path / "a"):
                pass
    assert not (tmp_path.parent / "x.md").exists()


def test_a_staging_directory_of_a_killed_run_is_removed(tmp_path: Path) -> None:
    # A pid that cannot be running: above the kernel's limit.
    stale = tmp_path / ".crawl4ai-llm-docs-staging-99999999-abc"
    stale.mkdir()
    (stale / "00000000").write_text("half")
    with Staging() as staging:
        with staging.open(tmp_path / "doc.md") as out:
            out.write("new")
        staging.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.md"]
