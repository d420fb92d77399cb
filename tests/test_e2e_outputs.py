"""The outputs a site would publish, end to end through the real CLI on real documentation.

Three directories (tutorial/, howto/, using/) of the Python 3.11 documentation from Debian's
``python3.11-doc``, its root page and its index, served on loopback and crawled with
``--no-llm``. llms.txt is read with the reference parser (PyPI ``llms-txt``). Then a run with
the fake provider: the LLM's description lines reach the page files, large pages a warning.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from llms_txt import parse_llms_file  # type: ignore[import-untyped]

from crawl4ai_llm_docs.markdown.tokens import count_tokens
from crawl4ai_llm_docs.testing.site.server import SiteConfig, page_title, run_site_in_thread
from tests.e2e_support import cli_env, run_cli, running, write_urls
from tests.llms_txt_parser import parse_llms_txt

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
DIRECTORIES = ("tutorial", "howto", "using")
SUFFIX = "Python 3.11.2 documentation"
LIMIT = 40_000  # above the largest page (Logging Cookbook, ~35k): no part needs an exception

pytestmark = pytest.mark.slow


def _paths() -> list[str]:
    if not (PYTHON_DOCS / "tutorial" / "index.html").is_file():
        pytest.skip(f"{PYTHON_DOCS} is missing: apt-get install python3.11-doc")
    paths = ["/index.html"]
    for directory in DIRECTORIES:
        paths += sorted(
            f"/{p.relative_to(PYTHON_DOCS).as_posix()}"
            for p in (PYTHON_DOCS / directory).glob("*.html")
        )
    return [*paths, "/glossary.html", "/genindex.html"]


def test_python_docs_outputs_name_the_site_sections_and_pages(tmp_path: Path) -> None:
    paths = _paths()
    with run_site_in_thread(SiteConfig(directory=str(PYTHON_DOCS))) as site:
        urls = [site.url(path) for path in paths]
        urls_file = write_urls(tmp_path / "python_docs.txt", urls)
        out = tmp_path / "out" / "python.md"
        args = [str(urls_file), "-o", str(out), "--crawler", "http", "--no-progress", "--no-llm"]
        args += ["--llms-txt", str(tmp_path / "llms"), "--pages-dir", str(tmp_path / "pages")]
        args += ["--max-file-tokens", str(LIMIT)]
        result = run_cli(args, cwd=tmp_path, env=cli_env(tmp_path, api_key=None), timeout=240)
    assert result.code == 0, result
    assert "above output.max_file_tokens" not in result.stderr

    # llms.txt: the site's name, a summary, sections from the directories, Optional, and a
    # description on every link; no title repeats the site's suffix.
    text = (tmp_path / "llms" / "llms.txt").read_text()
    parsed = parse_llms_file(text)
    assert parsed.title == SUFFIX
    assert parsed.summary
    assert SUFFIX in parsed.summary
    assert f"{len(urls)} pages" in parsed.info
    assert list(parsed.sections) == [
        "Docs",
        "The Python Tutorial",
        "Python HOWTOs",
        "Python Setup and Usage",
        "Optional",
    ]
    links = [link for section in parsed.sections.values() for link in section]
    assert sorted(link["url"] for link in links) == sorted(urls)
    assert all(link["desc"] and len(link["desc"]) <= 160 for link in links), links
    assert not [link["title"] for link in links if link["title"].endswith(SUFFIX)]
    assert [link["url"] for link in parsed.sections["Optional"]] == [site.url("/genindex.html")]
    tutorial = {link["title"]: link["desc"] for link in parsed.sections["The Python Tutorial"]}
    assert tutorial["The Python Tutorial"] == (
        "Python is an easy to learn, powerful programming language."
    )
    parse_llms_txt(text)  # and the strict reading of the format

    # --max-file-tokens: every part under the limit, every page once, in input order.
    parts = sorted((tmp_path / "out").glob("python.part-*.md"))
    assert len(parts) >= 3
    assert not out.exists()
    sources: list[str] = []
    headings: list[str] = []
    for part in parts:
        body = part.read_text()
        assert count_tokens(body) < LIMIT, part
        sources += re.findall(r"^Source: (\S+)$", body, flags=re.MULTILINE)
        headings += re.findall(r"^## \d+\. (.+)$", body, flags=re.MULTILINE)
    assert sources == urls
    assert not [heading for heading in headings if SUFFIX in heading]
    first = parts[0].read_text()
    assert first.startswith(f"# {SUFFIX}\n")
    assert "- The Python Tutorial\n  - [" in first  # the contents, by section
    assert f"({parts[-1].name}#" in first  # links into the other parts

    # --pages-dir: one file per page at its URL's path, with its source in the front matter.
    files = sorted((tmp_path / "pages").rglob("*.md"))
    assert len(files) == len(urls)
    by_source = {}
    for file in files:
        front = yaml.safe_load(file.read_text().split("---\n", 2)[1])
        by_source[front["source"]] = file.relative_to(tmp_path / "pages").as_posix()
        assert front["description"]
        assert front["tokens"] > 0
        assert front["crawled_at"]
        assert not front["title"].endswith(SUFFIX)
    assert by_source == {url: url.split("/", 3)[3].removesuffix(".html") + ".md" for url in urls}


def test_llm_run_writes_pages_with_the_llm_description_and_warns_of_large_pages(
    tmp_path: Path,
) -> None:
    pages = tmp_path / "pages"
    with running(tmp_path, pages=4) as setup:
        result = setup.run(*setup.args("--pages-dir", str(pages), "--max-file-tokens", "300"))
    assert result.code == 0, result
    # Every generated page is larger than 300 tokens: each is in a part of its own, one warning.
    assert "4 page(s) above output.max_file_tokens = 300" in " ".join(result.stderr.split())
    parts = sorted(setup.output.parent.glob("docs.part-*.md"))
    assert len(parts) == 5  # the contents, then one page each
    for position, url in enumerate(setup.urls):
        file = pages / (url.split("/", 3)[3].removesuffix(".html") + ".md")
        front = yaml.safe_load(file.read_text().split("---\n", 2)[1])
        assert front["source"] == url
        assert front["title"] == page_title(position)  # without " — Example Docs"
        assert front["description"] == f'Fake summary of "{page_title(position)}".'
    report = json.loads(setup.report.read_text())["run_finished"]
    assert report["outputs"][:5] == [str(part) for part in parts]
    assert str(pages) in report["outputs"]
