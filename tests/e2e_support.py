"""Helpers for the end-to-end tests: a local docs site and a fake provider in threads, and the
real CLI run as a subprocess in an isolated environment.

The CLI runs as ``python -m crawl4ai_llm_docs`` with its cache and config directories inside
the test's tmp_path, in that directory (so no project file of the developer is read), with a
recognisable fake API key the tests grep for afterwards. Every wait has a generous hang guard.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawl4ai_llm_docs.testing.provider.server import FakeProvider, make_config, run_in_thread
from crawl4ai_llm_docs.testing.site.server import SiteConfig, SiteHandle, run_site_in_thread

API_KEY = "sk-test-E2E-SECRET-7f3a"
REPO = Path(__file__).resolve().parent.parent
# A run that takes longer than this is hung; real runs here take seconds.
HANG_GUARD_S = 90.0

_HEADING = re.compile(r"^## (\d+)\. (.+)$", re.MULTILINE)
_SOURCE = re.compile(r"^Source: (\S+)$", re.MULTILINE)


@dataclass
class Setup:
    """A running site and provider plus the paths of one test's run."""

    site: SiteHandle
    provider: FakeProvider
    tmp: Path
    urls: list[str]
    urls_file: Path
    output: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.output.with_suffix(".report.json")

    def args(self, *extra: str, llm: bool = True, output: Path | None = None) -> list[str]:
        """The usual command line: the URL file, -o, the fake provider, HTTP crawling."""
        target = str(output or self.output)
        base = [str(self.urls_file), "-o", target, "--crawler", "http", "--no-progress"]
        if llm:
            base += ["--base-url", self.provider.base_url]
        return [*base, *extra]

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        return run_cli(args, cwd=self.tmp, env=env if env is not None else self.env)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        return start_cli(args, cwd=self.tmp, env=env if env is not None else self.env)


@dataclass(frozen=True, repr=False)
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def __repr__(self) -> str:  # what an assertion message shows
        return f"exit {self.code} after {self.seconds:.1f}s\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def cli_env(tmp: Path, *, api_key: str | None = API_KEY, **extra: str) -> dict[str, str]:
    """An environment with no trace of the developer's settings: only PATH-like basics."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        XDG_CACHE_HOME=str(tmp / "xdg-cache"),
        XDG_CONFIG_HOME=str(tmp / "xdg-config"),
        XDG_DATA_HOME=str(tmp / "xdg-data"),  # where runs keep the docs index
        CRAWL4AI_NO_CLOUD_NOTICE="1",
        PYTHONUNBUFFERED="1",
        # The non-terminal console would wrap long lines at 80 columns.
        COLUMNS="200",
    )
    if api_key is not None:
        env["OPENAI_API_KEY"] = api_key
    env.update(extra)
    return env


def write_urls(path: Path, urls: Sequence[str]) -> Path:
    path.write_text("# e2e URL list\n" + "\n".join(urls) + "\n", encoding="utf-8")
    return path


def _command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "crawl4ai_llm_docs", *args]


def run_cli(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = HANG_GUARD_S
) -> Result:
    started = time.monotonic()
    done = subprocess.run(
        _command(args),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def start_cli(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the CLI in the background (its own process group, so signals reach only it)."""
    return subprocess.Popen(
        _command(args),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[bytes], timeout: float = HANG_GUARD_S) -> Result:
    """Wait for a started CLI; kill it (and fail) if it hangs."""
    started = time.monotonic()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(
            f"the CLI hung for {timeout}s\n{out.decode(errors='replace')}\n{err.decode(errors='replace')}"
        ) from None
    return Result(
        process.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        time.monotonic() - started,
    )


def wait_until(
    condition: Callable[[], bool], *, what: str, timeout: float = HANG_GUARD_S, poll: float = 0.02
) -> None:
    """Poll ``condition`` (a test watching another process has nothing to await)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def interrupt(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    os.kill(process.pid, sig)


@contextmanager
def running(
    tmp: Path,
    *,
    pages: int = 6,
    site: SiteConfig | None = None,
    provider: Mapping[str, Any] | None = None,
    urls: Sequence[str] | None = None,
    extra_paths: Sequence[str] = (),
) -> Iterator[Setup]:
    """A docs site and a fake provider in threads, and a URL file listing the site's pages.

    ``urls`` replaces the page list; ``extra_paths`` are site paths appended to it.
    """
    with ExitStack() as stack:
        handle = stack.enter_context(run_site_in_thread(site or SiteConfig(pages=pages)))
        fake = stack.enter_context(run_in_thread(make_config(dict(provider or {}))))
        listed = list(urls) if urls is not None else handle.page_urls()
        listed += [handle.url(path) for path in extra_paths]
        urls_file = write_urls(tmp / "urls.txt", listed)
        yield Setup(
            site=handle,
            provider=fake,
            tmp=tmp,
            urls=listed,
            urls_file=urls_file,
            output=tmp / "out" / "docs.md",
            env=cli_env(tmp),
        )


def run_finished(setup: Setup) -> dict[str, Any]:
    """The ``run_finished`` fields of the last run's report."""
    fields: dict[str, Any] = json.loads(setup.report.read_text())["run_finished"]
    return fields


def page_changes(fields: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Pages new, changed, unchanged and removed since the last run, from ``run_finished``."""
    return (
        fields["new_pages"],
        fields["changed_pages"],
        fields["unchanged_pages"],
        fields["removed_pages"],
    )


# ---------------------------------------------------------------- reading the output


@dataclass(frozen=True)
class Section:
    number: int
    title: str
    source: str
    body: str


def sections(markdown: str) -> list[Section]:
    """The consolidated document's numbered ``## N. Title`` sections, with their Source line."""
    found: list[Section] = []
    matches = list(_HEADING.finditer(markdown))
    for position, match in enumerate(matches):
        end = matches[position + 1].start() if position + 1 < len(matches) else len(markdown)
        body = markdown[match.end() : end]
        source = _SOURCE.search(body)
        found.append(
            Section(
                number=int(match.group(1)),
                title=match.group(2),
                source=source.group(1) if source else "",
                body=body,
            )
        )
    return found


def failed_section(markdown: str) -> str:
    """The text of "## Pages that failed", or "" when there is none."""
    marker = "\n## Pages that failed\n"
    start = markdown.find(marker)
    return "" if start < 0 else markdown[start + len(marker) :]


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (path for path in root.rglob("*") if path.is_file())
