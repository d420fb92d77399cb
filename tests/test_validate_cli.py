"""``crawl4ai-llm-docs validate`` end to end through the real CLI: seeded broken files each
found, URLs on a loopback site judged on how they are served and on their links (404,
robots.txt, refused connections), unusable input refused with exit 2; and the llms.txt
files the tool writes, root and per section, for three real documentation sets (Debian's
python3.11-doc, python-click-doc and rust-doc's book and reference, served on loopback), are
valid with every link answering 200."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from llms_txt import parse_llms_file  # type: ignore[import-untyped]

from crawl4ai_llm_docs.cli.app import run_cli
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, run_site_in_thread
from tests.e2e_support import cli_env, write_urls
from tests.e2e_support import run_cli as run_subprocess
from tests.llms_txt_parser import parse_llms_txt
from tests.test_validate_reading import GOOD, SEEDED


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user or project config file of the developer; retries off (a refused port fails
    at once); a wide console so no line is wrapped."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "300")
    config = tmp_path / "validate.toml"
    config.write_text("[crawl]\nretries = 0\npage_timeout = 20\n")
    return config


def _validate(
    capsys: pytest.CaptureFixture[str], *args: str, config: Path | None = None
) -> tuple[int, str, str]:
    capsys.readouterr()
    extra = ["--config", str(config)] if config is not None else []
    code = run_cli(["validate", *args, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_seeded_fault_is_reported_on_its_file_and_line(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for number, (text, _, _) in enumerate(SEEDED.values()):
        path = tmp_path / f"broken-{number:02d}.txt"
        path.write_bytes(text.encode())
        files.append(str(path))
    code, out, _ = _validate(capsys, *files, config=isolated)
    assert code == 1
    for path, (name, (_, fault, line)) in zip(files, SEEDED.items(), strict=True):
        where = f"{path}:{line}: " if line else f"{path}: "
        assert any(
            row.startswith(where) and row.endswith(f"[{fault}]") for row in out.splitlines()
        ), name
    assert f"{len(files)} files: 0 valid, {len(files)} with faults" in out


def test_a_good_file_passes_and_json_lists_the_faults(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "llms.txt"
    good.write_text(GOOD)
    code, out, _ = _validate(capsys, str(good), config=isolated)
    assert (code, out) == (0, f"{good}: valid (2 sections, 3 links)\n")

    bad = tmp_path / "bad.txt"
    bad.write_text(GOOD.replace(": the first steps", ""))
    code, out, _ = _validate(capsys, str(good), str(bad), "--json", config=isolated)
    assert code == 1
    reports = json.loads(out)
    assert [(report["name"], report["links"]) for report in reports] == [
        (str(good), 3),
        (str(bad), 3),
    ]
    assert reports[0]["faults"] == []
    assert [(f["code"], f["line"]) for f in reports[1]["faults"]] == [("no-description", 10)]


def _empty_directory(tmp: Path) -> str:
    (tmp / "empty").mkdir()
    return str(tmp / "empty")


def _binary(tmp: Path) -> str:
    (tmp / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    return str(tmp / "image.txt")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: str(tmp / "missing.txt"), "does not exist"),
        (_empty_directory, "no llms.txt in it"),
        (_binary, "not a text file"),
        (lambda tmp: "ftp://127.0.0.1/llms.txt", "only http:// and https://"),
    ],
    ids=["missing", "empty directory", "binary", "ftp"],
)
def test_unusable_input_is_one_message_and_exit_2(
    tmp_path: Path,
    isolated: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], str],
    message: str,
) -> None:
    code, out, err = _validate(capsys, make(tmp_path), config=isolated)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- a site on loopback


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listing(*links: str) -> str:
    items = "\n".join(f"- [Page {n}]({url}): what page {n} holds" for n, url in enumerate(links))
    return f"# Site\n\n> A site.\n\nIts pages.\n\n## Docs\n\n{items}\n"


@pytest.fixture
def site() -> Iterator[SiteHandle]:
    refused = f"http://127.0.0.1:{_closed_port()}/gone.html"
    files = {
        "/robots.txt": "User-agent: *\nDisallow: /private/\n",
        "/llms.txt": _listing("{base}/docs/page-000.html", "{base}/special/redirect.html"),
        "/broken/llms.txt": _listing(
            "{base}/docs/page-001.html",
            "{base}/special/missing.html",
            "{base}/private/secret.html",
            refused,
        ),
        "/typed/llms.html": _listing("{base}/docs/page-000.html"),
    }
    with run_site_in_thread(SiteConfig(pages=3, files=files)) as handle:
        yield handle


def test_a_served_file_with_good_links_passes(
    site: SiteHandle, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _validate(capsys, site.url("/llms.txt"), "--links", config=isolated)
    assert code == 0, out + err
    assert out.endswith("valid (1 section, 2 links, every link answers 200)\n")
    assert "Checking 2 links" in err
    assert site.hits["/docs/page-000.html"] == 1  # a HEAD answered 200: nothing more


def test_bad_links_are_faults_and_a_disallowed_one_is_never_requested(
    site: SiteHandle, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = site.url("/broken/llms.txt")
    code, out, _ = _validate(capsys, url, "--links", config=isolated)
    assert code == 1
    rows = out.splitlines()
    assert (
        f"{url}:10: {site.url('/special/missing.html')}: HTTP 404 Not Found [link-status]" in rows
    )
    assert any(row.startswith(f"{url}:11: ") and row.endswith("[link-robots]") for row in rows)
    assert any(
        row.startswith(f"{url}:12: ")
        and "connection refused" in row
        and row.endswith("[link-failed]")
        for row in rows
    )
    assert rows[-1] == f"{url}: 3 faults (1 section, 4 links)"
    assert "/private/secret.html" not in site.requests
    # Without --links, the same file is valid: it is well formed.
    assert _validate(capsys, url, config=isolated)[0] == 0


def test_content_type_and_unreachable_files(
    site: SiteHandle, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _validate(capsys, site.url("/typed/llms.html"), config=isolated)
    assert code == 1
    assert "served as text/html" in out
    assert "[content-type]" in out

    code, out, err = _validate(capsys, site.url("/nowhere/llms.txt"), config=isolated)
    assert (code, out) == (2, "")
    assert "HTTP 404 Not Found" in err


# ---------------------------------------------------------------- ours, on real documentation


def _python(root: Path) -> list[str]:
    paths = ["/index.html", "/glossary.html"]
    for directory in ("tutorial", "faq", "using"):
        paths += sorted(
            f"/{p.relative_to(root).as_posix()}" for p in (root / directory).glob("*.html")
        )
    return paths


def _click(root: Path) -> list[str]:
    # Sphinx's search page has no text without JavaScript: it would be a failed page.
    return sorted(f"/{p.name}" for p in root.glob("*.html") if p.name != "search.html")


def _rust(root: Path) -> list[str]:
    book = sorted(f"/book/{p.name}" for p in (root / "book").glob("ch0[0-3]-*.html"))
    reference = sorted(
        f"/reference/{p.name}"
        for p in (root / "reference").glob("[a-e]*.html")
        if "redirect" not in p.name  # a JavaScript redirect, no text of its own
    )
    return ["/book/index.html", *book, "/reference/index.html", *reference]


DOC_SETS = {
    "python3.11-doc": (Path("/usr/share/doc/python3.11/html"), _python, 3),
    "python-click-doc": (Path("/usr/share/doc/python-click-doc/html"), _click, 0),
    "rust-doc": (Path("/usr/share/doc/rust-doc/html"), _rust, 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("package", list(DOC_SETS))
def test_our_llms_txt_files_for_real_documentation_are_valid(
    package: str, tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, paths_of, sections = DOC_SETS[package]
    if not (root / "index.html").is_file():
        pytest.skip(f"{root} is missing: apt-get install {package}")
    paths = paths_of(root)
    with run_site_in_thread(SiteConfig(directory=str(root))) as site:
        urls = write_urls(tmp_path / "urls.txt", [site.url(path) for path in paths])
        llms = tmp_path / "llms"
        args = [str(urls), "-o", str(tmp_path / "out.md"), "--crawler", "http", "--no-progress"]
        args += ["--no-llm", "--llms-txt", str(llms), "--llms-txt-per-section"]
        result = run_subprocess(
            args, cwd=tmp_path, env=cli_env(tmp_path, api_key=None), timeout=300
        )
        assert result.code == 0, result
        code, out, err = _validate(capsys, str(llms), "--links", config=isolated)
    files = sorted(llms.rglob("llms.txt"))
    assert len(files) == 1 + sections, out
    assert code == 0, out + err
    assert out.count("every link answers 200") == len(files)
    listed = 0
    for path in files:
        text = path.read_text()
        parse_llms_txt(text)  # the strict reading of the format
        parsed = parse_llms_file(text)  # and the reference parser's
        assert parsed.summary, path
        if path.parent == llms:
            listed = sum(len(links) for links in parsed.sections.values())
    assert listed == len(paths)
