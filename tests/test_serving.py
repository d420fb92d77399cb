"""The README's nginx and Caddy rules serve what a run wrote: run as they stand (only the root,
address and port changed) over a tree of HTML pages, page files and per-section llms.txt
files, every case asked with and without ``Accept: text/markdown``, and the served llms.txt
files read by ``validate``. Skipped where the server is not installed; ``C4LD_NGINX`` and
``C4LD_CADDY`` name other binaries (e.g. extracted from Debian's packages)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from crawl4ai_llm_docs.cli.app import run_cli
from crawl4ai_llm_docs.models import Document
from crawl4ai_llm_docs.outputs.publish import OutputRequest, write_outputs

README = Path(__file__).resolve().parent.parent / "README.md"
SITE = "https://docs.example.com"
PAGES = {  # path -> title; the README's rules name the sections guide/ and api/
    "index.html": "Home",
    "guide/index.html": "Guide",
    "guide/install.html": "Install",
    "api/index.html": "API",
    "api/client.html": "Client",
}
WANT_MARKDOWN = {"accept": "text/markdown, text/html;q=0.9"}


def _readme_block(language: str) -> str:
    section = README.read_text().split("## Publishing: Markdown for agents", 1)[1]
    found = re.search(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found, f"no {language} block in the README's publishing section"
    return found.group(1)


def _binary(variable: str, name: str, *fallbacks: str) -> str:
    for candidate in (os.environ.get(variable, ""), shutil.which(name) or "", *fallbacks):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip(f"{name} is not installed (or set {variable})")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serving(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"{command[0]} did not start:\n{output}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """HTML pages, and what a run writes over them: page files and llms.txt files. Not under
    tmp_path, whose parents only root may enter: the server's workers run as another user."""
    root = Path(tempfile.mkdtemp(prefix="c4ld-www-"))
    try:
        _publish(root, tmp_path)
        yield root
    finally:
        shutil.rmtree(root)


def _publish(root: Path, tmp_path: Path) -> None:
    documents = []
    for index, (path, title) in enumerate(PAGES.items()):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"<html><head><title>{title} - Ex</title></head><body/></html>")
        url = f"{SITE}/{path.removesuffix('index.html')}"
        markdown = f"# {title}\n\nThe {title} page, in Markdown: caf\u00e9."
        documents.append(Document(index=index, url=url, title=f"{title} - Ex", markdown=markdown))
    (root / "extra.html").write_text("<html><body>Not crawled.</body></html>")
    request = OutputRequest(
        markdown=tmp_path / "out" / "docs.md",
        generated_at=datetime(2025, 1, 2, tzinfo=UTC),
        llms_dir=root,
        pages_dir=root,
        llms_txt_per_section=True,
    )
    write_outputs(documents, request)
    for path in [root, *root.rglob("*")]:  # the README's chmod -R a+rX
        path.chmod(0o755 if path.is_dir() else 0o644)


def _check(base: str, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with httpx.Client(base_url=base) as client:
        page = client.get("/guide/install.html")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers.get_list("link", split_commas=True) == [
            '</guide/install.md>; rel="alternate"; type="text/markdown"',
            '</guide/llms.txt>; rel="describedby"',
        ]
        assert page.headers["vary"] == "Accept"
        for path, markdown in [
            ("/guide/install.html", "guide/install.md"),
            ("/api/", "api/index.md"),
            ("/", "index.md"),
        ]:
            answer = client.get(path, headers=WANT_MARKDOWN)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"] == "text/markdown; charset=utf-8", path
            assert answer.text == (root / markdown).read_text(), path
        home = client.get("/")
        assert '</llms.txt>; rel="describedby"' in home.headers.get_list("link", split_commas=True)
        # A page that was not crawled: its HTML, and no Markdown advertised.
        extra = client.get("/extra.html", headers=WANT_MARKDOWN)
        assert extra.text == "<html><body>Not crawled.</body></html>"
        assert not any("alternate" in link for link in extra.headers.get_list("link"))
        for path in ("/llms.txt", "/guide/llms.txt", "/api/llms.txt"):
            answer = client.get(path)
            assert answer.headers["content-type"] == "text/plain; charset=utf-8", path
    capsys.readouterr()
    urls = [base + path for path in ("/llms.txt", "/guide/llms.txt", "/api/llms.txt")]
    assert run_cli(["validate", *urls]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.count(": valid (") == 3


def test_nginx_serves_markdown_and_link_headers(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nginx = _binary("C4LD_NGINX", "nginx", "/usr/sbin/nginx")
    mime_types = next(
        (
            str(p)
            for p in (
                Path(nginx).parent.parent.parent / "etc/nginx/mime.types",
                Path("/etc/nginx/mime.types"),
            )
            if p.is_file()
        ),
        None,
    )
    if mime_types is None:
        pytest.skip("nginx's mime.types is missing")
    port = _free_port()
    site = _readme_block("nginx")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "/var/www/docs", str(tree)
    )
    site = site.replace("include mime.types;", f"include {mime_types};")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "site.conf").write_text(site)
    temp = prefix / "temp"
    paths = " ".join(
        f"{kind}_temp_path {temp};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; {paths} include {prefix}/site.conf; }}\n"
    )
    command = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "warn" not in check.stderr, check.stderr
    with _serving(command, port) as base:
        _check(base, tree, capsys)


def test_caddy_serves_markdown_and_link_headers(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    caddy = _binary("C4LD_CADDY", "caddy", "/usr/bin/caddy")
    port = _free_port()
    site = _readme_block("caddyfile")
    site = site.replace("docs.example.com {", f"http://127.0.0.1:{port} {{").replace(
        "/var/www/docs", str(tree)
    )
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n\tauto_https off\n}\n" + site)
    home = tmp_path / "caddy-home"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
    }
    formatted = subprocess.run(
        [caddy, "fmt", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert formatted.stdout == config.read_text()  # the README's block is in caddy fmt's layout
    with _serving(
        [caddy, "run", "--config", str(config), "--adapter", "caddyfile"], port, env
    ) as base:
        _check(base, tree, capsys)
