"""Shared pieces of the benchmarks: the local site and fake provider as subprocesses, one
measured run of the real CLI, machine notes and the JSON + Markdown results.

Every benchmark runs the installed command exactly as a user would (``python -m
crawl4ai_llm_docs URLS --base-url ...``) in its own process, against loopback servers only.
Each run gets ``--no-cache`` (a cached answer would skip the provider), ``--no-progress``,
``--crawler http``, a throw-away working directory and XDG directories, so no user or project
config file and no earlier run changes the result.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from crawl4ai_llm_docs.testing.provider.server import start_subprocess, stop_subprocess

RESULTS = Path(__file__).resolve().parent / "results"
_LISTENING = re.compile(r"listening on (http://\S+)")
# Variables that would change what the CLI does behind the benchmark's back.
_SCRUBBED_PREFIXES = ("CRAWL4AI_LLM_DOCS_", "OPENAI_", "CRAWL4_AI_", "COV_CORE_", "COVERAGE_")


# ---------------------------------------------------------------- servers


@dataclass
class Site:
    url: str
    urls_file: Path
    pages: int


@contextlib.contextmanager
def site_subprocess(pages: int, workdir: Path, *, startup_seconds: float = 60.0) -> Iterator[Site]:
    """``python -m crawl4ai_llm_docs.testing.site --pages N``; stopped on exit, also on errors."""
    urls_file = workdir / f"urls-{pages}.txt"
    command = [
        sys.executable,
        "-m",
        "crawl4ai_llm_docs.testing.site",
        "--port",
        "0",
        "--pages",
        str(pages),
        "--urls-file",
        str(urls_file),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = _first_line(process, startup_seconds)
        match = _LISTENING.fullmatch(line.strip())
        if match is None:
            raise RuntimeError(f"local site did not start (exit {process.poll()}): {line!r}")
        yield Site(url=match.group(1), urls_file=urls_file, pages=pages)
    finally:
        _stop(process)


def _first_line(process: subprocess.Popen[str], seconds: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    while process.poll() is None and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], left)
        if readable:
            return process.stdout.readline()
    return ""


def _stop(process: subprocess.Popen[str]) -> None:
    # SIGTERM, then SIGKILL if it lingers.
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


class Provider:
    """The fake provider in its own process, with its ``/_stats`` and ``/_reset`` routes."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.process, self.base_url = start_subprocess(self.args)
        self.root = self.base_url.removesuffix("/v1")
        self._http = httpx.Client(timeout=10, trust_env=False)  # loopback: no proxy

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._http.get(f"{self.root}/_stats").json()
        return stats

    def reset(self) -> None:
        self._http.post(f"{self.root}/_reset").raise_for_status()

    def update_config(self, **fields: Any) -> None:
        """Change live settings (latency, limits...) without restarting the provider."""
        self._http.post(f"{self.root}/_control", json=fields).raise_for_status()

    def close(self) -> None:
        self._http.close()
        stop_subprocess(self.process)


@contextlib.contextmanager
def provider_subprocess(args: Sequence[str]) -> Iterator[Provider]:
    provider = Provider(args)
    try:
        yield provider
    finally:
        provider.close()


def provider_args(
    *,
    latency: float,
    rpm: int | None = None,
    burst: int | None = None,
    dialect: str = "openai",
    scope: str = "bucket",
) -> list[str]:
    args = ["--latency", f"{latency:g}", "--header-dialect", dialect]
    if scope != "bucket":
        args += ["--header-scope", scope]
    if rpm is not None:
        args += ["--rpm", str(rpm)]
    if burst is not None:
        args += ["--burst-requests", str(burst)]
    return args


# ---------------------------------------------------------------- one run of the CLI


@dataclass
class CliRun:
    """What one CLI invocation cost, from the outside and from its own report."""

    args: list[str]
    exit_code: int
    wall_s: float  # process start to exit, imports included: what the user waits
    cpu_s: float  # user + system CPU of the CLI process
    peak_rss_mb: float  # ru_maxrss of the CLI process (exact, not sampled)
    load_before: float  # 1-minute load average when the run started
    report: dict[str, Any] = field(default_factory=dict)  # <output>.report.json
    provider: dict[str, Any] = field(default_factory=dict)  # /_stats after the run, trimmed

    @property
    def run_wall_s(self) -> float:
        """The CLI's own wall time (from its report): without interpreter start and imports."""
        return float(self.report.get("run_finished", {}).get("wall_s", math.nan))

    @property
    def documents_lost(self) -> int:
        """Pages that did not get an LLM-cleaned document (failed, or kept raw after errors)."""
        # By URL: a page kept raw after LLM errors may be listed as a failure and a warning.
        lost = {url for url, _ in self.report.get("failures", [])}
        lost |= {
            url for url, reason in self.report.get("warnings", []) if "LLM request failed" in reason
        }
        return len(lost)

    def llm_span_s(self, latency: float) -> float:
        """First request arrived -> last answer sent, seen by the provider (429s included)."""
        first, last = self.provider.get("first_request_at"), self.provider.get("last_request_at")
        if first is None or last is None:
            return math.nan
        return float(last) - float(first) + latency


