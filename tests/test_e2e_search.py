"""The docs index end to end through the real CLI: a run builds it, ``search`` and ``serve``
read it from the same default place, a refresh changes exactly what changed.

Real documentation: pages of the Python 3.11 docs from Debian's ``python3.11-doc`` served on
loopback and crawled with ``--no-llm``. The MCP side is driven by the SDK's own client, over
stdio (``serve`` started by the client, as an agent does) and over streamable HTTP (``serve
--http 127.0.0.1:0`` in the background, its address read from what it prints).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
import trio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from crawl4ai_llm_docs.testing.site.server import SiteConfig, page_path, run_site_in_thread
from tests.e2e_support import (
    HANG_GUARD_S,
    _command,
    cli_env,
    run_cli,
    running,
    write_urls,
)
from tests.mcp_support import (
    all_resources,
    check_deep_research,
    check_errors,
    check_fetch_within_budget,
    check_tools,
    search_first,
)

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
LIBRARY = ("csv", "getpass", "tempfile", "hashlib", "secrets", "shlex", "heapq", "bisect")
# A question as a user asks it, and the page and section that answer it.
QUESTION = "how do I read a csv file into a list of dictionaries keyed by the header row"
ANSWER_PAGE = "/library/csv.html"
ANSWER_SECTION = "Module Contents"
INDEX_NAME = "crawl4ai-llm-docs/docs-index.sqlite"

pytestmark = pytest.mark.slow


def _python_paths() -> list[str]:
    if not (PYTHON_DOCS / "tutorial" / "index.html").is_file():
        pytest.skip(f"{PYTHON_DOCS} is missing: apt-get install python3.11-doc")
    tutorial = sorted(p.name for p in (PYTHON_DOCS / "tutorial").glob("*.html"))
    return [f"/tutorial/{name}" for name in tutorial] + [f"/library/{m}.html" for m in LIBRARY]


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The Python docs pages crawled once into the default index of an isolated home."""
    tmp = tmp_path_factory.mktemp("python-docs")
    paths = _python_paths()
    with run_site_in_thread(SiteConfig(directory=str(PYTHON_DOCS))) as site:
        urls = [site.url(path) for path in paths]
        urls_file = write_urls(tmp / "python.txt", urls)
        args = [str(urls_file), "-o", str(tmp / "out" / "python.md"), "--crawler", "http"]
        args += ["--no-progress", "--no-llm", "--chunks-jsonl", str(tmp / "chunks.jsonl")]
        result = run_cli(args, cwd=tmp, env=cli_env(tmp, api_key=None), timeout=240)
    assert result.code == 0, result
    assert "docs index: set python-3.11.2:" in result.stderr
    return tmp, urls


def _index(tmp: Path) -> Path:
    return tmp / "xdg-data" / INDEX_NAME


def test_a_run_indexes_every_page_and_writes_the_same_sections_as_jsonl(
    crawled: tuple[Path, list[str]],
) -> None:
    tmp, urls = crawled
    with sqlite3.connect(_index(tmp)) as db:
        indexed = {row[0] for row in db.execute("SELECT url FROM pages")}
        sets = {row[0] for row in db.execute("SELECT DISTINCT docs_set FROM pages")}
        sections = db.execute("SELECT count(*) FROM sections").fetchone()[0]
    assert indexed == set(urls)
    assert sets == {"python-3.11.2"}  # from the site's name, "Python 3.11.2 documentation"
    lines = [json.loads(line) for line in (tmp / "chunks.jsonl").read_text().splitlines()]
    assert len(lines) == sections
    assert {line["url"] for line in lines} == set(urls)
    assert all(line["heading_path"].startswith(line["title"]) for line in lines)


def test_search_in_the_terminal_reads_the_same_default_index(
    crawled: tuple[Path, list[str]],
) -> None:
    tmp, _ = crawled
    env = cli_env(tmp, api_key=None)
    result = run_cli(["search", *QUESTION.split(), "--json"], cwd=tmp, env=env)
    assert result.code == 0, result
    first = json.loads(result.stdout)["results"][0]
    assert first["url"].endswith(ANSWER_PAGE)
    shown = run_cli(["search", "temporary", "directory", "--limit", "2"], cwd=tmp, env=env)
    assert shown.code == 0, shown
    assert "tempfile" in shown.stdout
    assert re.search(r"crawled \d{4}-\d\d-\d\d", shown.stdout)
    unknown = run_cli(["search", "x", "--docs-set", "nope"], cwd=tmp, env=env)
    assert unknown.code == 2
    assert "Unknown docs set 'nope'" in unknown.stderr


async def _exercise(session: ClientSession) -> None:
    await session.initialize()
    await check_tools(session)
    first = await search_first(session, QUESTION)
    assert first["url"].endswith(ANSWER_PAGE)
    assert first["heading_path"].endswith(ANSWER_SECTION), first["heading_path"]
    page = await check_fetch_within_budget(session, first["id"], 400)
    assert page["url"].endswith(ANSWER_PAGE)
    resources, _ = await all_resources(session)
    assert len(resources) == len(_python_paths())
    await check_deep_research(session, "generate a hard to guess token for a password reset")
    await check_errors(session)


