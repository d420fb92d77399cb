"""URL file parsing: comments, encodings, normalisation, duplicates and rejected lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawl4ai_llm_docs.errors import InputError
from crawl4ai_llm_docs.urls import normalise_url, parse_url_text, read_url_file


def test_comments_blanks_and_order() -> None:
    parsed = parse_url_text(
        "# docs\n\nhttps://a.test/one\n  https://a.test/two  \n#https://a.test/skipped\n"
    )
    assert [e.url for e in parsed.entries] == ["https://a.test/one", "https://a.test/two"]
    assert [e.line for e in parsed.entries] == [3, 4]
    assert [e.index for e in parsed.entries] == [0, 1]
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://Docs.Example.COM/Path#frag", "https://docs.example.com/Path"),
        ("https://a.test", "https://a.test/"),
        ("http://a.test:80/x", "http://a.test/x"),
        ("https://a.test:8443/x?q=1#y", "https://a.test:8443/x?q=1"),
        ("https://bücher.example/seite", "https://xn--bcher-kva.example/seite"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("file:///etc/passwd", "unsupported scheme 'file'"),
        ("javascript:alert(1)", "unsupported scheme 'javascript'"),
        ("ftp://a.test/x", "unsupported scheme"),
        ("/relative/path", "relative URL"),
        ("docs.example.com/x", "relative URL"),
        ("https://user:pw@a.test/x", "credentials"),
        ("https:///nohost", "no host"),
        ("https://a.test:99999/", "malformed"),
        ("https://a.test/" + "x" * 9000, "longer than"),
    ],
)
def test_rejected_urls_say_why(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_url(raw)


def test_duplicates_dropped_after_fragment_normalisation() -> None:
    parsed = parse_url_text("https://a.test/x#one\nhttps://A.test/x#two\nhttps://a.test/y\n")
    assert [e.url for e in parsed.entries] == ["https://a.test/x", "https://a.test/y"]
    assert parsed.duplicates == 1


def test_problems_keep_line_numbers_and_run_continues() -> None:
    parsed = parse_url_text("https://a.test/x\nnot a url\nfile:///x\nhttps://a.test/y\n")
    assert [(p.line, p.text) for p in parsed.problems] == [(2, "not a url"), (3, "file:///x")]
    assert len(parsed.entries) == 2


def test_ten_thousand_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text("https://a.test/x\n" * 10_000)
    parsed = read_url_file(path)
    assert len(parsed.entries) == 1
    assert parsed.duplicates == 9_999


def test_latin1_fallback_and_bom(tmp_path: Path) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes("# caf\xe9\nhttps://a.test/\xe9\n".encode("latin-1"))
    assert read_url_file(latin).entries[0].url == "https://a.test/é"
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffhttps://a.test/x\n".encode())
    assert read_url_file(bom).entries[0].url == "https://a.test/x"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "contains no valid URL"),
        (b"# only comments\n\n", "contains no valid URL"),
        (b"ftp://x\n", "Line 1 ('ftp://x'): unsupported scheme"),
        (b"\x00\x01\x02binary", "looks binary"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_url_file(path)
    assert fragment in caught.value.message
    assert str(path) in caught.value.message


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_url_file(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_url_file(tmp_path)


def test_huge_file_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crawl4ai_llm_docs.urls as urls

    monkeypatch.setattr(urls, "MAX_URL_FILE_BYTES", 1024)
    path = tmp_path / "big.txt"
    path.write_text("https://a.test/x\n" * 200)
    with pytest.raises(InputError, match="more than"):
        read_url_file(path)
