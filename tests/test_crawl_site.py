"""The local docs site itself: thread mode, the command line, directory serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from crawl4ai_llm_docs.testing.site.server import (
    NAV_MARKERS,
    SPECIAL_PATHS,
    SiteConfig,
    SiteHandle,
    generated_page,
    generated_pages,
    run_site_in_thread,
    serve_site,
)


def test_generated_pages_are_deterministic_and_sized_by_config() -> None:
    first = list(generated_pages(3))
    assert [path for path, _ in first] == [f"/docs/page-00{i}.html" for i in range(3)]
    assert first == list(generated_pages(3))
    small, big = generated_page(1), generated_page(1, sections=8, paragraphs=6)
    assert len(big) > 3 * len(small)
    assert all(marker in small for marker in NAV_MARKERS)


def test_thread_mode_serves_and_stops() -> None:
    with run_site_in_thread(SiteConfig(pages=3)) as site:
        response = httpx.get(site.url("/docs/page-002.html"))
        assert response.status_code == 200
        assert "configure_2()" in response.text
        assert httpx.get(site.url("/docs/page-003.html")).status_code == 404
        assert site.hits["/docs/page-002.html"] == 1
        assert len(site.page_urls()) == 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(site.url("/docs/page-002.html"))


def test_command_line_prints_its_address(tmp_path: Path) -> None:
    urls_file = tmp_path / "urls.txt"
    command = [
        sys.executable,
        "-m",
        "crawl4ai_llm_docs.testing.site",
        "--port",
        "0",
        "--pages",
        "5",
    ]
    with subprocess.Popen(
        [*command, "--urls-file", str(urls_file)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            base = line.removeprefix("listening on ")
            assert httpx.get(base + "/docs/page-004.html").status_code == 200
            assert urls_file.read_text().split() == [
                f"{base}/docs/page-00{i}.html" for i in range(5)
            ]
        finally:
            child.terminate()
            child.wait(timeout=10)


async def test_directory_mode_and_fault_paths(nursery: trio.Nursery, tmp_path: Path) -> None:
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "index.html").write_text("<h1>Guide</h1>")
    (tmp_path / "a.html").write_text("<h1>A</h1>")
    site: SiteHandle = await nursery.start(
        serve_site, SiteConfig(directory=str(tmp_path), rate_limited_hits=1)
    )
    assert site.page_paths == ["/a.html", "/guide/index.html"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(site.url("/guide/"))).text == "<h1>Guide</h1>"
        assert (await client.get(site.url("/../etc/passwd"))).status_code == 404
        limited = await client.get(site.url(SPECIAL_PATHS["rate_limited"]))
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert (await client.get(site.url(SPECIAL_PATHS["rate_limited"]))).status_code == 200
        pdf = await client.get(site.url(SPECIAL_PATHS["pdf"]))
        assert pdf.headers["content-type"] == "application/pdf"
        loop = await client.get(site.url(SPECIAL_PATHS["loop"]))
        assert loop.status_code == 302