async def test_serve_over_stdio_needs_no_path_after_a_run(crawled: tuple[Path, list[str]]) -> None:
    tmp, _ = crawled
    params = StdioServerParameters(
        command=_command(["serve"])[0],
        args=_command(["serve"])[1:],
        env=cli_env(tmp, api_key=None),
        cwd=tmp,
    )
    with trio.fail_after(HANG_GUARD_S):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await _exercise(session)


async def test_serve_over_streamable_http(crawled: tuple[Path, list[str]]) -> None:
    tmp, _ = crawled
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, read in a thread
        _command(["serve", "--http", "127.0.0.1:0"]),
        cwd=tmp,
        env=cli_env(tmp, api_key=None),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = await trio.to_thread.run_sync(process.stderr.readline)
        found = re.search(r"at (http://127\.0\.0\.1:\d+/mcp)", line)
        assert found, line
        with trio.fail_after(HANG_GUARD_S):
            async with (
                streamable_http_client(found.group(1)) as (read, write),
                ClientSession(read, write) as session,
            ):
                await _exercise(session)
    finally:
        process.terminate()
        process.wait(timeout=HANG_GUARD_S)


def _sections(index: Path) -> dict[str, set[tuple[int, str]]]:
    with sqlite3.connect(index) as db:
        rows = db.execute(
            "SELECT p.url, s.id, s.text FROM sections s JOIN pages p ON p.id = s.page_id"
        ).fetchall()
    found: dict[str, set[tuple[int, str]]] = {}
    for url, row, text in rows:
        found.setdefault(url, set()).add((row, text))
    return found


def test_a_refresh_reindexes_exactly_the_pages_that_changed(tmp_path: Path) -> None:
    with running(tmp_path, pages=20) as setup:
        first = setup.run(*setup.args("--no-llm", llm=False))
        assert first.code == 0, first
        index = tmp_path / "xdg-data" / INDEX_NAME
        before = _sections(index)
        assert len(before) == 20
        changed = [page_path(n) for n in (2, 7, 15)]
        for path in changed:
            setup.site.change(path)
        log = tmp_path / "log.jsonl"
        second = setup.run(*setup.args("--no-llm", "--log-json", str(log), llm=False))
        assert second.code == 0, second
        after = _sections(index)
        edited = {setup.site.url(path) for path in changed}
    moved = {url for url in after if after[url] != before[url]}
    assert moved == edited
    events = [json.loads(line) for line in log.read_text().splitlines()]
    (indexed,) = [e for e in events if e["event"] == "index_updated"]
    assert (indexed["new_pages"], indexed["changed_pages"], indexed["unchanged_pages"]) == (
        0,
        3,
        17,
    )
    assert indexed["path"] == str(index)
    assert str(index) in next(e for e in events if e["event"] == "run_finished")["outputs"]


def test_removed_pages_leave_the_index_and_no_index_or_dry_run_write_none(
    tmp_path: Path,
) -> None:
    with running(tmp_path, pages=6) as setup:
        index = tmp_path / "own.sqlite"
        assert setup.run(*setup.args("--no-llm", "--index", str(index), llm=False)).code == 0
        write_urls(setup.urls_file, setup.urls[:4])
        result = setup.run(
            *setup.args("--no-llm", "--index", str(index), "--docs-set", "x", llm=False)
        )
        assert result.code == 0, result
        again = setup.run(*setup.args("--no-llm", "--index", str(index), llm=False))
        assert again.code == 0, again
        with sqlite3.connect(index) as db:
            per_set = dict(db.execute("SELECT docs_set, count(*) FROM pages GROUP BY docs_set"))
        assert per_set["x"] == 4
        assert sorted(per_set.values()) == [4, 4]  # the first set lost the two pages too
        for extra in (("--no-index",), ("--dry-run",)):
            other = tmp_path / f"other{extra[0]}.sqlite"
            mode = () if extra[0] == "--dry-run" else ("--no-llm",)
            args = setup.args("--index", str(other), *extra, *mode, llm=not mode)
            assert setup.run(*args).code == 0
            assert not other.exists()
        bad = setup.run(*setup.args("--no-llm", "--docs-set", "Not A Slug", llm=False))
        assert bad.code == 2
        assert "output.docs_set" in bad.stderr


def test_an_index_path_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    urls = write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/never-fetched.html"])
    env = cli_env(tmp_path, api_key=None)
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "notes.txt").write_text("not an index\n")
    for index, problem in (("a-directory", "is a directory"), ("notes.txt", "is not a SQLite")):
        result = run_cli([str(urls), "--no-llm", "--index", index], cwd=tmp_path, env=env)
        assert result.code == 2, result
        assert problem in result.stderr
        assert "--no-index" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "not an index\n"
    assert not (tmp_path / "urls.md").exists()
