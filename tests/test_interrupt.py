"""Ctrl-C and ``kill -9`` at seeded random moments of a real run, then the same command again.

After every interruption the output is absent, the previous complete version, or a new
complete or clearly marked partial document whose sections are in input order and each
exactly what a complete run writes; every cache entry decodes; and the next run exits 0
asking the provider only for the chunks the cache does not hold. One site and provider serve
every trial (each trial has its own output and cache); a complete reference run gives the
expected text of every section and the provider's digest of every answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import (
    HANG_GUARD_S,
    Result,
    Setup,
    cli_env,
    finish,
    running,
    start_cli,
    wait_until,
)
from faults_support import assert_well_formed, bodies, cache_entries, cache_root, cached_digests

from crawl4ai_llm_docs.testing.site.server import SiteConfig, page_path

pytestmark = pytest.mark.slow

PAGES = 6
PAGE_DELAY = 0.15  # each page takes this long to serve: a crawl phase long enough to hit
PROVIDER = {"latency": 0.3, "latency_jitter": 0.1, "seed": 5}
ARGS = ("--max-concurrent", "2", "--crawl-concurrency", "2")
PHASES = ("crawl", "llm", "end")


@dataclass(frozen=True)
class Bench:
    setup: Setup
    expected: dict[str, str]  # URL -> its section's text in a complete run
    digests: frozenset[str]  # the provider's digest of every page's answer
    previous: str  # a complete output, as an earlier run would have left it


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("interrupt")
    site = SiteConfig(pages=PAGES, delays={page_path(i): PAGE_DELAY for i in range(PAGES)})
    with running(root, site=site, provider=PROVIDER) as setup:
        result = setup.run(*setup.args(*ARGS, "--no-cache"))
        assert result.code == 0, result
        markdown = setup.output.read_text()
        digests = frozenset(setup.provider.stats().documents)
        assert len(digests) == PAGES  # one chunk per page: one answer each
        yield Bench(setup, bodies(markdown), digests, markdown)


@dataclass
class Trial:
    bench: Bench
    tmp: Path

    @property
    def output(self) -> Path:
        return self.tmp / "out" / "docs.md"

    def args(self) -> list[str]:
        return self.bench.setup.args(*ARGS, output=self.output)

    def env(self) -> dict[str, str]:
        # A temp directory of its own: what a killed run leaves there can be checked.
        temp = self.tmp / "tmp"
        temp.mkdir(exist_ok=True)
        return cli_env(self.tmp, TMPDIR=str(temp))

    def start(self, *, previous: bool) -> subprocess.Popen[bytes]:
        provider = self.bench.setup.provider
        wait_until(lambda: provider.stats().in_flight == 0, what="the provider to settle")
        provider.reset()  # the phase triggers count this run's requests only
        if previous:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.output.write_text(self.bench.previous)
        return self.bench.setup.start(*self.args(), env=self.env())

    def wait_for(self, phase: str, rng: random.Random, hits_before: int) -> None:
        """Block until the run is in ``phase``, then a seeded random moment into it."""
        site, provider = self.bench.setup.site, self.bench.setup.provider
        if phase == "crawl":
            wait_until(lambda: site.hits.total() > hits_before, what="the first page request")
            time.sleep(rng.uniform(0.0, 2 * PAGE_DELAY))
        elif phase == "llm":
            wait_until(lambda: provider.stats().requests >= 1, what="the first LLM request")
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            wait_until(lambda: provider.stats().successes >= PAGES - 2, what="most answers")
            time.sleep(rng.uniform(0.0, 0.5))

    def check_left_behind(self, *, finished: bool, previous: bool, killed: bool) -> None:
        bench = self.bench
        urls = bench.setup.urls
        if previous:
            assert self.output.exists(), "the previous complete output was removed"
        if self.output.exists():
            markdown = self.output.read_text()
            if markdown != bench.previous:
                written = assert_well_formed(markdown, urls, bench.expected)
                if finished:
                    assert written == PAGES
                    assert "**Incomplete:**" not in markdown
                else:
                    assert not killed, "kill -9 cannot have written a partial document"
                    assert "**Incomplete:**" in markdown
                    report = json.loads(self.output.with_suffix(".report.json").read_text())
                    assert report["run_finished"]["exit_code"] == 130
                    assert report["run_finished"]["incomplete"] is True
                # A document is written only after its answer is cached.
                assert written <= len(cache_entries(self.tmp))
        if not killed:
            # Ctrl-C lets every file write finish or roll back: no temporary file is left.
            out_dir = self.output.parent
            leftovers = [p.name for p in out_dir.glob(".*")] if out_dir.exists() else []
            leftovers += [p.name for p in cache_entries(self.tmp) if p.name.startswith(".tmp")]
            leftovers += [p.name for p in (self.tmp / "tmp").glob("spool-*")]
            assert leftovers == []

    def resume(self) -> None:
        """The same command again: exit 0, and only the chunks the cache lacks are sent."""
        bench = self.bench
        provider = bench.setup.provider
        wait_until(lambda: provider.stats().in_flight == 0, what="the provider to settle")
        cached = cached_digests(self.tmp)  # every entry decodes
        assert cached <= bench.digests
        provider.reset()
        result = bench.setup.run(*self.args(), env=self.env())
        stats = provider.stats()
        assert result.code == 0, result
        answered = set(stats.documents)
        assert not answered & cached, "an answer already in the cache was asked for again"
        assert answered | cached == bench.digests
        assert stats.requests == len(stats.documents) == PAGES - len(cached)
        markdown = self.output.read_text()
        assert assert_well_formed(markdown, bench.setup.urls, bench.expected) == PAGES
        assert "**Incomplete:**" not in markdown


# 10 Ctrl-C trials over the three phases, each with its own seeded delay into the phase.
@pytest.mark.parametrize("seed", range(10))
def test_ctrl_c_at_a_random_moment(bench: Bench, tmp_path: Path, seed: int) -> None:
    rng = random.Random(f"sigint-{seed}")
    phase = PHASES[seed % len(PHASES)]
    previous = seed % 2 == 0  # half the trials overwrite an earlier complete output
    trial = Trial(bench, tmp_path)
    hits_before = bench.setup.site.hits.total()
    process = trial.start(previous=previous)
    try:
        trial.wait_for(phase, rng, hits_before)
    finally:
        os.kill(process.pid, signal.SIGINT)
    result = finish(process, timeout=30)
    assert result.code in (130, 0), result  # 0: it had finished first
    assert "Traceback" not in result.stderr, result
    trial.check_left_behind(finished=result.code == 0, previous=previous, killed=False)
    trial.resume()


@pytest.mark.parametrize("seed", range(4))
def test_kill_9_at_a_random_moment(bench: Bench, tmp_path: Path, seed: int) -> None:
    rng = random.Random(f"sigkill-{seed}")
    trial = Trial(bench, tmp_path)
    hits_before = bench.setup.site.hits.total()
    process = trial.start(previous=True)
    try:
        if seed < len(PHASES):
            trial.wait_for(PHASES[seed], rng, hits_before)
        else:
            time.sleep(rng.uniform(0.3, 3.0))  # anywhere, start-up included
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    result = finish(process, timeout=30)
    assert result.code in (-signal.SIGKILL, 0), result
    trial.check_left_behind(finished=result.code == 0, previous=True, killed=result.code != 0)
    trial.resume()


def _once_our_imports_began(trial: Trial, delay: float) -> Result:
    """Start the CLI, Ctrl-C it ``delay`` seconds after it began importing the CLI's modules.

    Timed from the import itself (Python's own import log), not from the process start: on a
    busy machine the interpreter's own start-up can take longer than any fixed delay, and a
    Ctrl-C there is Python's business ("Could not import runpy module"), not ours.
    """
    env = {**trial.env(), "PYTHONPROFILEIMPORTTIME": "1"}
    process = start_cli(trial.args(), cwd=trial.tmp, env=env)
    assert process.stdout is not None
    assert process.stderr is not None
    began = threading.Event()
    errors: list[bytes] = []

    def drain_stderr() -> None:  # the import log is long: never let the pipe fill up
        assert process.stderr is not None
        package_imported = False
        for line in process.stderr:
            if not line.startswith(b"import time:"):
                errors.append(line)
            elif package_imported:
                # The first import after the package's own is __main__.entry() importing
                # the CLI: its Ctrl-C handling is in place from here on.
                began.set()
            elif line.rstrip().endswith(b"| crawl4ai_llm_docs"):
                package_imported = True
        began.set()  # ended without importing us: nothing more to wait for

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    started = time.monotonic()
    assert began.wait(HANG_GUARD_S), "the CLI never started importing its package"
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGINT)
    out = process.stdout.read()
    code = process.wait(timeout=30)
    reader.join(timeout=30)
    return Result(
        code,
        out.decode(errors="replace"),
        b"".join(errors).decode(errors="replace"),
        time.monotonic() - started,
    )


def test_ctrl_c_during_start_up_is_quiet(bench: Bench, tmp_path: Path) -> None:
    # Spread over the imports of cli.py (~150 ms idle): at least one lands inside them.
    outcomes = []
    for delay in (0.0, 0.03, 0.06, 0.09, 0.12, 0.15):
        outcomes.append(_once_our_imports_began(Trial(bench, tmp_path), delay))
    for result in outcomes:
        # -SIGINT only if the signal came before Python started: no code ran at all.
        assert result.code in (130, -signal.SIGINT), result
        assert "Traceback" not in result.stderr, result
    assert not Trial(bench, tmp_path).output.exists()  # stopped before any work


def test_ctrl_c_while_exiting_keeps_the_exit_code(bench: Bench, tmp_path: Path) -> None:
    outcomes = []
    # During the ~0.3 s the interpreter takes to shut down (crawl4ai is loaded).
    for delay in (0.05, 0.1):
        process = Trial(bench, tmp_path).start(previous=False)
        assert process.stderr is not None
        # The summary's last line names the report: from here on the outputs are complete.
        for line in process.stderr:
            if line.rstrip().endswith(b".report.json"):
                break
        time.sleep(delay)
        os.kill(process.pid, signal.SIGINT)
        outcomes.append(finish(process, timeout=30))
    for result in outcomes:
        assert result.code in (0, 130), result
        assert "Traceback" not in result.stderr, result


# Runs the CLI with one change: a Ctrl-C reaches the run's signal receiver in the instant
# after the finished run cancelled its watcher and before the receiver closes (what trio's
# handler does for a real SIGINT then: queue it). Timed from outside this hits ~1 run in 4.
_CTRL_C_AS_THE_WATCHER_STOPS = """
import contextlib, signal, sys
import trio
from crawl4ai_llm_docs.cli.app import main

real = trio.open_signal_receiver

@contextlib.contextmanager
def receiver(*signals):
    with real(*signals) as queue:
        try:
            yield queue
        finally:
            queue._add(signal.SIGINT)

trio.open_signal_receiver = receiver
main(sys.argv[1:])
"""


def test_kill_9_leaves_no_spool_of_documents_behind(bench: Bench, tmp_path: Path) -> None:
    trial = Trial(bench, tmp_path)
    process = trial.start(previous=False)
    provider = bench.setup.provider
    try:
        wait_until(lambda: provider.stats().successes >= 2, what="two answers")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    assert finish(process, timeout=30).code == -signal.SIGKILL
    trial.resume()
    # (tiktoken also copies its bundled vocabulary there, as data-gym-cache: harmless)
    assert sorted(p.name for p in (tmp_path / "tmp").glob("spool-*")) == []


def test_a_stale_temporary_cache_file_is_swept(bench: Bench, tmp_path: Path) -> None:
    # What kill -9 in the middle of a cache write leaves, an hour ago.
    stale = cache_root(tmp_path) / "results" / "ab" / ".tmp-killed-write"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'{"key": "ab')
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    trial = Trial(bench, tmp_path)
    bench.setup.provider.reset()
    result = bench.setup.run(*trial.args(), env=trial.env())
    assert result.code == 0, result
    assert not stale.exists()


def test_ctrl_c_as_the_finished_run_stops_watching_is_quiet(bench: Bench, tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c_as_the_watcher_stops.py"
    script.write_text(_CTRL_C_AS_THE_WATCHER_STOPS)
    trial = Trial(bench, tmp_path)
    done = subprocess.run(
        [sys.executable, str(script), *trial.args()],
        cwd=bench.setup.tmp,
        env=trial.env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert trial.output.exists()  # the run itself had finished
    assert done.returncode in (0, 130), done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def _answers_received(log_file: Path) -> int:
    return log_file.read_text().count('"outcome":"ok"') if log_file.exists() else 0


def test_sigterm_while_waiting_on_the_provider_exits_143(tmp_path: Path) -> None:
    """SIGTERM (``kill``, a service manager, a container stop) ends the run as Ctrl-C does:
    the finished documents are written, marked incomplete, and the exit code says SIGTERM."""
    log_file = tmp_path / "run.jsonl"
    with running(tmp_path, pages=4, provider={"latency": 0.05}) as setup:
        args = setup.args("--max-concurrent", "1", "--log-json", str(log_file))
        process = setup.start(*args)
        try:
            wait_until(lambda: _answers_received(log_file) >= 2, what="two answers")
            setup.provider.update(latency=600.0)  # every later request waits
            wait_until(lambda: setup.provider.stats().in_flight == 1, what="a request sent")
            # Long enough for a request sent before the change to be answered and written:
            # what is in flight now waits on the slow provider.
            time.sleep(1.0)
        finally:
            os.kill(process.pid, signal.SIGTERM)
        result = finish(process, timeout=60)
        assert result.code == 143, result
        assert "Traceback" not in result.stderr, result
        assert "Terminated (SIGTERM): stopping and writing the finished documents" in (
            result.stderr
        )
        markdown = setup.output.read_text()
        assert "**Incomplete:**" in markdown
        assert "terminated (SIGTERM)" in markdown
        assert 2 <= len(bodies(markdown)) <= 3, markdown
        assert "not finished (run interrupted)" in markdown
        report = json.loads(setup.report.read_text())
        assert report["run_finished"]["exit_code"] == 143
        assert report["run_finished"]["incomplete"] is True

        # The same command again finishes the job from the cache: exit 0, complete.
        setup.provider.update(latency=0.0)
        wait_until(lambda: setup.provider.stats().in_flight == 0, what="the provider to settle")
        again = setup.run(*args)
        assert again.code == 0, again
        complete = setup.output.read_text()
        assert "**Incomplete:**" not in complete
        assert len(bodies(complete)) == 4