class Workspace:
    """A temporary directory for one benchmark: URL files, outputs and XDG directories."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="c4ld-bench-")
        self.path = Path(self._tmp.name)
        self._runs = 0

    def close(self) -> None:
        self._tmp.cleanup()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(
            OPENAI_API_KEY="bench-key",
            # Shared by the runs of one benchmark: crawl4ai's files stay warm, like a user's
            # second run; --no-cache keeps every LLM answer coming from the provider.
            XDG_CACHE_HOME=str(self.path / "cache"),
            XDG_CONFIG_HOME=str(self.path / "config"),  # no user config file
        )
        env.update(extra or {})
        return env

    def warm_up(self, urls_file: Path) -> None:
        """Two unmeasured runs, crawl only and full, so the first measured run pays no
        first-time costs (bytecode compilation on a fresh clone, cold file cache, crawl4ai's
        files); the full one gets its own instant provider."""
        progress("warm-up runs (not measured)")
        self.run_cli(urls_file, no_llm=True)
        with provider_subprocess(provider_args(latency=0.0)) as provider:
            self.run_cli(urls_file, base_url=provider.base_url)

    def run_cli(
        self,
        urls_file: Path,
        *,
        base_url: str = "http://127.0.0.1:9/v1",
        max_concurrent: int = 4,
        no_llm: bool = False,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        provider: Provider | None = None,
        timeout_s: float = 3600.0,
        ok_codes: Sequence[int] = (0,),
        python_args: Sequence[str] = (),
    ) -> CliRun:
        """Run the CLI once and measure it; ``provider`` is reset before and read after.

        ``python_args`` go before ``-m crawl4ai_llm_docs`` (e.g. ``-m cProfile -o FILE``).
        """
        self._runs += 1
        run_dir = self.path / f"run-{self._runs:03d}"
        run_dir.mkdir()
        output = run_dir / "out.md"
        args = [
            str(urls_file),
            "-o",
            str(output),
            "--base-url",
            base_url,
            "--max-concurrent",
            str(max_concurrent),
            "--no-progress",
            "--no-cache",
            "--crawler",
            "http",
            *(["--no-llm"] if no_llm else []),
            *extra_args,
        ]
        if provider is not None:
            provider.reset()
        log = run_dir / "cli.log"
        load = os.getloadavg()[0]
        with log.open("w") as log_file:
            exit_code, wall, usage = _run_measured(
                [sys.executable, *python_args, "-m", "crawl4ai_llm_docs", *args],
                cwd=run_dir,  # no ./crawl4ai-llm-docs.toml from the repository
                env=self.env(env),
                stdout=log_file,
                timeout_s=timeout_s,
            )
        if exit_code not in ok_codes:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"CLI exited {exit_code} for {args}:\n{tail}")
        report_file = output.with_suffix(".report.json")
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        stats: dict[str, Any] = {}
        if provider is not None:
            stats = provider.stats()
            stats.pop("documents", None)  # digests: large and not needed here
        run = CliRun(
            args=args,
            exit_code=exit_code,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            load_before=load,
            report=report,
            provider=stats,
        )
        # The consolidated output can be large (10,000 pages); only the numbers are kept.
        shutil.rmtree(run_dir, ignore_errors=True)
        return run


def _run_measured(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout: Any,
    timeout_s: float,
) -> tuple[int, float, Any]:
    """Run ``command``; return its exit code, wall seconds and rusage from ``wait4``.

    ``wait4`` gives this child's own peak RSS and CPU time exactly (no sampling), and a
    thread blocked in it notes the exit time to the microsecond.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.STDOUT)
    outcome: list[tuple[int, Any, float]] = []

    def reap() -> None:
        _, status, usage = os.wait4(process.pid, 0)
        outcome.append((os.waitstatus_to_exitcode(status), usage, time.perf_counter()))

    reaper = threading.Thread(target=reap, daemon=True)
    reaper.start()
    try:
        reaper.join(timeout_s)
    finally:
        if not outcome:  # timeout or Ctrl-C: never leave the CLI running
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            reaper.join(10)
    if not outcome:
        raise TimeoutError(f"CLI did not finish within {timeout_s:.0f} s: {command}")
    code, usage, ended = outcome[0]
    process.returncode = code  # reaped by wait4: keep Popen from waiting again
    return code, ended - started, usage


# ---------------------------------------------------------------- machine and results


def machine() -> dict[str, Any]:
    """What the numbers were measured on: the machine, how busy it was, and the code."""
    load1, load5, load15 = os.getloadavg()
    return {
        "code": code_version(),
        "system": f"{platform.system()} {platform.machine()}",
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_average": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def code_version() -> str:
    """The commit measured, and whether the package had uncommitted changes at the time."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "crawl4ai_llm_docs")
    return commit + (" + uncommitted changes in crawl4ai_llm_docs/" if dirty else "")


def machine_note(before: dict[str, Any], after: dict[str, Any]) -> str:
    cpus = before["cpus"]
    loads = [before["load_average"][0], after["load_average"][0]]
    busy = "loaded by other work" if max(loads) > cpus * 0.75 else "mostly idle"
    return (
        f"{before['system']}, {cpus} CPUs, {before['memory_gb']} GB, Python {before['python']}; "
        f"1-min load average {loads[0]:.1f} at start, {loads[1]:.1f} at end ({busy}); "
        f"{before['measured_at']}; code {before['code']}."
    )


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; numbers right-aligned."""
    align = [
        "---:" if rows and isinstance(rows[0][i], int | float) else "---"
        for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "--"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def run_record(run: CliRun) -> dict[str, Any]:
    """The JSON form of one run: everything measured, nothing derived."""
    record = asdict(run)
    record["run_wall_s"] = run.run_wall_s
    record["documents_lost"] = run.documents_lost
    return record


def write_results(name: str, data: dict[str, Any], markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)
    print(f"\nwrote {RESULTS / name}.json and {name}.md")


def pyplot() -> Any | None:
    """matplotlib.pyplot if installed (optional: ``uv run --extra plot ...``), else None."""
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")  # files only, no display
        return importlib.import_module("matplotlib.pyplot")
    except ImportError:
        print("matplotlib is not installed: no PNG (uv run --extra plot ... to draw one)")
        return None


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
