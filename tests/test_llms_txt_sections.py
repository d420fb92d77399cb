"""``--llms-txt-per-section`` (llms.txt v2): one llms.txt per section directory beside the root
one. Every file is read by the reference parser and found clean by ``validate``; a file covers
exactly the pages under its directory (checked against the URLs themselves); all files
replace the previous set together."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llms_txt import parse_llms_file  # type: ignore[import-untyped]

from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.llms_txt_sections import write_section_llms_txt
from crawl4ai_llm_docs.outputs.publish import OutputRequest, write_outputs
from crawl4ai_llm_docs.validate.reading import read
from tests.llms_txt_parser import parse_llms_txt
from tests.test_output_site import BASE, SUFFIX, WHEN, Failing, site


def _sections(root: Path) -> dict[PurePosixPath, str]:
    """Every section llms.txt under ``root`` (relative path -> text), the root one left out."""
    return {
        PurePosixPath(path.relative_to(root).as_posix()): path.read_text()
        for path in sorted(root.rglob("llms.txt"))
        if path.parent != root
    }


def _urls(text: str) -> list[str]:
    parsed = parse_llms_file(text)
    return [link["url"] for links in parsed.sections.values() for link in links]


def _readable_and_clean(text: str) -> None:
    parse_llms_txt(text)  # the strict reading of the format (tests/llms_txt_parser.py)
    parsed = parse_llms_file(text)  # the reference parser
    assert parsed.title, text
    assert parsed.summary, text
    assert parsed.sections, text
    assert read(text).faults == [], read(text).faults


def _extra_pages() -> list[Document]:
    """A subdirectory with its own index and a changelog inside the guide."""
    pages = [
        ("guide/advanced/index.html", f"Advanced topics{SUFFIX}", "Deep things, one by one."),
        ("guide/advanced/tuning.html", f"Tuning{SUFFIX}", "Make it fast with three knobs."),
        ("guide/changelog.html", f"Changelog{SUFFIX}", "Every change to the guide."),
    ]
    return [
        Document(index=10 + number, url=f"{BASE}/{path}", title=title, markdown=f"# T\n\n{body}")
        for number, (path, title, body) in enumerate(pages)
    ]


def test_one_file_per_section_at_its_url_path_listing_the_pages_under_it(tmp_path: Path) -> None:
    documents = site() + _extra_pages()
    request = OutputRequest(
        markdown=tmp_path / "docs.md",
        generated_at=WHEN,
        llms_dir=tmp_path / "llms",
        llms_txt_per_section=True,
    )
    written = write_outputs(documents, request)
    sections = _sections(tmp_path / "llms")
    assert list(sections) == [
        PurePosixPath("v1/api/llms.txt"),
        PurePosixPath("v1/faq/llms.txt"),
        PurePosixPath("v1/guide/llms.txt"),
    ]
    assert [str(tmp_path / "llms" / path) for path in sections] == sorted(written[3:])
    for text in sections.values():
        _readable_and_clean(text)

    guide = parse_llms_file(sections[PurePosixPath("v1/guide/llms.txt")])
    assert guide.title == "Example 1.0 documentation \u2014 User guide"
    assert guide.summary == (
        "User guide, a section of Example 1.0 documentation: 5 pages of documentation in "
        "Markdown, for language models."
    )
    assert "../../llms.txt" in guide.info  # back to the whole site
    assert list(guide.sections) == ["User guide", "Advanced topics", "Optional"]
    assert [link["title"] for link in guide.sections["Advanced topics"]] == [
        "Advanced topics",
        "Tuning",
    ]
    assert [link["url"] for link in guide.sections["Optional"]] == [f"{BASE}/guide/changelog.html"]

    # The root one still lists every page, and reads as it does without section files.
    root = (tmp_path / "llms" / "llms.txt").read_text()
    assert sorted(_urls(root)) == sorted(document.url for document in documents)
    plain = tmp_path / "plain"
    write_outputs(
        documents, OutputRequest(markdown=plain / "d.md", generated_at=WHEN, llms_dir=plain)
    )
    assert (plain / "llms.txt").read_text() == root


def test_a_section_summary_is_what_its_index_page_says_it_is(tmp_path: Path) -> None:
    write_section_llms_txt(tmp_path, site(descriptions=True), title="", generated_at=WHEN)
    guide = parse_llms_file((tmp_path / "v1" / "guide" / "llms.txt").read_text())
    assert guide.summary == "LLM line 1."  # the LLM's description of guide/index.html


def test_no_section_files_for_pages_in_one_folder_and_a_flag_off_by_default(tmp_path: Path) -> None:
    flat = [document for document in site() if document.url.count("/") == BASE.count("/") + 1]
    assert len(flat) == 2
    assert write_section_llms_txt(tmp_path, flat, title="", generated_at=WHEN) == []
    write_outputs(
        site(), OutputRequest(markdown=tmp_path / "d.md", generated_at=WHEN, llms_dir=tmp_path)
    )
    assert _sections(tmp_path) == {}


def test_pages_from_several_sites_get_one_file_per_host(tmp_path: Path) -> None:
    documents = [
        Document(
            index=0, url="https://a.example/docs/x.html", title="X", markdown="The x page says x."
        ),
        Document(index=1, url="https://b.example/y.html", title="Y", markdown="The y page says y."),
        Document(
            index=2, url="https://b.example/z/w.html", title="W", markdown="The w page says w."
        ),
    ]
    write_section_llms_txt(tmp_path, documents, title="Mixed", generated_at=WHEN)
    sections = _sections(tmp_path)
    assert sorted(map(str, sections)) == ["a.example/llms.txt", "b.example/llms.txt"]
    assert _urls(sections[PurePosixPath("b.example/llms.txt")]) == [
        "https://b.example/y.html",
        "https://b.example/z/w.html",
    ]
    for text in sections.values():
        _readable_and_clean(text)


def test_a_failure_while_writing_keeps_the_previous_files(tmp_path: Path) -> None:
    documents = site()
    write_section_llms_txt(tmp_path, documents, title="", generated_at=WHEN)
    before = _sections(tmp_path)
    assert before
    changed = [
        Document(index=d.index, url=d.url, title=d.title, markdown=d.markdown, description="New.")
        for d in documents
    ]
    with pytest.raises(OSError, match="disk gone"):
        write_section_llms_txt(tmp_path, Failing(changed, passes=1), title="", generated_at=WHEN)
    assert _sections(tmp_path) == before
    assert not [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]


def test_the_flag_needs_a_llms_txt_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crawl4ai_llm_docs.cli.app import run_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "urls.txt").write_text("https://docs.example.org/\n")
    assert run_cli(["urls.txt", "--no-llm", "--llms-txt-per-section"]) == 2
    assert "give --llms-txt DIR too" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["urls.txt"]  # nothing written


# ---------------------------------------------------------------- any site


_SEGMENT = st.sampled_from(["guide", "api", "how-to", "%C3%9Cber", "a%20b", "v1", "changes", "x"])
_LEAF = st.sampled_from(
    ["index.html", "", "intro.html", "setup", "genindex.html", "changelog.html", "p%20q.html"]
)
_TITLE = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=0, max_size=30
)


@st.composite
def _site(draw: st.DrawFn) -> list[Document]:
    hosts = draw(
        st.sampled_from(
            [["https://docs.example.org"], ["https://a.example", "http://b.example:8080"]]
        )
    )
    paths = draw(
        st.lists(
            st.tuples(st.sampled_from(hosts), st.lists(_SEGMENT, max_size=3).map(tuple), _LEAF),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    return [
        Document(
            index=index,
            url=f"{host}/{''.join(f'{segment}/' for segment in segments)}{leaf}",
            title=draw(_TITLE),
            markdown=draw(st.sampled_from(["", "Some words that say what this page is about."])),
            error=draw(st.sampled_from([None, None, None, "HTTP 404 Not Found"])),
        )
        for index, (host, segments, leaf) in enumerate(paths)
    ]


def _under(url: str, path: PurePosixPath, *, several: bool) -> bool:
    """Is ``url`` under the directory a section file at ``path`` stands for? (From the URL
    alone: its host when the pages come from several sites, then its path.)"""
    parts = urlsplit(url)
    # The host as --pages-dir names its directory: the port's ':' is not allowed in file names.
    segments = [parts.netloc.lower().replace(":", "_")] if several else []
    segments += [segment for segment in parts.path.split("/")[:-1] if segment]
    wanted = list(path.parent.parts)
    return [unquote(segment) for segment in segments[: len(wanted)]] == wanted


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(_site())
def test_every_file_is_clean_and_covers_exactly_the_pages_under_its_directory(
    tmp_path_factory: pytest.TempPathFactory, documents: list[Document]
) -> None:
    directory = tmp_path_factory.mktemp("llms")
    written = write_section_llms_txt(directory, documents, title="", generated_at=WHEN)
    sections = _sections(directory)
    assert sorted(written) == sorted(directory / path for path in sections)
    pages = [document.url for document in documents if document.error is None]
    several = len({urlsplit(url).netloc for url in pages}) > 1
    listed: list[str] = []
    for path, text in sections.items():
        _readable_and_clean(text)
        urls = _urls(text)
        assert urls, path
        # The pages under its directory, each once; none from elsewhere.
        assert len(urls) == len(set(urls)), path
        assert sorted(urls) == sorted(url for url in pages if _under(url, path, several=several))
        listed += urls
    assert len(listed) == len(set(listed))  # no page is in two section files
