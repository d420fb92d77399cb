"""A fake OpenAI-compatible chat-completions provider on loopback, for tests and benchmarks.

Three ways to run it:
- in a trio test: `handle = await nursery.start(serve, config)`;
- beside blocking code or a CLI subprocess: `with run_in_thread(config) as handle: ...`;
- as its own process: `python -m crawl4ai_llm_docs.testing.provider --port 0 [flags]`, which
  prints one line `listening on http://127.0.0.1:PORT` and serves until SIGINT/SIGTERM
  (`start_subprocess` does this and reads the line).

The flags are the fields of `ProviderConfig` (`--error-rate 0.1`, lists comma-separated:
`--error-codes 500,503`). Behaviour, routes and stats are described in `provider_app`,
`provider_answers` and `provider_limits`.
"""

from __future__ import annotations

import argparse
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, TypeVar

import hypercorn.trio
import msgspec
import trio
from hypercorn.config import Config as HypercornConfig

from crawl4ai_llm_docs.testing.provider.answers import document_digest, estimate_tokens
from crawl4ai_llm_docs.testing.provider.app import ProviderApp
from crawl4ai_llm_docs.testing.provider.config import HeaderDialect, ProviderConfig, make_config
from crawl4ai_llm_docs.testing.provider.state import ProviderState, ProviderStats

__all__ = [
    "FakeProvider",
    "HeaderDialect",
    "ProviderConfig",
    "ProviderStats",
    "document_digest",
    "estimate_tokens",
    "main",
    "make_config",
    "run_in_thread",
    "serve",
    "start_subprocess",
    "stop_subprocess",
]

T = TypeVar("T")
_LISTENING = re.compile(r"listening on (http://\S+)")
_FIELD_PATH = re.compile(r"\$\.(\w+)")


class FakeProvider:
    """Handle on a running provider; usable from its own trio loop or from any plain thread."""

    def __init__(self, state: ProviderState, url: str, token: trio.lowlevel.TrioToken) -> None:
        self._state = state
        self._token = token
        self.url = url  # http://127.0.0.1:PORT
        self.base_url = f"{url}/v1"  # what an OpenAI client takes as base_url
        self.port = int(url.rsplit(":", 1)[1])

    @property
    def config(self) -> ProviderConfig:
        return self._state.config

    def stats(self) -> ProviderStats:
        """A copy of the counters (see `ProviderStats`)."""
        return self._call(self._state.snapshot)

    def update(self, **fields: Any) -> ProviderConfig:
        """Merge `fields` into the live config, like `POST /_control`; returns the new config."""
        return self._call(partial(self._state.update, fields))

    def reset(self) -> None:
        """Zero the stats, refill the buckets and reseed, like `POST /_reset`."""
        self._call(self._state.reset)

    async def wait_idle(self) -> None:
        """Wait until no chat request is being handled (call from the server's own loop)."""
        await self._state.idle.wait()

    def _call(self, fn: Callable[[], T]) -> T:
        # State belongs to the server's loop: hop onto it from foreign threads.
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            try:
                return trio.from_thread.run_sync(fn, trio_token=self._token)
            except trio.RunFinishedError:
                return fn()  # the server is gone; nothing else touches the state now
        return fn()


async def serve(
    config: ProviderConfig | None = None,
    *,
    port: int = 0,
    task_status: trio.TaskStatus[FakeProvider] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on 127.0.0.1 (an OS-assigned port by default) until cancelled."""
    state = ProviderState(config or ProviderConfig())
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn.trio.serve, ProviderApp(state), _hypercorn_config(port), mode="asgi")
        )
        task_status.started(FakeProvider(state, binds[0], trio.lowlevel.current_trio_token()))


@contextmanager
def run_in_thread(config: ProviderConfig | None = None) -> Iterator[FakeProvider]:
    """Run the provider on its own trio loop in a daemon thread; stop it on exit."""
    started: queue.Queue[tuple[FakeProvider, trio.CancelScope] | BaseException] = queue.Queue()

    async def run() -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                handle: FakeProvider = await nursery.start(serve, config)
                started.put((handle, scope))

    def thread_main() -> None:
        try:
            trio.run(run)
        except BaseException as error:  # reported to the caller if startup failed
            started.put(error)

    thread = threading.Thread(target=thread_main, name="fake-provider", daemon=True)
    thread.start()
    outcome = started.get(timeout=30)
    if isinstance(outcome, BaseException):
        raise RuntimeError("fake provider failed to start") from outcome
    handle, scope = outcome
    try:
        yield handle
    finally:
        with suppress(trio.RunFinishedError):  # already stopped
            trio.from_thread.run_sync(scope.cancel, trio_token=handle._token)
        thread.join(timeout=10)


def start_subprocess(
    args: Sequence[str] = (), *, startup_seconds: float = 30.0
) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m ...provider --port 0 ARGS`; return the process and its base_url (…/v1)."""
    command = [sys.executable, "-m", __name__, "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + startup_seconds
    line = ""
    while not line and process.poll() is None and time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if readable:
            line = process.stdout.readline()
    match = _LISTENING.fullmatch(line.strip())
    if match is None:
        stop_subprocess(process)
        raise RuntimeError(f"fake provider did not start (exit {process.returncode}): {line!r}")
    return process, f"{match.group(1)}/v1"


def stop_subprocess(process: subprocess.Popen[str], grace_seconds: float = 5.0) -> int:
    """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    code = process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crawl4ai_llm_docs.testing.provider",
        description="Fake OpenAI-compatible provider on 127.0.0.1. "
        "Flags mirror ProviderConfig; lists are comma-separated.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose (default)")
    for field in msgspec.structs.fields(ProviderConfig):
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            metavar=field.name.upper(),
            help=f"default: {field.default!r}",
        )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[int, ProviderConfig]:
    parser = build_parser()
    namespace = vars(parser.parse_args(argv))
    port: int = namespace.pop("port")
    fields: dict[str, Any] = {k: v for k, v in namespace.items() if v is not None}
    for name in ("error_codes", "models"):
        if name in fields:
            fields[name] = [item.strip() for item in fields[name].split(",") if item.strip()]
    try:
        return port, make_config(fields, strict=False)  # strict=False: "0.5" -> 0.5
    except msgspec.ValidationError as error:
        flag = _FIELD_PATH.sub(lambda m: "--" + m.group(1).replace("_", "-"), str(error))
        parser.error(flag)


def main(argv: Sequence[str] | None = None) -> None:
    port, config = parse_args(argv)
    trio.run(_serve_until_signal, config, port)


async def _serve_until_signal(config: ProviderConfig, port: int) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            handle: FakeProvider = await nursery.start(partial(serve, config, port=port))
            print(f"listening on {handle.url}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def _hypercorn_config(port: int) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"  # no "Running on" banner; stdout carries only our one line
    config.graceful_timeout = 0.5  # hung requests must not delay shutdown
    return config


if __name__ == "__main__":
    main()
